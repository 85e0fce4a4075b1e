using System.Numerics;

namespace Tdsm.StGcn.Reference;

// Residual join at the end of a block: y = max(a + r, 0), a = tcn output, r = residual branch
// (identity input, or res conv + BN), r empty for a block without residual. All (B,C,T,V).
// Backward: da and dr overwritten with dy masked by y > 0.
public static partial class Ref
{
    /// <summary>Forward.</summary>
    public static void ResidualReluForward<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> r, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        Need<T>(y, a.Length, "y");
        if (!r.IsEmpty) Need<T>(r, a.Length, "r");
        for (int i = 0; i < a.Length; i++)
        {
            double s = D(a[i]) + (r.IsEmpty ? 0.0 : D(r[i]));
            y[i] = F<T>(s > 0 ? s : 0.0);
        }
    }

    /// <summary>Backward.</summary>
    public static void ResidualReluBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> da, Span<T> dr) where T : IFloatingPointIeee754<T>
    {
        Need<T>(y, dy.Length, "y"); Need<T>(da, dy.Length, "da");
        for (int i = 0; i < dy.Length; i++)
        {
            var g = y[i] > T.Zero ? dy[i] : T.Zero;
            da[i] = g;
            if (!dr.IsEmpty) dr[i] = g;
        }
    }
}
