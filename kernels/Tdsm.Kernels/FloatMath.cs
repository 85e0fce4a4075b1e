using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>
/// float32 exp for kernels, accurate to a few ulp, in plain arithmetic: ILGPU's precise XMath.Exp is a
/// float64 software routine (tens of KB of PTX with local memory per kernel) and the fast-math
/// ex2.approx path loses accuracy for large arguments. Cody–Waite reduction x = n·ln2 + r with
/// |r| ≤ ln2/2, a degree-7 Taylor polynomial for eʳ (truncation &lt; 1e-8 relative), then 2ⁿ through
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

    // eˣ for −87.33 ≤ x ≤ 88.72 (the ranges Exp and ExpNonPositive select on).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static float ExpInRange(float x)
    {
        float n = FloorSmall(x * Log2E + 0.5f);
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
        int ni = (int)n, half = ni >> 1;
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

    // ⌊y⌋ for |y| < 2³¹ through truncation (exact, so the same value as XMath.Floor, which ILGPU.Algorithms implements
    // in software with branches on the exponent bits: ~20 instructions per call in the SASS).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static float FloorSmall(float y)
    {
        float t = (int)y;
        return t > y ? t - 1f : t;
    }

    /// <summary>1 / (1 + e⁻ˣ).</summary>
    public static float Sigmoid(float x) => 1f / (1f + Exp(-x));
}
