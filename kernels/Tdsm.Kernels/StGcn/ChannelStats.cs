using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// Per-channel sums over (B, L) of a (B, C, L) tensor in two barrier-free, deterministic stages:
/// <see cref="Partial"/> gives one float64 partial per (b, segment of <see cref="Segment"/> frames·joints, c)
/// (a thread loops its segment), then a per-channel thread adds the R = B·ceil(L/Segment) partials
/// in order. Segments keep the device busy when B·C is small next to L. Used by BatchNorm
/// statistics and the conv bias gradient. Float64 accumulation, as the reference tier.
/// Partials are laid out (R, C) with row r = b·segments + s.
/// </summary>
public static class ChannelStats
{
    /// <summary>Elements of L one thread sums.</summary>
    public const int Segment = 256;

    /// <summary>Partial rows for a (B, C, L) tensor: B·ceil(L / <see cref="Segment"/>).</summary>
    public static int Rows(int b, int l) => b * ((l + Segment - 1) / Segment);

    /// <summary>Thread i = (r, c): p0 = Σ x, p1 = Σ (x - center[c])² over the segment when <paramref name="centered"/>
    /// (with <paramref name="centered"/> = 0 only p0 is written). p0, p1 are (R, C).</summary>
    public static void Partial(Index1D i, ArrayView<float> x, ArrayView<float> center, ArrayView<double> p0, ArrayView<double> p1,
        int c, int l, int centered)
    {
        int ci = i % c, r = i / c, segs = (l + Segment - 1) / Segment;
        int bi = r / segs, l0 = r % segs * Segment, l1 = l0 + Segment < l ? l0 + Segment : l;
        long o = ((long)bi * c + ci) * l;
        double s = 0, sq = 0;
        double mu = centered != 0 ? center[ci] : 0.0;
        for (int li = l0; li < l1; li++)
        {
            double d = x[o + li];
            s += d;
            if (centered != 0) { double e = d - mu; sq += e * e; }
        }
        p0[i] = s;
        if (centered != 0) p1[i] = sq;
    }

    /// <summary>Thread i = (r, c): p0 = Σ dy, p1 = Σ dy·(x - mean[c])·rstd[c] over the segment (BatchNorm backward sums).</summary>
    public static void PartialGrad(Index1D i, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<double> p0, ArrayView<double> p1, int c, int l)
    {
        int ci = i % c, row = i / c, segs = (l + Segment - 1) / Segment;
        int bi = row / segs, l0 = row % segs * Segment, l1 = l0 + Segment < l ? l0 + Segment : l;
        long o = ((long)bi * c + ci) * l;
        double mu = mean[ci], r = rstd[ci], s = 0, sx = 0;
        for (int li = l0; li < l1; li++)
        {
            double d = dy[o + li];
            s += d;
            sx += d * (x[o + li] - mu) * r;
        }
        p0[i] = s;
        p1[i] = sx;
    }

    /// <summary>Thread c: dst[c] += Σ_r p[r, c] over the R partial rows (the conv bias gradient).</summary>
    public static void AccumulateSum(Index1D ci, ArrayView<double> p, ArrayView<float> dst, int rows, int c)
    {
        double s = 0;
        for (int r = 0; r < rows; r++) s += p[(long)r * c + ci];
        dst[ci] = (float)(dst[ci] + s);
    }
}
