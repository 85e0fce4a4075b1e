using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>
/// SiLU and GELU (tanh approximation), forward and backward, one thread per element, in float32
/// with <see cref="FloatMath.Exp"/> like the managed CPU tier. GELU uses
/// 0.5·(1 + tanh z) = sigmoid(2z), so gelu(v) = v·sigmoid(2z) with z = √(2/π)(v + 0.044715v³).
/// Backward: dx = dy·f'(x), overwritten or added (accumulate = 1).
/// </summary>
public static class Activations
{
    private const float GeluA = 0.7978845608028654f; // √(2/π)
    private const float GeluB = 0.044715f;

    public static void SiluForward(Index1D i, ArrayView<float> x, ArrayView<float> y)
    {
        float v = x[i];
        y[i] = v * FloatMath.Sigmoid(v);
    }

    public static void SiluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, int accumulate)
    {
        float v = x[i], s = FloatMath.Sigmoid(v);
        float g = dy[i] * s * (1 + v * (1 - s));
        dx[i] = accumulate != 0 ? dx[i] + g : g;
    }

    public static void GeluForward(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = Gelu(x[i]);

    /// <summary>GELU_tanh(v) = v·σ(2u), u = √(2/π)(v + 0.044715v³): the kernel above and the GEMMs' fused epilogue (<see cref="GemmArgs.Gelu"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float Gelu(float v) => v * FloatMath.Sigmoid(2 * GeluA * (v + GeluB * v * v * v));

    public static void GeluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, int accumulate)
    {
        float g = dy[i] * GeluDerivative(x[i]);
        dx[i] = accumulate != 0 ? dx[i] + g : g;
    }

    /// <summary>GELU_tanh'(v): the kernel above and the GEMMs' fused backward epilogue (<see cref="GemmArgs.GeluGrad"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float GeluDerivative(float v)
    {
        float s = FloatMath.Sigmoid(2 * GeluA * (v + GeluB * v * v * v)); // 0.5·(1 + tanh z)
        // d/dv [v·0.5(1 + tanh z)] = 0.5(1 + tanh z) + 0.5v(1 − tanh² z)·z'; 1 − tanh² z = 4s(1 − s).
        return s + 2 * v * s * (1 - s) * GeluA * (1 + 3 * GeluB * v * v);
    }
}
