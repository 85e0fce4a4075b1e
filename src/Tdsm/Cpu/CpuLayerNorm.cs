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
    /// tokens. xhat is recomputed from the saved mean and rstd. Tokens go four at a time: their
    /// elementwise terms in SIMD lanes (plain multiplies and adds, as the scalar code, and each dmod element
    /// gets its tokens' terms in token order), then the two row sums of each token as scalar sums in
    /// channel order, the four tokens' chains interleaved so that their dependent adds overlap (<see cref="RowReductions"/>).
    /// </summary>
    public static unsafe void BackwardSamples(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> mod, int chunks, int shiftChunk, int scaleChunk,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dmod, int n, int h, bool accumulateDx, int b0, int b1)
    {
        const int Group = 4;
        int ms = chunks * h;
        // Per token of a group: xhat and d = dy·(1 + scale).
        Span<float> xhs = h <= 512 ? stackalloc float[Group * h] : new float[Group * h];
        Span<float> ds = h <= 512 ? stackalloc float[Group * h] : new float[Group * h];
        Span<float> sumD = stackalloc float[Group], sumDX = stackalloc float[Group];
        for (int b = b0; b < b1; b++)
        {
            var scale = mod.Slice(b * ms + scaleChunk * h, h);
            var dshift = dmod.Slice(b * ms + shiftChunk * h, h);
            var dscale = dmod.Slice(b * ms + scaleChunk * h, h);
            for (int t0 = 0; t0 < n; t0 += Group)
            {
                int rows = Math.Min(Group, n - t0);
                for (int q = 0; q < rows; q++)
                {
                    int r = b * n + t0 + q;
                    ElementwiseTerms(x.Slice(r * h, h), dy.Slice(r * h, h), scale, mean[r], rstd[r], dshift, dscale, xhs.Slice(q * h, h), ds.Slice(q * h, h));
                }
                fixed (float* pd = ds, px = xhs, psd = sumD, psx = sumDX)
                {
                    RowReductions.Sums(pd, h, rows, h, psd);
                    RowReductions.Dots(pd, h, px, h, rows, h, psx);
                }
                for (int q = 0; q < rows; q++)
                {
                    int r = b * n + t0 + q;
                    InputGrad(x.Slice(r * h, h), ds.Slice(q * h, h), mean[r], rstd[r], sumD[q] / h, sumDX[q] / h, dx.Slice(r * h, h), accumulateDx);
                }
            }
        }
    }

    // xh = (x − mu)·rs, d = g·(1 + scale); dshift += g, dscale += g·xh; each element by the same float operations as a
    // scalar loop (no fused multiply-adds), so any vector width gives the same bits.
    private static void ElementwiseTerms(ReadOnlySpan<float> x, ReadOnlySpan<float> g, ReadOnlySpan<float> scale, float mu, float rs,
        Span<float> dshift, Span<float> dscale, Span<float> xh, Span<float> d)
    {
        int h = x.Length, w = Vector<float>.Count, i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vm = new Vector<float>(mu); var vr = new Vector<float>(rs); var one = Vector<float>.One;
            for (; i <= h - w; i += w)
            {
                var vx = (new Vector<float>(x.Slice(i, w)) - vm) * vr;
                var vg = new Vector<float>(g.Slice(i, w));
                (new Vector<float>(dshift.Slice(i, w)) + vg).CopyTo(dshift.Slice(i, w));
                (new Vector<float>(dscale.Slice(i, w)) + vg * vx).CopyTo(dscale.Slice(i, w));
                vx.CopyTo(xh.Slice(i, w));
                (vg * (one + new Vector<float>(scale.Slice(i, w)))).CopyTo(d.Slice(i, w));
            }
        }
        for (; i < h; i++)
        {
            float xhi = (x[i] - mu) * rs, gi = g[i];
            dshift[i] += gi;
            dscale[i] += gi * xhi;
            xh[i] = xhi;
            d[i] = gi * (1f + scale[i]);
        }
    }

    // dx (=|+=) rs·(d − mean(d) − xh·mean(d·xh)), xh recomputed as (x − mu)·rs, the scalar code's operations in its order.
    private static void InputGrad(ReadOnlySpan<float> x, ReadOnlySpan<float> d, float mu, float rs, float meanD, float meanDX, Span<float> dx, bool accumulate)
    {
        int h = x.Length, w = Vector<float>.Count, i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vm = new Vector<float>(mu); var vr = new Vector<float>(rs); var vd = new Vector<float>(meanD); var vdx = new Vector<float>(meanDX);
            for (; i <= h - w; i += w)
            {
                var v = vr * (new Vector<float>(d.Slice(i, w)) - vd - (new Vector<float>(x.Slice(i, w)) - vm) * vr * vdx);
                if (accumulate) v = new Vector<float>(dx.Slice(i, w)) + v;
                v.CopyTo(dx.Slice(i, w));
            }
        }
        for (; i < h; i++)
        {
            float v = rs * (d[i] - meanD - (x[i] - mu) * rs * meanDX);
            dx[i] = accumulate ? dx[i] + v : v;
        }
    }
}
