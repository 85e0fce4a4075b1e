using Tdsm.Tensors;

namespace Tdsm.StGcn;

/// <summary>
/// Every ST-GCN op as a forward/backward pair, plus the memory and optimiser ops the model needs,
/// implemented by the reference tier (<see cref="StGcnReferenceOps"/>), the managed CPU tier
/// (<see cref="StGcnCpuOps"/>) and the ILGPU tier (StGcnGpuOps in Tdsm.Gpu).
/// Arguments are <see cref="Tensor"/> handles, as in the DiT's <see cref="Tdsm.Ops.IOps"/>: the model
/// (<see cref="StGcnModel"/>) is written once over them and each tier knows what is behind a handle
/// (a host array window, a device view), so parameters, gradients, running statistics, momentum and
/// activations live where the tier computes. A handle is only valid with the op set that made it.
/// Handles rather than a buffer type parameter on the model: the tier is chosen at run time
/// (--backend, <see cref="StGcnParity.Backend"/>) and one non-generic model type serves training,
/// checkpoints, extraction and the inference library, as for the DiT; unwrapping a handle is one type
/// check per op call (<see cref="StGcnBufferOps{TBuf}"/>), nothing next to the op itself.
/// Shape letters: N samples, M persons, B = N*M person-samples, C channels, T frames,
/// V joints, K graph partitions, L = T*V. Tensors are row-major float32; a tensor argument may be
/// longer than the op needs (a scratch buffer sized for the largest block).
/// Activation gradients overwrite (=); parameter gradients accumulate (+=).
/// </summary>
public interface IStGcnOps
{
    /// <summary>Tier name ("reference", "cpu", "gpu", "gpu-sim").</summary>
    string Name { get; }

    // ------------------------------------------------------------------ memory

    /// <summary>A zero-filled tensor of <paramref name="length"/> elements.</summary>
    Tensor Allocate(int length);

    /// <summary>A tensor holding <paramref name="host"/>'s values: on a host tier a view of the array itself (no copy;
    /// later edits of the array are the tensor's values and the ops write into it), on a device a new buffer with a copy.</summary>
    Tensor Adopt(float[] host);

    /// <summary>A view of <paramref name="length"/> elements of <paramref name="storage"/> starting at <paramref name="offset"/>.</summary>
    Tensor View(Tensor storage, int offset, int length);

    /// <summary>Releases a tensor made by <see cref="Allocate"/> or <see cref="Adopt"/> (device memory; nothing on host tiers).</summary>
    void Free(Tensor t);

    /// <summary>Copies host values into a tensor of the same length.</summary>
    void Upload(ReadOnlySpan<float> source, Tensor destination);

    /// <summary>Copies a tensor's values to the host (waits for queued work).</summary>
    void Download(Tensor source, Span<float> destination);

    /// <summary>Sets every element to 0.</summary>
    void Zero(Tensor t);

    // ------------------------------------------------------------------ model ops

    /// <summary>x is (N,C,T,V,M) -> y is (B, V*C, T) with channel index v*C + c (the data_bn view).</summary>
    void InputToBnLayout(Tensor x, Tensor y, int n, int c, int t, int v, int m);

    /// <summary>Backward of <see cref="InputToBnLayout"/> (dx overwritten).</summary>
    void InputToBnLayoutBackward(Tensor dy, Tensor dx, int n, int c, int t, int v, int m);

    /// <summary>x is (B, V*C, T) -> y is (B, C, T, V): each person a separate sample.</summary>
    void BnToBlockLayout(Tensor x, Tensor y, int b, int c, int t, int v);

    /// <summary>Backward of <see cref="BnToBlockLayout"/> (dx overwritten).</summary>
    void BnToBlockLayoutBackward(Tensor dy, Tensor dx, int b, int c, int t, int v);

