using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>
/// SiLU and GELU (tanh approximation), forward and backward, one thread per element. The
/// transcendental math runs in float64 through XMath so the results match the reference tier
/// within float32 rounding (fast-math approximations would add ~1e-3 relative error to tanh).
/// Backward: dx = dy·f'(x), overwritten or added (accumulate = 1).
/// </summary>
public static class Activations
{
    private const double GeluA = 0.7978845608028654; // √(2/π)

    public static void SiluForward(Index1D i, ArrayView<float> x, ArrayView<float> y)
    {
        double v = x[i];
        y[i] = (float)(v / (1 + XMath.Exp(-v)));
    }

    public static void SiluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, int accumulate)
    {
        double v = x[i], s = 1 / (1 + XMath.Exp(-v));
        double g = dy[i] * s * (1 + v * (1 - s));
        dx[i] = accumulate != 0 ? (float)(dx[i] + g) : (float)g;
    }

    private static double Tanh(double z)
    {
        double e = XMath.Exp(-2 * XMath.Abs(z));
        double t = (1 - e) / (1 + e);
        return z < 0 ? -t : t;
    }

    public static void GeluForward(Index1D i, ArrayView<float> x, ArrayView<float> y)
    {
        double v = x[i];
        y[i] = (float)(0.5 * v * (1 + Tanh(GeluA * (v + 0.044715 * v * v * v))));
    }

    public static void GeluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, int accumulate)
    {
        double v = x[i];
        double th = Tanh(GeluA * (v + 0.044715 * v * v * v));
        double d = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * GeluA * (1 + 3 * 0.044715 * v * v);
        double g = dy[i] * d;
        dx[i] = accumulate != 0 ? (float)(dx[i] + g) : (float)g;
    }
}
