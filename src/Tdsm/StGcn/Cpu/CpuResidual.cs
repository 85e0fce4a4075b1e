using System.Numerics;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Residual join y = max(a + r, 0) (r empty: no residual), SIMD in parallel chunks.
// Backward: da and dr overwritten with dy masked by y > 0; the residual branch's gradient then joins
// the block input's (AddInPlace, SIMD axpy).
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    protected override void ResidualReluForward(Seg a, Seg r, Seg y)
    {
        Need(y, a.Count, "y");
        bool hasR = r.Count > 0;
        if (hasR) Need(r, a.Count, "r");
        ForChunks(a.Count, (s, e) =>
        {
            var As = a.AsSpan(s, e - s); var ys = y.AsSpan(s, e - s);
            var rs = hasR ? r.AsSpan(s, e - s) : default;
            int w = Vector<float>.Count, i = 0;
            for (; i <= As.Length - w; i += w)
            {
                var sum = new Vector<float>(As.Slice(i, w));
                if (hasR) sum += new Vector<float>(rs.Slice(i, w));
                Vector.Max(sum, Vector<float>.Zero).CopyTo(ys.Slice(i, w));
            }
            for (; i < As.Length; i++) { float q = As[i] + (hasR ? rs[i] : 0f); ys[i] = q > 0 ? q : 0; }
        });
    }

    /// <inheritdoc/>
    protected override void ResidualReluBackward(Seg dy, Seg y, Seg da, Seg dr)
    {
        Need(y, dy.Count, "y"); Need(da, dy.Count, "da");
        bool hasR = dr.Count > 0;
        ForChunks(dy.Count, (s, e) =>
        {
            MaskPositive(dy.AsSpan(s, e - s), y.AsSpan(s, e - s), da.AsSpan(s, e - s));
            if (hasR) da.AsSpan(s, e - s).CopyTo(dr.AsSpan(s, e - s));
        });
    }

    /// <inheritdoc/>
    protected override void AddInPlace(Seg source, Seg destination) => Tdsm.Cpu.Gemm.Axpy(1f, source, destination.AsSpan(0, source.Count));
}
