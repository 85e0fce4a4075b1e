using Tdsm.Tensors;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

/// <summary>
/// What the two host tiers share: tensors are <see cref="HostTensor"/> windows of managed arrays
/// (the memory ops here), unwrapped to <see cref="ArraySegment{T}"/> windows for the tier's
/// array-level ops; and the loss, the reference loop on both (N*K values gain nothing from threads or SIMD).
/// </summary>
public abstract class StGcnHostOps : StGcnBufferOps<Seg>
{
    /// <inheritdoc/>
    protected override Seg U(Tensor t) => H(t);

    private static Seg H(Tensor t) => t is HostTensor h ? new Seg(h.Data, h.Offset, h.Length)
        : throw new ArgumentException($"the ST-GCN host tiers take host tensors, got {t}");

    // ------------------------------------------------------------------ memory

    /// <inheritdoc/>
    public override Tensor Allocate(int length) => new HostTensor(length);

    /// <inheritdoc/>
    public override Tensor Adopt(float[] host) => new HostTensor(host, 0, host.Length);

    /// <inheritdoc/>
    public override Tensor View(Tensor storage, int offset, int length)
    {
        var h = H(storage);
        if (offset < 0 || length < 0 || (long)offset + length > h.Count)
            throw new ArgumentException($"view [{offset}, {(long)offset + length}) is outside a tensor of {h.Count}");
        return new HostTensor(h.Array!, h.Offset + offset, length);
    }

    /// <summary>Nothing to release: the garbage collector owns host arrays.</summary>
    public override void Free(Tensor t) => _ = H(t);

    /// <inheritdoc/>
    public override void Upload(ReadOnlySpan<float> source, Tensor destination)
    {
        if (source.Length != destination.Length) throw new ArgumentException($"upload of {source.Length} values into {destination}");
        source.CopyTo(H(destination));
    }

    /// <inheritdoc/>
    public override void Download(Tensor source, Span<float> destination)
    {
        if (destination.Length != source.Length) throw new ArgumentException($"download of {source} into {destination.Length} values");
        H(source).AsSpan().CopyTo(destination);
    }

    /// <inheritdoc/>
    public override void Zero(Tensor t) => H(t).AsSpan().Clear();

    /// <inheritdoc/>
    protected override double CrossEntropy(Seg logits, ReadOnlySpan<int> labels, Seg dLogits, int n, int k) =>
        Reference.Ref.CrossEntropy<float>(logits, labels, dLogits, n, k);
}
