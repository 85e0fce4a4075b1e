using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// Per-channel sums over (B, L) of a (B, C, L) tensor in two barrier-free, deterministic stages:
/// <see cref="Partial"/> gives one float64 partial per (b, c) (a thread loops L), then a
/// per-channel thread adds the B partials in order. Used by BatchNorm statistics and the conv
/// bias gradient. Float64 accumulation, as the reference tier.
/// </summary>
public static class ChannelStats
{
    /// <summary>Thread (b, c): p0 = Σ_l x, p1 = Σ_l (x - center[c])² when <paramref name="centered"/>.
    /// With <paramref name="centered"/> = 0 only p0 is written. p0, p1 are (B, C).</summary>
    public static void Partial(Index1D i, ArrayView<float> x, ArrayView<float> center, ArrayView<double> p0, ArrayView<double> p1,
        int c, int l, int centered)
    {
        long o = (long)(int)i * l;
        double s = 0, sq = 0;
        double mu = centered != 0 ? center[i % c] : 0.0;
        for (int li = 0; li < l; li++)
        {
            double d = x[o + li];
            s += d;
            if (centered != 0) { double e = d - mu; sq += e * e; }
        }
        p0[i] = s;
        if (centered != 0) p1[i] = sq;
    }

    /// <summary>Thread (b, c): p0 = Σ_l dy, p1 = Σ_l dy·(x - mean[c])·rstd[c] (BatchNorm backward sums).</summary>
    public static void PartialGrad(Index1D i, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<double> p0, ArrayView<double> p1, int c, int l)
    {
        long o = (long)(int)i * l;
        int ci = i % c;
        double mu = mean[ci], r = rstd[ci], s = 0, sx = 0;
        for (int li = 0; li < l; li++)
        {
            double d = dy[o + li];
            s += d;
            sx += d * (x[o + li] - mu) * r;
        }
        p0[i] = s;
        p1[i] = sx;
    }

    /// <summary>Thread c: dst[c] += Σ_b p[b, c] (the conv bias gradient).</summary>
    public static void AccumulateSum(Index1D ci, ArrayView<double> p, ArrayView<float> dst, int b, int c)
    {
        double s = 0;
        for (int bi = 0; bi < b; bi++) s += p[(long)bi * c + ci];
        dst[ci] = (float)(dst[ci] + s);
    }
}
