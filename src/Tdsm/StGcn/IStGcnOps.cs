namespace Tdsm.StGcn;

/// <summary>
/// Every ST-GCN op as a forward/backward pair, implemented by the reference tier
/// (<see cref="StGcnReferenceOps"/>) and the managed CPU tier (<see cref="StGcnCpuOps"/>).
/// Shape letters: N samples, M persons, B = N*M person-samples, C channels, T frames,
/// V joints, K graph partitions, L = T*V. Tensors are row-major float32.
/// Activation gradients overwrite (=); parameter gradients accumulate (+=).
/// </summary>
public interface IStGcnOps
{
    /// <summary>Tier name ("reference", "cpu").</summary>
    string Name { get; }

    /// <summary>x is (N,C,T,V,M) -> y is (B, V*C, T) with channel index v*C + c (the data_bn view).</summary>
    void InputToBnLayout(ArraySegment<float> x, ArraySegment<float> y, int n, int c, int t, int v, int m);

    /// <summary>Backward of <see cref="InputToBnLayout"/> (dx overwritten).</summary>
    void InputToBnLayoutBackward(ArraySegment<float> dy, ArraySegment<float> dx, int n, int c, int t, int v, int m);

    /// <summary>x is (B, V*C, T) -> y is (B, C, T, V): each person a separate sample.</summary>
    void BnToBlockLayout(ArraySegment<float> x, ArraySegment<float> y, int b, int c, int t, int v);

    /// <summary>Backward of <see cref="BnToBlockLayout"/> (dx overwritten).</summary>
    void BnToBlockLayoutBackward(ArraySegment<float> dy, ArraySegment<float> dx, int b, int c, int t, int v);

    /// <summary>Training-mode BatchNorm over channels of x (B,C,L): batch mean and biased variance
    /// normalise; saveMean/saveRstd (C) keep them for backward; running stats (C) are updated with
    /// momentum and the unbiased variance.</summary>
    void BatchNormTrainForward(ArraySegment<float> x, ArraySegment<float> gamma, ArraySegment<float> beta, ArraySegment<float> y,
        ArraySegment<float> saveMean, ArraySegment<float> saveRstd, ArraySegment<float> runMean, ArraySegment<float> runVar,
        int b, int c, int l, double eps, double momentum);

    /// <summary>Eval-mode BatchNorm with the running statistics.</summary>
    void BatchNormEvalForward(ArraySegment<float> x, ArraySegment<float> gamma, ArraySegment<float> beta, ArraySegment<float> y,
        ArraySegment<float> runMean, ArraySegment<float> runVar, int b, int c, int l, double eps);

    /// <summary>Backward of training-mode BatchNorm: dx overwritten, dGamma/dBeta accumulate.</summary>
    void BatchNormBackward(ArraySegment<float> dy, ArraySegment<float> x, ArraySegment<float> gamma, ArraySegment<float> saveMean,
        ArraySegment<float> saveRstd, ArraySegment<float> dx, ArraySegment<float> dGamma, ArraySegment<float> dBeta, int b, int c, int l);

    /// <summary>1x1 conv with temporal stride: x (B,Cin,T,V), w (Cout,Cin), bias (Cout) -> y (B,Cout,Tout,V),
    /// Tout = (T-1)/stride + 1. With T = V = 1 it is the classifier (Linear).</summary>
    void Conv1x1Forward(ArraySegment<float> x, ArraySegment<float> w, ArraySegment<float> bias, ArraySegment<float> y,
        int b, int cin, int cout, int t, int v, int stride);

    /// <summary>Backward of <see cref="Conv1x1Forward"/>: dx overwritten (zero at skipped frames) unless dx is empty; dW, dBias accumulate.</summary>
    void Conv1x1Backward(ArraySegment<float> dy, ArraySegment<float> x, ArraySegment<float> w, ArraySegment<float> dx,
        ArraySegment<float> dW, ArraySegment<float> dBias, int b, int cin, int cout, int t, int v, int stride);

    /// <summary>Partitioned graph aggregation: y (B,K,C,T,V), A and imp (K,V,V) ->
    /// o[b,c,t,w] = sum_k sum_v y[b,k,c,t,v] * A[k,v,w] * imp[k,v,w].</summary>
    void GraphAggregateForward(ArraySegment<float> y, ArraySegment<float> a, ArraySegment<float> imp, ArraySegment<float> o,
        int b, int k, int c, int t, int v);

    /// <summary>Backward of <see cref="GraphAggregateForward"/>: dy overwritten, dImp accumulates (dA * A).</summary>
    void GraphAggregateBackward(ArraySegment<float> dO, ArraySegment<float> y, ArraySegment<float> a, ArraySegment<float> imp,
        ArraySegment<float> dy, ArraySegment<float> dImp, int b, int k, int c, int t, int v);

    /// <summary>Temporal conv (kt x 1, stride, pad (kt-1)/2): x (B,Cin,T,V), w (Cout,Cin,kt), bias (Cout) -> y (B,Cout,Tout,V).</summary>
    void TemporalConvForward(ArraySegment<float> x, ArraySegment<float> w, ArraySegment<float> bias, ArraySegment<float> y,
        int b, int cin, int cout, int t, int v, int kt, int stride);

    /// <summary>Backward of <see cref="TemporalConvForward"/>: dx overwritten; dW, dBias accumulate.</summary>
    void TemporalConvBackward(ArraySegment<float> dy, ArraySegment<float> x, ArraySegment<float> w, ArraySegment<float> dx,
        ArraySegment<float> dW, ArraySegment<float> dBias, int b, int cin, int cout, int t, int v, int kt, int stride);

    /// <summary>y = max(x, 0) elementwise.</summary>
    void ReluForward(ArraySegment<float> x, ArraySegment<float> y);

    /// <summary>dx = dy where y &gt; 0, else 0 (dx overwritten).</summary>
    void ReluBackward(ArraySegment<float> dy, ArraySegment<float> y, ArraySegment<float> dx);

    /// <summary>Residual join: y = max(a + r, 0); r may be empty (no residual).</summary>
    void ResidualReluForward(ArraySegment<float> a, ArraySegment<float> r, ArraySegment<float> y);

    /// <summary>Backward of the join: da = dy where y &gt; 0 (overwritten); dr (if not empty) overwritten with the same.</summary>
    void ResidualReluBackward(ArraySegment<float> dy, ArraySegment<float> y, ArraySegment<float> da, ArraySegment<float> dr);

    /// <summary>Global average over (T,V) then mean over persons: x (N*M,C,L) -> f (N,C).</summary>
    void PoolForward(ArraySegment<float> x, ArraySegment<float> f, int n, int m, int c, int l);

    /// <summary>Backward of <see cref="PoolForward"/> (dx overwritten).</summary>
    void PoolBackward(ArraySegment<float> df, ArraySegment<float> dx, int n, int m, int c, int l);

    /// <summary>Mean softmax cross-entropy of logits (N,K) against labels; writes dLogits (N,K) = d loss / d logits; returns the loss.</summary>
    double CrossEntropy(ArraySegment<float> logits, ReadOnlySpan<int> labels, ArraySegment<float> dLogits, int n, int k);
}
