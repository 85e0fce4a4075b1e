using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Vec4 = Tdsm.Kernels.Gemm.Vec4;

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
    public static float Gelu(float v) => v * FloatMath.Sigmoid(GeluSigmoidArgument(v));

    // 2u = 2√(2/π)(v + 0.044715v³): σ(2u) = 0.5·(1 + tanh u), the precise and the fast GELU's sigmoid argument.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static float GeluSigmoidArgument(float v) => 2 * GeluA * (v + GeluB * v * v * v);

    // GELU_tanh'(v) given s = σ(2u): d/dv [v·0.5(1 + tanh u)] = 0.5(1 + tanh u) + 0.5v(1 − tanh² u)·u'; 1 − tanh² u = 4s(1 − s).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static float GeluDerivativeGivenSigmoid(float v, float s) => s + 2 * v * s * (1 - s) * GeluA * (1 + 3 * GeluB * v * v);

    public static void GeluBackward(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, int accumulate)
    {
        float g = dy[i] * GeluDerivative(x[i]);
        dx[i] = accumulate != 0 ? dx[i] + g : g;
    }

    /// <summary>GELU_tanh'(v): the kernel above and the GEMMs' fused backward epilogue (<see cref="GemmArgs.GeluGrad"/>).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float GeluDerivative(float v) => GeluDerivativeGivenSigmoid(v, FloatMath.Sigmoid(GeluSigmoidArgument(v)));

    // --- The bf16 / tf32 paths' GELU: the sigmoid through the GPU's approximate exp2 and reciprocal ---------------------------
    // Their products carry bf16 (2⁻⁹) or tf32 (2⁻¹²) rounding and the packed epilogues round the result to bf16; the
    // approximate sigmoid adds ≲ 1e-6 relative (FloatMath.SigmoidFast). The fp32 path (parity) keeps Gelu / GeluDerivative.

    /// <summary>GELU_tanh for the bf16 / tf32 paths (the tensor-core GEMMs' epilogues, <see cref="GeluForwardFast"/>):
    /// <see cref="Gelu"/> with <see cref="FloatMath.SigmoidFast"/>; the same value as Gelu off CUDA (simulator, CPU).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float GeluFast(float v) => v * FloatMath.SigmoidFast(GeluSigmoidArgument(v));

    /// <summary>GELU_tanh' for the bf16 / tf32 paths: <see cref="GeluDerivative"/> with <see cref="FloatMath.SigmoidFast"/>.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float GeluDerivativeFast(float v) => GeluDerivativeGivenSigmoid(v, FloatMath.SigmoidFast(GeluSigmoidArgument(v)));

    /// <summary><see cref="GeluForward"/> with <see cref="GeluFast"/>: the training step's GELU when the GEMMs run in bf16 or tf32.</summary>
    public static void GeluForwardFast(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = GeluFast(x[i]);

    /// <summary>
    /// <see cref="GeluForwardFast"/> over pairs, thread w for elements 2w and 2w + 1, also writing the pair as one bf16 word
    /// (<see cref="Bf16.Pack"/>, as <see cref="Bf16.PackRows"/> would): the packed A operand of the product that reads y next
    /// (the training step's fc2), without a pack pass over y. Launch over x.Length / 2 words (x.Length even).
    /// </summary>
    public static void GeluForwardFastPacked(Index1D w, ArrayView<float> x, ArrayView<float> y, ArrayView<uint> packed)
    {
        long i = 2L * w;
        float lo = GeluFast(x[i]), hi = GeluFast(x[i + 1]);
        y[i] = lo;
        y[i + 1] = hi;
        packed[w] = Bf16.Pack(lo, hi);
    }

    /// <summary>
    /// <see cref="GeluForward"/> four elements per thread (thread q for elements 4q..4q + 3): 128-bit loads and stores, the same
    /// values. The training step's GELUs (55 M elements per text-stream call at the paper config) ran at about half the bandwidth
    /// a thread per element reaches. Launch over x.Length / 4, x and y 16-byte aligned (the host checks).
    /// </summary>
    public static void GeluForward4(Index1D q, ArrayView<float> x, ArrayView<float> y) =>
        y.Cast<Vec4>().AsAligned(16)[q] = Gelu4(x.Cast<Vec4>().AsAligned(16)[q]);

    /// <summary><see cref="GeluForwardFast"/> four elements per thread, as <see cref="GeluForward4"/>.</summary>
    public static void GeluForwardFast4(Index1D q, ArrayView<float> x, ArrayView<float> y) =>
        y.Cast<Vec4>().AsAligned(16)[q] = GeluFast4(x.Cast<Vec4>().AsAligned(16)[q]);

    /// <summary>
    /// <see cref="GeluForwardFastPacked"/> four elements per thread: the two bf16 words of a chunk as one 64-bit store
    /// (<see cref="Bf16.PackChunk"/>). Launch over x.Length / 4, x and y 16-byte aligned.
    /// </summary>
    public static void GeluForwardFastPacked4(Index1D q, ArrayView<float> x, ArrayView<float> y, ArrayView<uint> packed)
    {
        var v = GeluFast4(x.Cast<Vec4>().AsAligned(16)[q]);
        y.Cast<Vec4>().AsAligned(16)[q] = v;
        packed.Cast<ulong>()[q] = Bf16.PackChunk(v);
    }

    private static Vec4 Gelu4(Vec4 v) { v.X = Gelu(v.X); v.Y = Gelu(v.Y); v.Z = Gelu(v.Z); v.W = Gelu(v.W); return v; }

    private static Vec4 GeluFast4(Vec4 v) { v.X = GeluFast(v.X); v.Y = GeluFast(v.Y); v.Z = GeluFast(v.Z); v.W = GeluFast(v.W); return v; }

    /// <summary><see cref="GeluBackward"/> with <see cref="GeluDerivativeFast"/>.</summary>
    public static void GeluBackwardFast(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, int accumulate)
    {
        float g = dy[i] * GeluDerivativeFast(x[i]);
        dx[i] = accumulate != 0 ? dx[i] + g : g;
    }
}