    /// <summary>Training-mode BatchNorm over channels of x (B,C,L): batch mean and biased variance
    /// normalise; saveMean/saveRstd (C) keep them for backward; running stats (C) are updated with
    /// momentum and the unbiased variance.</summary>
    void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean, Tensor saveRstd, Tensor runMean, Tensor runVar,
        int b, int c, int l, double eps, double momentum);

    /// <summary>Eval-mode BatchNorm with the running statistics.</summary>
    void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runMean, Tensor runVar, int b, int c, int l, double eps);

    /// <summary>Backward of training-mode BatchNorm: dx overwritten, dGamma/dBeta accumulate.</summary>
    void BatchNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveRstd, Tensor dx, Tensor dGamma, Tensor dBeta, int b, int c, int l);

    /// <summary>1x1 conv with temporal stride: x (B,Cin,T,V), w (Cout,Cin), bias (Cout) -> y (B,Cout,Tout,V),
    /// Tout = (T-1)/stride + 1. With T = V = 1 it is the classifier (Linear).</summary>
    void Conv1x1Forward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int stride);

    /// <summary>Backward of <see cref="Conv1x1Forward"/>: dx overwritten (zero at skipped frames) unless dx is null; dW, dBias accumulate.</summary>
    void Conv1x1Backward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int stride);

    /// <summary>Partitioned graph aggregation: y (B,K,C,T,V), A and imp (K,V,V) ->
    /// o[b,c,t,w] = sum_k sum_v y[b,k,c,t,v] * A[k,v,w] * imp[k,v,w].</summary>
    void GraphAggregateForward(Tensor y, Tensor a, Tensor imp, Tensor o, int b, int k, int c, int t, int v);

    /// <summary>Backward of <see cref="GraphAggregateForward"/>: dy overwritten, dImp accumulates (dA * A).</summary>
    void GraphAggregateBackward(Tensor dO, Tensor y, Tensor a, Tensor imp, Tensor dy, Tensor dImp, int b, int k, int c, int t, int v);

    /// <summary>Temporal conv (kt x 1, stride, pad (kt-1)/2): x (B,Cin,T,V), w (Cout,Cin,kt), bias (Cout) -> y (B,Cout,Tout,V).</summary>
    void TemporalConvForward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int kt, int stride);

    /// <summary>Backward of <see cref="TemporalConvForward"/>: dx overwritten; dW, dBias accumulate.</summary>
    void TemporalConvBackward(Tensor dy, Tensor x, Tensor w, Tensor dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int kt, int stride);

    /// <summary>y = max(x, 0) elementwise.</summary>
    void ReluForward(Tensor x, Tensor y);

    /// <summary>dx = dy where y &gt; 0, else 0 (dx overwritten).</summary>
    void ReluBackward(Tensor dy, Tensor y, Tensor dx);

    /// <summary>Residual join: y = max(a + r, 0); r null: no residual.</summary>
    void ResidualReluForward(Tensor a, Tensor? r, Tensor y);

    /// <summary>Backward of the join: da = dy where y &gt; 0 (overwritten); dr (if not null) overwritten with the same.</summary>
    void ResidualReluBackward(Tensor dy, Tensor y, Tensor da, Tensor? dr);

    /// <summary>dst += src over src's length (the residual branch's gradient joining the block input's).</summary>
    void AddInPlace(Tensor source, Tensor destination);

    /// <summary>Global average over (T,V) then mean over persons: x (N*M,C,L) -> f (N,C).</summary>
    void PoolForward(Tensor x, Tensor f, int n, int m, int c, int l);

    /// <summary>Backward of <see cref="PoolForward"/> (dx overwritten).</summary>
    void PoolBackward(Tensor df, Tensor dx, int n, int m, int c, int l);

    /// <summary>Mean softmax cross-entropy of logits (N,K) against host labels; writes dLogits (N,K) = d loss / d logits;
    /// returns the loss (on a device: the labels go up, the loss comes back).</summary>
    double CrossEntropy(Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits, int n, int k);

    /// <summary>One SGD step with Nesterov momentum and L2 weight decay over p, g, momentum buffer buf (same length),
    /// PyTorch semantics (dampening 0): d = g + wd p; buf = mu buf + d; p -= lr (d + mu buf).</summary>
    void SgdNesterovStep(Tensor p, Tensor g, Tensor buf, double lr, double momentum, double weightDecay);
}
