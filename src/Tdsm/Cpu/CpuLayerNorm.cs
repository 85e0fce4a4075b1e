using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tdsm.Cpu;

/// <summary>
/// LayerNorm (no affine, eps 1e-6) fused with the adaLN modulation, CPU tier, forward and
/// backward. x, y are (B, N, H), a "row" is one token;
/// mod is (B, Chunks·H) with shift and scale chunks; y = LN(x)·(1 + scale[b]) + shift[b].
/// Two passes in float32 SIMD lanes (mean, then the centred sum of squares, which avoids the
/// cancellation of E[x²] - E[x]²).
/// </summary>
internal static class CpuLayerNorm
{
    public const float Eps = 1e-6f;

    /// <summary>Tokens [row0, row1) of the flattened (B·N) rows; mean/rstd may be empty (inference).
    /// Sample b uses modulation row b mod <paramref name="modRows"/> (inference repeats K class rows per noise).</summary>
    public static void ForwardRows(ReadOnlySpan<float> x, ReadOnlySpan<float> mod, int chunks, int shiftChunk, int scaleChunk,
        Span<float> y, Span<float> mean, Span<float> rstd, int n, int h, int row0, int row1, int modRows = int.MaxValue)
    {
        int ms = chunks * h;
        for (int r = row0; r < row1; r++)
        {
            var xr = x.Slice(r * h, h);
            float mu = Sum(xr) / h;
            float var = CentredSquares(xr, mu) / h;
            float rs = 1f / MathF.Sqrt(var + Eps);
            if (!mean.IsEmpty) { mean[r] = mu; rstd[r] = rs; }
            int b = r / n % modRows;
            Apply(xr, mod.Slice(b * ms + shiftChunk * h, h), mod.Slice(b * ms + scaleChunk * h, h), y.Slice(r * h, h), mu, rs);
        }
    }

    private static float Sum(ReadOnlySpan<float> v)
    {
        int w = Vector<float>.Count, i = 0;
        ref float p = ref MemoryMarshal.GetReference(v);
        Vector<float> s0 = default, s1 = default;
        for (; i <= v.Length - 2 * w; i += 2 * w) { s0 += Vector.LoadUnsafe(ref p, (nuint)i); s1 += Vector.LoadUnsafe(ref p, (nuint)(i + w)); }
        for (; i <= v.Length - w; i += w) s0 += Vector.LoadUnsafe(ref p, (nuint)i);
        float s = Vector.Sum(s0 + s1);
        for (; i < v.Length; i++) s += Unsafe.Add(ref p, i);
        return s;
    }

    private static float CentredSquares(ReadOnlySpan<float> v, float mu)
    {
        int w = Vector<float>.Count, i = 0;
        ref float p = ref MemoryMarshal.GetReference(v);
        var m = new Vector<float>(mu);
        Vector<float> s0 = default;
        for (; i <= v.Length - w; i += w) { var d = Vector.LoadUnsafe(ref p, (nuint)i) - m; s0 = Vector.FusedMultiplyAdd(d, d, s0); }
        float s = Vector.Sum(s0);
        for (; i < v.Length; i++) { float d = Unsafe.Add(ref p, i) - mu; s += d * d; }
        return s;
    }

    private static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> shift, ReadOnlySpan<float> scale, Span<float> y, float mu, float rs)
    {
        int w = Vector<float>.Count, i = 0, h = x.Length;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float psh = ref MemoryMarshal.GetReference(shift);
        ref float psc = ref MemoryMarshal.GetReference(scale);
        ref float py = ref MemoryMarshal.GetReference(y);
        Vector<float> vm = new(mu), vr = new(rs), one = Vector<float>.One;
        for (; i <= h - w; i += w)
        {
            var xh = (Vector.LoadUnsafe(ref px, (nuint)i) - vm) * vr;
            Vector.FusedMultiplyAdd(xh, one + Vector.LoadUnsafe(ref psc, (nuint)i), Vector.LoadUnsafe(ref psh, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < h; i++) Unsafe.Add(ref py, i) = (Unsafe.Add(ref px, i) - mu) * rs * (1 + Unsafe.Add(ref psc, i)) + Unsafe.Add(ref psh, i);
    }

    /// <summary>
    /// Backward for samples [b0, b1): each sample owns its dmod row, so threads split by sample with
    /// no races. dx is overwritten or added; the shift/scale chunks of dmod accumulate over the N
    /// tokens. xhat is recomputed from the saved mean and rstd.
    /// </summary>
    public static void BackwardSamples(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> mod, int chunks, int shiftChunk, int scaleChunk,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dmod, int n, int h, bool accumulateDx, int b0, int b1)
    {
        int ms = chunks * h;
        Span<float> dxh = h <= 2048 ? stackalloc float[h] : new float[h];
        for (int b = b0; b < b1; b++)
        {
            var scale = mod.Slice(b * ms + scaleChunk * h, h);
            var dshift = dmod.Slice(b * ms + shiftChunk * h, h);
            var dscale = dmod.Slice(b * ms + scaleChunk * h, h);
            for (int t = 0; t < n; t++)
            {
                int r = b * n + t;
                float mu = mean[r], rs = rstd[r];
                var xr = x.Slice(r * h, h);
                var gr = dy.Slice(r * h, h);
                float sumD = 0, sumDX = 0;
                for (int i = 0; i < h; i++)
                {
                    float xh = (xr[i] - mu) * rs, g = gr[i];
                    dshift[i] += g;
                    dscale[i] += g * xh;
                    float d = g * (1f + scale[i]);
                    dxh[i] = d;
                    sumD += d;
                    sumDX += d * xh;
                }
                sumD /= h; sumDX /= h;
                var dxr = dx.Slice(r * h, h);
                for (int i = 0; i < h; i++)
                {
                    float v = rs * (dxh[i] - sumD - (xr[i] - mu) * rs * sumDX);
                    dxr[i] = accumulateDx ? dxr[i] + v : v;
                }
            }
        }
    }
}
