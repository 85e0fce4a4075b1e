using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Kernels;

/// <summary>
/// float32 exp for kernels, accurate to a few ulp, in plain arithmetic: ILGPU's precise XMath.Exp is a
/// float64 software routine (tens of KB of PTX with local memory per kernel) and the fast-math
/// ex2.approx path loses accuracy for large arguments. Cody–Waite reduction x = n·ln2 + r with
/// |r| ≤ ln2/2 (n found without float-int conversions), a degree-7 Taylor polynomial for eʳ (truncation &lt; 1e-8 relative), then 2ⁿ through
/// the exponent bits (two factors). The same code runs on the CPU, where its error is tested against Math.Exp.
/// </summary>
public static class FloatMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693145751953125f;       // few mantissa bits: n·Ln2Hi is exact
    private const float Ln2Lo = 1.42860682030941723e-6f;  // ln2 − Ln2Hi

    /// <summary>eˣ; +∞ above 88.72, 0 below −87.33 (where eˣ would be subnormal).</summary>
    public static float Exp(float x)
    {
        if (x > 88.72f) return float.PositiveInfinity;
        if (x < -87.33f) return 0f;
        return ExpInRange(x);
    }

    // 1.5·2²³: for |y| < 2²², y + RoundMagic is RoundMagic + the integer nearest y, exactly, that integer in the low mantissa bits.
    private const float RoundMagic = 12582912f;
    private const uint RoundMagicBits = 0x4B400000;

    // eˣ for −87.33 ≤ x ≤ 88.72 (the ranges Exp and ExpNonPositive select on). n = the integer nearest x·log2(e), found
    // by adding RoundMagic and read back as a float (subtracting it, exact) and as an int (its bits): no float-int
    // conversions, which run at a quarter of the FMA rate or less (three of them were in each exp's SASS, ptxas 12.4).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static float ExpInRange(float x)
    {
        float shifted = x * Log2E + RoundMagic;
        float n = shifted - RoundMagic;
        int ni = (int)(Interop.FloatAsInt(shifted) - RoundMagicBits);
        float r = x - n * Ln2Hi;
        r -= n * Ln2Lo;
        float p = 1f / 5040f;
        p = p * r + 1f / 720f;
        p = p * r + 1f / 120f;
        p = p * r + 1f / 24f;
        p = p * r + 1f / 6f;
        p = p * r + 0.5f;
        p = p * r + 1f;
        p = p * r + 1f;
        // 2ⁿ as two normal factors: n reaches 128 (x near 88.7) and −126, outside one float's exponent range.
        int half = ni >> 1;
        return p * Interop.IntAsFloat((uint)((half + 127) << 23)) * Interop.IntAsFloat((uint)((ni - half + 127) << 23));
    }

    /// <summary>
    /// eˣ for x ≤ 0 (a softmax's x − max; −∞ gives 0) without branches: the same value as <see cref="Exp"/> bit for bit,
    /// its range checks as selects, so a warp runs it without divergence (the attention's softmax rows).
    /// </summary>
    public static float ExpNonPositive(float x)
    {
        bool under = x < -87.33f;
        float e = ExpInRange(under ? 0f : x);
        return under ? 0f : e;
    }

    /// <summary>1 / (1 + e⁻ˣ).</summary>
    public static float Sigmoid(float x) => 1f / (1f + Exp(-x));

    /// <summary>
    /// 1 / (1 + e⁻ˣ) for the bf16 / tf32 paths: on CUDA 1 / (1 + 2^(−x·log2 e)) with ex2.approx.ftz and rcp.approx.ftz, two
    /// MUFU instructions and two FMA-pipe ones where <see cref="Sigmoid"/> issues ~40 (its exp and a correctly rounded
    /// reciprocal). Error: ex2.approx 2⁻²²·⁵ relative, rcp.approx 1 ulp, and the rounding of t = −x·log2 e, which shifts
    /// 2ᵗ by up to |t|·2⁻²⁴·ln 2 relative: it matters only where the sigmoid is below ~1e-7 and its relative error reaches
    /// ~5e-6 at the smallest normal results; elsewhere ≲ 3e-7. ±∞ and saturation: ex2 gives +∞ or 0, the reciprocal then 0 or 1.
    /// Off CUDA (the simulator, the CPU) it is <see cref="Sigmoid"/>, so kernel tests there see the precise values.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static float SigmoidFast(float x)
    {
        if (CudaAsm.IsSupported)
        {
            float t = x * -Log2E;
            CudaAsm.Emit("ex2.approx.ftz.f32 %0, %1;", out float e, t);
            CudaAsm.Emit("rcp.approx.ftz.f32 %0, %1;", out float s, 1f + e);
            return s;
        }
        return Sigmoid(x);
    }
}
