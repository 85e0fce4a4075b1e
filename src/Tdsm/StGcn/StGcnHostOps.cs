using Tdsm.Tensors;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

/// <summary>
/// What the two host tiers share: tensors are <see cref="HostTensor"/> windows of managed arrays
/// (memory ops here), and every op unwraps its handles to <see cref="ArraySegment{T}"/> windows and
/// calls the tier's array-level implementation (the protected overloads), so a tier is written over
/// plain arrays and the model over handles.
/// </summary>
public abstract class StGcnHostOps : IStGcnOps
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>The array window behind a host tensor.</summary>
    /// <exception cref="ArgumentException">The tensor is not a host tensor (e.g. a device tensor given to a host tier).</exception>
    protected static Seg H(Tensor t) => t is HostTensor h ? new Seg(h.Data, h.Offset, h.Length)
        : throw new ArgumentException($"the ST-GCN host tiers take host tensors, got {t}");

    // An optional tensor: null is the empty window.
    private static Seg Opt(Tensor? t) => t is null ? Seg.Empty : H(t);

    // ------------------------------------------------------------------ memory

    /// <inheritdoc/>
    public Tensor Allocate(int length) => new HostTensor(length);

    /// <inheritdoc/>
    public Tensor Adopt(float[] host) => new HostTensor(host, 0, host.Length);

    /// <inheritdoc/>
    public Tensor View(Tensor storage, int offset, int length)
    {
        var h = H(storage);
        if (offset < 0 || length < 0 || (long)offset + length > h.Count)
            throw new ArgumentException($"view [{offset}, {(long)offset + length}) is outside a tensor of {h.Count}");
        return new HostTensor(h.Array!, h.Offset + offset, length);
    }

    /// <summary>Nothing to release: the garbage collector owns host arrays.</summary>
    public void Free(Tensor t) => _ = H(t);

    /// <inheritdoc/>
    public void Upload(ReadOnlySpan<float> source, Tensor destination)
    {
        if (source.Length != destination.Length) throw new ArgumentException($"upload of {source.Length} values into {destination}");
        source.CopyTo(H(destination));
    }

    /// <inheritdoc/>
    public void Download(Tensor source, Span<float> destination)
    {
        if (destination.Length != source.Length) throw new ArgumentException($"download of {source} into {destination.Length} values");
        H(source).AsSpan().CopyTo(destination);
    }

    /// <inheritdoc/>
    public void Zero(Tensor t) => H(t).AsSpan().Clear();

    // ------------------------------------------------------------------ ops: handles -> array windows

    /// <inheritdoc/>
    public void InputToBnLayout(Tensor x, Tensor y, int n, int c, int t, int v, int m) => InputToBnLayout(H(x), H(y), n, c, t, v, m);
    /// <inheritdoc/>
    public void InputToBnLayoutBackward(Tensor dy, Tensor dx, int n, int c, int t, int v, int m) => InputToBnLayoutBackward(H(dy), H(dx), n, c, t, v, m);
    /// <inheritdoc/>
    public void BnToBlockLayout(Tensor x, Tensor y, int b, int c, int t, int v) => BnToBlockLayout(H(x), H(y), b, c, t, v);
    /// <inheritdoc/>
    public void BnToBlockLayoutBackward(Tensor dy, Tensor dx, int b, int c, int t, int v) => BnToBlockLayoutBackward(H(dy), H(dx), b, c, t, v);

    /// <inheritdoc/>
    public void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean, Tensor saveRstd, Tensor runMean, Tensor runVar,
        int b, int c, int l, double eps, double momentum) =>
        BatchNormTrainForward(H(x), H(gamma), H(beta), H(y), H(saveMean), H(saveRstd), H(runMean), H(runVar), b, c, l, eps, momentum);
    /// <inheritdoc/>
    public void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runMean, Tensor runVar, int b, int c, int l, double eps) =>
        BatchNormEvalForward(H(x), H(gamma), H(beta), H(y), H(runMean), H(runVar), b, c, l, eps);
    /// <inheritdoc/>
    public void BatchNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveRstd, Tensor dx, Tensor dGamma, Tensor dBeta, int b, int c, int l) =>
        BatchNormBackward(H(dy), H(x), H(gamma), H(saveMean), H(saveRstd), H(dx), H(dGamma), H(dBeta), b, c, l);

    /// <inheritdoc/>
    public void Conv1x1Forward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int stride) =>
        Conv1x1Forward(H(x), H(w), H(bias), H(y), b, cin, cout, t, v, stride);
    /// <inheritdoc/>
    public void Conv1x1Backward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int stride) =>
        Conv1x1Backward(H(dy), H(x), H(w), Opt(dx), H(dW), H(dBias), b, cin, cout, t, v, stride);

    /// <inheritdoc/>
    public void GraphAggregateForward(Tensor y, Tensor a, Tensor imp, Tensor o, int b, int k, int c, int t, int v) =>
        GraphAggregateForward(H(y), H(a), H(imp), H(o), b, k, c, t, v);
    /// <inheritdoc/>
    public void GraphAggregateBackward(Tensor dO, Tensor y, Tensor a, Tensor imp, Tensor dy, Tensor dImp, int b, int k, int c, int t, int v) =>
        GraphAggregateBackward(H(dO), H(y), H(a), H(imp), H(dy), H(dImp), b, k, c, t, v);

    /// <inheritdoc/>
    public void TemporalConvForward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        TemporalConvForward(H(x), H(w), H(bias), H(y), b, cin, cout, t, v, kt, stride);
    /// <inheritdoc/>
    public void TemporalConvBackward(Tensor dy, Tensor x, Tensor w, Tensor dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        TemporalConvBackward(H(dy), H(x), H(w), H(dx), H(dW), H(dBias), b, cin, cout, t, v, kt, stride);

    /// <inheritdoc/>
    public void ReluForward(Tensor x, Tensor y) => ReluForward(H(x), H(y));
    /// <inheritdoc/>
    public void ReluBackward(Tensor dy, Tensor y, Tensor dx) => ReluBackward(H(dy), H(y), H(dx));
    /// <inheritdoc/>
    public void ResidualReluForward(Tensor a, Tensor? r, Tensor y) => ResidualReluForward(H(a), Opt(r), H(y));
    /// <inheritdoc/>
    public void ResidualReluBackward(Tensor dy, Tensor y, Tensor da, Tensor? dr) => ResidualReluBackward(H(dy), H(y), H(da), Opt(dr));

    /// <inheritdoc/>
    public void AddInPlace(Tensor source, Tensor destination)
    {
        var s = H(source);
        if (H(destination).Count < s.Count) throw new ArgumentException($"AddInPlace: destination {destination} is shorter than source {source}");
        AddInPlace(s, H(destination));
    }

    /// <inheritdoc/>
    public void PoolForward(Tensor x, Tensor f, int n, int m, int c, int l) => PoolForward(H(x), H(f), n, m, c, l);
    /// <inheritdoc/>
    public void PoolBackward(Tensor df, Tensor dx, int n, int m, int c, int l) => PoolBackward(H(df), H(dx), n, m, c, l);

    /// <inheritdoc/>
    public double CrossEntropy(Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits, int n, int k) =>
        // N*K values: too small to gain from threads or SIMD, so the reference loop serves both host tiers.
        Reference.Ref.CrossEntropy<float>(H(logits), labels, H(dLogits), n, k);

    /// <inheritdoc/>
    public void SgdNesterovStep(Tensor p, Tensor g, Tensor buf, double lr, double momentum, double weightDecay)
    {
        if (g.Length != p.Length || buf.Length != p.Length)
            throw new ArgumentException($"SGD: {p.Length} parameters, {g.Length} gradients and {buf.Length} momentum values, expected equal lengths");
        SgdNesterovStep(H(p), H(g), H(buf), lr, momentum, weightDecay);
    }

    // ------------------------------------------------------------------ the tier's array-level ops (same contracts)

    /// <summary>See <see cref="IStGcnOps.InputToBnLayout"/>.</summary>
    protected abstract void InputToBnLayout(Seg x, Seg y, int n, int c, int t, int v, int m);
    /// <summary>See <see cref="IStGcnOps.InputToBnLayoutBackward"/>.</summary>
    protected abstract void InputToBnLayoutBackward(Seg dy, Seg dx, int n, int c, int t, int v, int m);
    /// <summary>See <see cref="IStGcnOps.BnToBlockLayout"/>.</summary>
    protected abstract void BnToBlockLayout(Seg x, Seg y, int b, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.BnToBlockLayoutBackward"/>.</summary>
    protected abstract void BnToBlockLayoutBackward(Seg dy, Seg dx, int b, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.BatchNormTrainForward"/>.</summary>
    protected abstract void BatchNormTrainForward(Seg x, Seg gamma, Seg beta, Seg y, Seg saveMean, Seg saveRstd, Seg runMean, Seg runVar,
        int b, int c, int l, double eps, double momentum);
    /// <summary>See <see cref="IStGcnOps.BatchNormEvalForward"/>.</summary>
    protected abstract void BatchNormEvalForward(Seg x, Seg gamma, Seg beta, Seg y, Seg runMean, Seg runVar, int b, int c, int l, double eps);
    /// <summary>See <see cref="IStGcnOps.BatchNormBackward"/>.</summary>
    protected abstract void BatchNormBackward(Seg dy, Seg x, Seg gamma, Seg saveMean, Seg saveRstd, Seg dx, Seg dGamma, Seg dBeta, int b, int c, int l);
    /// <summary>See <see cref="IStGcnOps.Conv1x1Forward"/>.</summary>
    protected abstract void Conv1x1Forward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int stride);
    /// <summary>See <see cref="IStGcnOps.Conv1x1Backward"/> (dx empty: no input gradient).</summary>
    protected abstract void Conv1x1Backward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int stride);
    /// <summary>See <see cref="IStGcnOps.GraphAggregateForward"/>.</summary>
    protected abstract void GraphAggregateForward(Seg y, Seg a, Seg imp, Seg o, int b, int k, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.GraphAggregateBackward"/>.</summary>
    protected abstract void GraphAggregateBackward(Seg dO, Seg y, Seg a, Seg imp, Seg dy, Seg dImp, int b, int k, int c, int t, int v);
    /// <summary>See <see cref="IStGcnOps.TemporalConvForward"/>.</summary>
    protected abstract void TemporalConvForward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int kt, int stride);
    /// <summary>See <see cref="IStGcnOps.TemporalConvBackward"/>.</summary>
    protected abstract void TemporalConvBackward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int kt, int stride);
    /// <summary>See <see cref="IStGcnOps.ReluForward"/>.</summary>
    protected abstract void ReluForward(Seg x, Seg y);
    /// <summary>See <see cref="IStGcnOps.ReluBackward"/>.</summary>
    protected abstract void ReluBackward(Seg dy, Seg y, Seg dx);
    /// <summary>See <see cref="IStGcnOps.ResidualReluForward"/> (r empty: no residual).</summary>
    protected abstract void ResidualReluForward(Seg a, Seg r, Seg y);
    /// <summary>See <see cref="IStGcnOps.ResidualReluBackward"/> (dr empty: no residual).</summary>
    protected abstract void ResidualReluBackward(Seg dy, Seg y, Seg da, Seg dr);
    /// <summary>See <see cref="IStGcnOps.AddInPlace"/>.</summary>
    protected abstract void AddInPlace(Seg source, Seg destination);
    /// <summary>See <see cref="IStGcnOps.PoolForward"/>.</summary>
    protected abstract void PoolForward(Seg x, Seg f, int n, int m, int c, int l);
    /// <summary>See <see cref="IStGcnOps.PoolBackward"/>.</summary>
    protected abstract void PoolBackward(Seg df, Seg dx, int n, int m, int c, int l);
    /// <summary>See <see cref="IStGcnOps.SgdNesterovStep"/> (lengths checked).</summary>
    protected abstract void SgdNesterovStep(Seg p, Seg g, Seg buf, double lr, double momentum, double weightDecay);
}
