using System.Numerics;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// ReLU (tcn.1), elementwise, SIMD in parallel chunks. dx overwritten.
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    protected override void ReluForward(Seg x, Seg y)
    {
        Need(y, x.Count, "y");
        ForChunks(x.Count, (s, e) =>
        {
            var xs = x.AsSpan(s, e - s); var ys = y.AsSpan(s, e - s);
            int w = Vector<float>.Count, i = 0;
            for (; i <= xs.Length - w; i += w) Vector.Max(new Vector<float>(xs.Slice(i, w)), Vector<float>.Zero).CopyTo(ys.Slice(i, w));
            for (; i < xs.Length; i++) ys[i] = xs[i] > 0 ? xs[i] : 0;
        });
    }

    /// <inheritdoc/>
    protected override void ReluBackward(Seg dy, Seg y, Seg dx)
    {
        Need(y, dy.Count, "y"); Need(dx, dy.Count, "dx");
        ForChunks(dy.Count, (s, e) => MaskPositive(dy.AsSpan(s, e - s), y.AsSpan(s, e - s), dx.AsSpan(s, e - s)));
    }

    // d = g where y > 0 else 0.
    private static void MaskPositive(ReadOnlySpan<float> g, ReadOnlySpan<float> y, Span<float> d)
    {
        int w = Vector<float>.Count, i = 0;
        for (; i <= g.Length - w; i += w)
        {
            var m = Vector.GreaterThan(new Vector<float>(y.Slice(i, w)), Vector<float>.Zero);
            Vector.ConditionalSelect(m, new Vector<float>(g.Slice(i, w)), Vector<float>.Zero).CopyTo(d.Slice(i, w));
        }
        for (; i < g.Length; i++) d[i] = y[i] > 0 ? g[i] : 0;
    }
}
