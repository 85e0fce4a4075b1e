using System.Numerics;

namespace Tdsm.StGcn.Reference;

// ReLU (tcn.1), elementwise over any shape. dx overwritten.
public static partial class Ref
{
    /// <summary>y = max(x, 0).</summary>
    public static void ReluForward<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        Need<T>(y, x.Length, "y");
        for (int i = 0; i < x.Length; i++) y[i] = x[i] > T.Zero ? x[i] : T.Zero;
    }

    /// <summary>dx = dy where y &gt; 0 else 0.</summary>
    public static void ReluBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx) where T : IFloatingPointIeee754<T>
    {
        Need<T>(y, dy.Length, "y"); Need<T>(dx, dy.Length, "dx");
        for (int i = 0; i < dy.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
    }
}
