using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Tdsm.Cpu;

/// <summary>
/// SiLU and tanh-GELU forward, CPU tier, Vector256 SIMD. Both are written as x·σ(·) with one
/// exp: SiLU(x) = x / (1 + e^-x) and GELU_tanh(x) = 0.5·x·(1 + tanh u) = x / (1 + e^(-2u)),
/// u = √(2/π)(x + 0.044715x³), which has no cancellation near 0 and saturates cleanly.
/// </summary>
internal static class CpuActivations
{
    private const float GeluA2 = 1.5957691216057308f; // 2·√(2/π)
    private const float GeluB = 0.044715f;

    /// <summary>y[i] = SiLU(x[i]) for i in [start, end).</summary>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y, int start, int end)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        int i = start;
        if (Vector256.IsHardwareAccelerated)
            for (; i <= end - 8; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref px, (nuint)i);
                (v / (Vector256<float>.One + Vector256.Exp(-v))).StoreUnsafe(ref py, (nuint)i);
            }
        for (; i < end; i++) { float v = Unsafe.Add(ref px, i); Unsafe.Add(ref py, i) = v / (1f + MathF.Exp(-v)); }
    }

    /// <summary>y[i] = GELU_tanh(x[i]) for i in [start, end).</summary>
    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y, int start, int end)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        int i = start;
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256.Create(-GeluA2);
            var b = Vector256.Create(GeluB);
            for (; i <= end - 8; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref px, (nuint)i);
                var u = a * Vector256.FusedMultiplyAdd(b * v, v * v, v);
                (v / (Vector256<float>.One + Vector256.Exp(u))).StoreUnsafe(ref py, (nuint)i);
            }
        }
        for (; i < end; i++)
        {
            float v = Unsafe.Add(ref px, i);
            Unsafe.Add(ref py, i) = v / (1f + MathF.Exp(-GeluA2 * (v + GeluB * v * v * v)));
        }
    }

    /// <summary>dx[i] (=, or += when <paramref name="accumulate"/>) = dy[i]·SiLU'(x[i]) for i in [start, end).</summary>
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool accumulate, int start, int end)
    {
        for (int i = start; i < end; i++)
        {
            float v = x[i], s = 1f / (1f + MathF.Exp(-v));
            float g = dy[i] * s * (1f + v * (1f - s));
            dx[i] = accumulate ? dx[i] + g : g;
        }
    }

    /// <summary>
    /// dx[i] (=, or +=) = dy[i]·GELU_tanh'(x[i]) for i in [start, end), in the forward's sigmoid form:
    /// with s = σ(2u), GELU = x·s and GELU' = s + x·s·(1 − s)·2u', 2u' = 2√(2/π)(1 + 3·0.044715x²).
    /// </summary>
    public static void GeluTanhBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, bool accumulate, int start, int end)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        int i = start;
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256.Create(-GeluA2);
            var b = Vector256.Create(GeluB);
            var a2 = Vector256.Create(GeluA2);
            var b3 = Vector256.Create(3f * GeluB);
            var one = Vector256<float>.One;
            for (; i <= end - 8; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref px, (nuint)i);
                var v2 = v * v;
                var s = one / (one + Vector256.Exp(a * Vector256.FusedMultiplyAdd(b * v, v2, v)));
                var d = s + v * s * (one - s) * a2 * Vector256.FusedMultiplyAdd(b3, v2, one);
                var g = Vector256.LoadUnsafe(ref pdy, (nuint)i) * d;
                if (accumulate) g += Vector256.LoadUnsafe(ref pdx, (nuint)i);
                g.StoreUnsafe(ref pdx, (nuint)i);
            }
        }
        for (; i < end; i++)
        {
            float v = Unsafe.Add(ref px, i);
            float s = 1f / (1f + MathF.Exp(-GeluA2 * (v + GeluB * v * v * v)));
            float d = s + v * s * (1f - s) * GeluA2 * (1f + 3f * GeluB * v * v);
            float g = Unsafe.Add(ref pdy, i) * d;
            Unsafe.Add(ref pdx, i) = accumulate ? Unsafe.Add(ref pdx, i) + g : g;
        }
    }
}
