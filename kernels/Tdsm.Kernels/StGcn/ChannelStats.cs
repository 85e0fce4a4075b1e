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

    /// <summary>Threads per group of <see cref="ReduceRows"/>.</summary>
    public const int ReduceThreads = 256;

    /// <summary>
    /// out0[c] = Σ_r p0[r, c] and out1[c] = Σ_r p1[r, c] (when <paramref name="two"/> ≠ 0) over the R
    /// partial rows, one group of <see cref="ReduceThreads"/> per channel: thread t adds rows t,
    /// t + 256, ..., then a shared-memory tree in a fixed order (deterministic). Feeding its (1, C)
    /// output to the per-channel kernels with Rows = 1 replaces their serial walk over R rows, which
    /// left all but C threads of the GPU idle. Launch: grid C, group 256.
    /// </summary>
    public static void ReduceRows(ArrayView<double> p0, ArrayView<double> p1, ArrayView<double> out0, ArrayView<double> out1, int rows, int c, int two)
    {
        var s0 = SharedMemory.Allocate<double>(ReduceThreads);
        var s1 = SharedMemory.Allocate<double>(ReduceThreads);
        int ci = Grid.IdxX, t = Group.IdxX;
        double a = 0, b = 0;
        for (int r = t; r < rows; r += ReduceThreads)
        {
            a += p0[(long)r * c + ci];
            if (two != 0) b += p1[(long)r * c + ci];
        }
        s0[t] = a;
        s1[t] = b;
        Group.Barrier();
        for (int half = ReduceThreads / 2; half > 0; half /= 2)
        {
            if (t < half)
            {
                s0[t] += s0[t + half];
                s1[t] += s1[t + half];
            }
            Group.Barrier();
        }
        if (t == 0)
        {
            out0[ci] = s0[0];
            if (two != 0) out1[ci] = s1[0];
        }
    }
}
