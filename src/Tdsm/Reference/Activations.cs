using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>
/// Elementwise activations, reference tier: SiLU (x·σ(x)) and GELU with the tanh approximation
/// (0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))). Backward takes the forward input and writes
/// dx = dy·f'(x) (overwritten, or added when <c>accumulate</c>).
/// </summary>
public static class Activations
{
    private static readonly double GeluA = Math.Sqrt(2.0 / Math.PI);

    public static void SiluForward<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) { double v = D(x[i]); y[i] = F<T>(v / (1 + Math.Exp(-v))); }
    }

    public static void SiluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, bool accumulate) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = D(x[i]), s = 1 / (1 + Math.Exp(-v));
            double g = D(dy[i]) * s * (1 + v * (1 - s));
            dx[i] = F<T>(accumulate ? D(dx[i]) + g : g);
        }
    }

    public static void GeluTanhForward<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = D(x[i]);
            y[i] = F<T>(0.5 * v * (1 + Math.Tanh(GeluA * (v + 0.044715 * v * v * v))));
        }
    }

    public static void GeluTanhBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, bool accumulate) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = D(x[i]);
            double th = Math.Tanh(GeluA * (v + 0.044715 * v * v * v));
            double d = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * GeluA * (1 + 3 * 0.044715 * v * v);
            double g = D(dy[i]) * d;
            dx[i] = F<T>(accumulate ? D(dx[i]) + g : g);
        }
    }
}
