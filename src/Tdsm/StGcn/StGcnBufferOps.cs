using Tdsm.Tensors;

namespace Tdsm.StGcn;

/// <summary>
/// An ST-GCN tier written over its own buffer type <typeparamref name="TBuf"/> (host array windows,
/// device views): implements every op of <see cref="IStGcnOps"/> by unwrapping the handles once
/// (<see cref="U"/>) and calling the tier's buffer-level overload, so the model is written over
/// handles and each tier over plain buffers, with this one adapter between them. The memory ops
/// stay with the tier.
/// </summary>
/// <typeparam name="TBuf">The tier's buffer: a window of a managed array, a device view; default is "no tensor".</typeparam>
public abstract class StGcnBufferOps<TBuf> : IStGcnOps where TBuf : struct
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>The buffer behind a handle of this tier.</summary>
    /// <exception cref="ArgumentException">The handle belongs to another kind of tier.</exception>
    protected abstract TBuf U(Tensor t);

    // An optional tensor: null is the default (empty) buffer.
    private TBuf Opt(Tensor? t) => t is null ? default : U(t);

    /// <inheritdoc/>
    public abstract Tensor Allocate(int length);
    /// <inheritdoc/>
    public abstract Tensor Adopt(float[] host);
    /// <inheritdoc/>
    public abstract Tensor View(Tensor storage, int offset, int length);
    /// <inheritdoc/>
    public abstract void Free(Tensor t);
    /// <inheritdoc/>
    public abstract void Upload(ReadOnlySpan<float> source, Tensor destination);
    /// <inheritdoc/>
    public abstract void Download(Tensor source, Span<float> destination);
    /// <inheritdoc/>
    public abstract void Zero(Tensor t);

    // ------------------------------------------------------------------ ops: handles -> buffers

    /// <inheritdoc/>
    public void InputToBnLayout(Tensor x, Tensor y, int n, int c, int t, int v, int m) => InputToBnLayout(U(x), U(y), n, c, t, v, m);
    /// <inheritdoc/>
    public void InputToBnLayoutBackward(Tensor dy, Tensor dx, int n, int c, int t, int v, int m) => InputToBnLayoutBackward(U(dy), U(dx), n, c, t, v, m);
    /// <inheritdoc/>
    public void BnToBlockLayout(Tensor x, Tensor y, int b, int c, int t, int v) => BnToBlockLayout(U(x), U(y), b, c, t, v);
    /// <inheritdoc/>
    public void BnToBlockLayoutBackward(Tensor dy, Tensor dx, int b, int c, int t, int v) => BnToBlockLayoutBackward(U(dy), U(dx), b, c, t, v);

    /// <inheritdoc/>
    public void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean, Tensor saveRstd, Tensor runMean, Tensor runVar,
        int b, int c, int l, double eps, double momentum) =>
        BatchNormTrainForward(U(x), U(gamma), U(beta), U(y), U(saveMean), U(saveRstd), U(runMean), U(runVar), b, c, l, eps, momentum);
    /// <inheritdoc/>
    public void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runMean, Tensor runVar, int b, int c, int l, double eps) =>
        BatchNormEvalForward(U(x), U(gamma), U(beta), U(y), U(runMean), U(runVar), b, c, l, eps);
    /// <inheritdoc/>
    public void BatchNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveRstd, Tensor dx, Tensor dGamma, Tensor dBeta, int b, int c, int l) =>
        BatchNormBackward(U(dy), U(x), U(gamma), U(saveMean), U(saveRstd), U(dx), U(dGamma), U(dBeta), b, c, l);

    /// <inheritdoc/>
    public void Conv1x1Forward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int stride) =>
        Conv1x1Forward(U(x), U(w), U(bias), U(y), b, cin, cout, t, v, stride);
    /// <inheritdoc/>
    public void Conv1x1Backward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int stride) =>
        Conv1x1Backward(U(dy), U(x), U(w), Opt(dx), U(dW), U(dBias), b, cin, cout, t, v, stride);

    /// <inheritdoc/>
    public void GraphAggregateForward(Tensor y, Tensor a, Tensor imp, Tensor o, int b, int k, int c, int t, int v) =>
        GraphAggregateForward(U(y), U(a), U(imp), U(o), b, k, c, t, v);
    /// <inheritdoc/>
    public void GraphAggregateBackward(Tensor dO, Tensor y, Tensor a, Tensor imp, Tensor dy, Tensor dImp, int b, int k, int c, int t, int v) =>
        GraphAggregateBackward(U(dO), U(y), U(a), U(imp), U(dy), U(dImp), b, k, c, t, v);

    /// <inheritdoc/>
    public void TemporalConvForward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        TemporalConvForward(U(x), U(w), U(bias), U(y), b, cin, cout, t, v, kt, stride);
    /// <inheritdoc/>
    public void TemporalConvBackward(Tensor dy, Tensor x, Tensor w, Tensor dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        TemporalConvBackward(U(dy), U(x), U(w), U(dx), U(dW), U(dBias), b, cin, cout, t, v, kt, stride);

    /// <inheritdoc/>
    public void ReluForward(Tensor x, Tensor y) => ReluForward(U(x), U(y));
    /// <inheritdoc/>
    public void ReluBackward(Tensor dy, Tensor y, Tensor dx) => ReluBackward(U(dy), U(y), U(dx));
    /// <inheritdoc/>
    public void ResidualReluForward(Tensor a, Tensor? r, Tensor y) => ResidualReluForward(U(a), Opt(r), U(y));
    /// <inheritdoc/>
    public void ResidualReluBackward(Tensor dy, Tensor y, Tensor da, Tensor? dr) => ResidualReluBackward(U(dy), U(y), U(da), Opt(dr));

    /// <inheritdoc/>
    public void AddInPlace(Tensor source, Tensor destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException($"AddInPlace: destination {destination} is shorter than source {source}");
        AddInPlace(U(source), U(destination));
    }

    /// <inheritdoc/>
    public void PoolForward(Tensor x, Tensor f, int n, int m, int c, int l) => PoolForward(U(x), U(f), n, m, c, l);
    /// <inheritdoc/>
    public void PoolBackward(Tensor df, Tensor dx, int n, int m, int c, int l) => PoolBackward(U(df), U(dx), n, m, c, l);

    /// <inheritdoc/>
    public double CrossEntropy(Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits, int n, int k) => CrossEntropy(U(logits), labels, U(dLogits), n, k);

    /// <inheritdoc/>
    public void SgdNesterovStep(Tensor p, Tensor g, Tensor buf, double lr, double momentum, double weightDecay)
    {
        if (g.Length != p.Length || buf.Length != p.Length)
            throw new ArgumentException($"SGD: {p.Length} parameters, {g.Length} gradients and {buf.Length} momentum values, expected equal lengths");
        SgdNesterovStep(U(p), U(g), U(buf), lr, momentum, weightDecay);
    }

    // ------------------------------------------------------------------ the tier's buffer-level ops (same contracts)

    /// <summary>See <see cref="IStGcnOps.InputToBnLayout"/>.</summary>
    protected abstract void InputToBnLayout(TBuf x, TBuf y, int n, int c, int t, int v, int m);
    /// <summary>See <see cref="IStGcnOps.InputToBnLayoutBackward"/>.</summary>
    protected abstract void InputToBnLayoutBackward(TBuf dy, TBuf dx, int n, int c, int t, int v, int m);
    /// <summary>See <see cref="IStGcnOps.BnToBlockLayout"/>.</summary>
    protected abstract void BnToBlockLayout(TBuf x, TBuf y, int b, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.BnToBlockLayoutBackward"/>.</summary>
    protected abstract void BnToBlockLayoutBackward(TBuf dy, TBuf dx, int b, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.BatchNormTrainForward"/>.</summary>
    protected abstract void BatchNormTrainForward(TBuf x, TBuf gamma, TBuf beta, TBuf y, TBuf saveMean, TBuf saveRstd, TBuf runMean, TBuf runVar,
        int b, int c, int l, double eps, double momentum);
    /// <summary>See <see cref="IStGcnOps.BatchNormEvalForward"/>.</summary>
    protected abstract void BatchNormEvalForward(TBuf x, TBuf gamma, TBuf beta, TBuf y, TBuf runMean, TBuf runVar, int b, int c, int l, double eps);
    /// <summary>See <see cref="IStGcnOps.BatchNormBackward"/>.</summary>
    protected abstract void BatchNormBackward(TBuf dy, TBuf x, TBuf gamma, TBuf saveMean, TBuf saveRstd, TBuf dx, TBuf dGamma, TBuf dBeta, int b, int c, int l);
    /// <summary>See <see cref="IStGcnOps.Conv1x1Forward"/>.</summary>
    protected abstract void Conv1x1Forward(TBuf x, TBuf w, TBuf bias, TBuf y, int b, int cin, int cout, int t, int v, int stride);
    /// <summary>See <see cref="IStGcnOps.Conv1x1Backward"/> (dx empty: no input gradient).</summary>
    protected abstract void Conv1x1Backward(TBuf dy, TBuf x, TBuf w, TBuf dx, TBuf dW, TBuf dBias, int b, int cin, int cout, int t, int v, int stride);
    /// <summary>See <see cref="IStGcnOps.GraphAggregateForward"/>.</summary>
    protected abstract void GraphAggregateForward(TBuf y, TBuf a, TBuf imp, TBuf o, int b, int k, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.GraphAggregateBackward"/>.</summary>
    protected abstract void GraphAggregateBackward(TBuf dO, TBuf y, TBuf a, TBuf imp, TBuf dy, TBuf dImp, int b, int k, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.TemporalConvForward"/>.</summary>
    protected abstract void TemporalConvForward(TBuf x, TBuf w, TBuf bias, TBuf y, int b, int cin, int cout, int t, int v, int kt, int stride);
    /// <summary>See <see cref="IStGcnOps.TemporalConvBackward"/>.</summary>
    protected abstract void TemporalConvBackward(TBuf dy, TBuf x, TBuf w, TBuf dx, TBuf dW, TBuf dBias, int b, int cin, int cout, int t, int v, int kt, int stride);
    /// <summary>See <see cref="IStGcnOps.ReluForward"/>.</summary>
    protected abstract void ReluForward(TBuf x, TBuf y);
    /// <summary>See <see cref="IStGcnOps.ReluBackward"/>.</summary>
    protected abstract void ReluBackward(TBuf dy, TBuf y, TBuf dx);
    /// <summary>See <see cref="IStGcnOps.ResidualReluForward"/> (r empty: no residual).</summary>
    protected abstract void ResidualReluForward(TBuf a, TBuf r, TBuf y);
    /// <summary>See <see cref="IStGcnOps.ResidualReluBackward"/> (dr empty: no residual).</summary>
    protected abstract void ResidualReluBackward(TBuf dy, TBuf y, TBuf da, TBuf dr);
    /// <summary>See <see cref="IStGcnOps.AddInPlace"/>.</summary>
    protected abstract void AddInPlace(TBuf source, TBuf destination);
    /// <summary>See <see cref="IStGcnOps.PoolForward"/>.</summary>
    protected abstract void PoolForward(TBuf x, TBuf f, int n, int m, int c, int l);
    /// <summary>See <see cref="IStGcnOps.PoolBackward"/>.</summary>
    protected abstract void PoolBackward(TBuf df, TBuf dx, int n, int m, int c, int l);
    /// <summary>See <see cref="IStGcnOps.CrossEntropy"/>.</summary>
    protected abstract double CrossEntropy(TBuf logits, ReadOnlySpan<int> labels, TBuf dLogits, int n, int k);
    /// <summary>See <see cref="IStGcnOps.SgdNesterovStep"/> (lengths checked).</summary>
    protected abstract void SgdNesterovStep(TBuf p, TBuf g, TBuf buf, double lr, double momentum, double weightDecay);
}
