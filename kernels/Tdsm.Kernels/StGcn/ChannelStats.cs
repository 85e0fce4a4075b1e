using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// Per-channel sums over (B, L) of a (B, C, L) tensor in two barrier-free, deterministic stages:
/// <see cref="Partial"/> gives one float64 partial per (b, segment of <see cref="Segment"/> frames·joints, c)
/// (a warp per segment, each lane writing its own partial of elements j, j + 32, ... added in order: coalesced loads,
/// and no shuffles, which ILGPU's CPU simulator runs slowly), then the R = 32·B·ceil(L/Segment) partials of a channel
/// are added in a fixed tree (<see cref="ReduceRows"/>).
/// Segments keep the device busy when B·C is small next to L. Used by BatchNorm statistics and the
/// conv bias gradient. Float64 accumulation, as the reference tier. Partials are laid out (C, R) with
/// column r = (b·segments + s)·32 + lane, so that a warp's 32 partials are one contiguous store and
/// <see cref="ReduceRows"/> reads a channel's partials contiguously. (The first version had a thread per segment, so a
/// warp's loads touched 32 rows L floats apart, and each thread waited out its 256 loads one after the other; the
/// second laid the partials out (R, C), so each warp's store and each reduce load touched 32 lines C·8 bytes apart.)
/// </summary>
public static class ChannelStats
{
    /// <summary>Elements of L one warp sums (32 per lane).</summary>
    public const int Segment = 1024;

    /// <summary>Partial rows for a (B, C, L) tensor: one per lane of each (b, segment): 32·B·ceil(L / <see cref="Segment"/>).</summary>
    public static int Rows(int b, int l) => 32 * b * ((l + Segment - 1) / Segment);

    /// <summary>Thread i = (segment row r, c, lane): p0 = Σ x, p1 = Σ (x - center[c])² over the lane's elements of the segment
    /// when <paramref name="centered"/> (with <paramref name="centered"/> = 0 only p0 is written). p0, p1 are (C, R) with
    /// R = <paramref name="rows"/> = <see cref="Rows"/>. Launch: R·C threads (a warp per segment and channel).</summary>
    public static void Partial(Index1D i, ArrayView<float> x, ArrayView<float> center, ArrayView<double> p0, ArrayView<double> p1,
        int c, int l, int centered, int rows)
    {
        int w = i >> 5, lane = i & 31;
        int ci = w % c, r = w / c, segs = (l + Segment - 1) / Segment;
        int bi = r / segs, l0 = r % segs * Segment, l1 = l0 + Segment < l ? l0 + Segment : l;
        long o = ((long)bi * c + ci) * l;
        double s = 0, sq = 0;
        double mu = centered != 0 ? center[ci] : 0.0;
        // Four loads in flight per lane before any is added (ILGPU does not unroll), then added in order.
        for (int li = l0 + lane; li < l1; li += 128)
        {
            float x0 = x[o + li];
            float x1 = li + 32 < l1 ? x[o + li + 32] : 0f, x2 = li + 64 < l1 ? x[o + li + 64] : 0f, x3 = li + 96 < l1 ? x[o + li + 96] : 0f;
            double e0 = x0 - mu, e1 = x1 - mu, e2 = x2 - mu, e3 = x3 - mu;
            s += x0; sq += e0 * e0;
            if (li + 32 < l1) { s += x1; sq += e1 * e1; }
            if (li + 64 < l1) { s += x2; sq += e2 * e2; }
            if (li + 96 < l1) { s += x3; sq += e3 * e3; }
        }
        long at = (long)ci * rows + r * 32 + lane;   // partial r·32 + lane of channel ci
        p0[at] = s;
        if (centered != 0) p1[at] = sq;
    }

    /// <summary>Thread i = (segment row, c, lane): p0 = Σ dy, p1 = Σ dy·(x - mean[c])·rstd[c] over the lane's elements of the
    /// segment (BatchNorm backward sums), laid out (C, R). Launch: R·C threads, R = <paramref name="rows"/> = <see cref="Rows"/>.</summary>
    public static void PartialGrad(Index1D i, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<double> p0, ArrayView<double> p1, int c, int l, int rows)
    {
        int w = i >> 5, lane = i & 31;
        int ci = w % c, row = w / c, segs = (l + Segment - 1) / Segment;
        int bi = row / segs, l0 = row % segs * Segment, l1 = l0 + Segment < l ? l0 + Segment : l;
        long o = ((long)bi * c + ci) * l;
        double mu = mean[ci], r = rstd[ci], s = 0, sx = 0;
        // Four elements' loads in flight per lane before any is added (ILGPU does not unroll), then added in order.
        for (int li = l0 + lane; li < l1; li += 128)
        {
            bool h1 = li + 32 < l1, h2 = li + 64 < l1, h3 = li + 96 < l1;
            float d0 = dy[o + li], d1 = h1 ? dy[o + li + 32] : 0f, d2 = h2 ? dy[o + li + 64] : 0f, d3 = h3 ? dy[o + li + 96] : 0f;
            float x0 = x[o + li], x1 = h1 ? x[o + li + 32] : 0f, x2 = h2 ? x[o + li + 64] : 0f, x3 = h3 ? x[o + li + 96] : 0f;
            s += d0; sx += d0 * (x0 - mu) * r;
            if (h1) { s += d1; sx += d1 * (x1 - mu) * r; }
            if (h2) { s += d2; sx += d2 * (x2 - mu) * r; }
            if (h3) { s += d3; sx += d3 * (x3 - mu) * r; }
        }
        long at = (long)ci * rows + row * 32 + lane;   // partial row·32 + lane of channel ci
        p0[at] = s;
        p1[at] = sx;
    }

    /// <summary>Thread c: dst[c] += total[c], the channel totals of <see cref="ReduceRows"/> (the conv bias gradient).</summary>
    public static void AccumulateSum(Index1D ci, ArrayView<double> total, ArrayView<float> dst) => dst[ci] = (float)(dst[ci] + total[ci]);

    // acc + p[at] + p[at + 256] + ... (1 + min(left, 3) terms, in that order), the four loads issued before any add.
    private static double AddFour(double acc, ArrayView<double> p, long at, int left)
    {
        bool h1 = left >= 1, h2 = left >= 2, h3 = left >= 3;
        double x0 = p[at], x1 = h1 ? p[at + ReduceThreads] : 0, x2 = h2 ? p[at + 2 * ReduceThreads] : 0, x3 = h3 ? p[at + 3 * ReduceThreads] : 0;
        acc += x0;
        if (h1) acc += x1;
        if (h2) acc += x2;
        if (h3) acc += x3;
        return acc;
    }

    /// <summary>Threads per group of <see cref="ReduceRows"/>.</summary>
    public const int ReduceThreads = 256;

    /// <summary>
    /// out0[c] = Σ_r p0[c, r] and out1[c] = Σ_r p1[c, r] (when <paramref name="two"/> ≠ 0) over the R
    /// partials of each channel ((C, R), as <see cref="Partial"/> writes them), one group of <see cref="ReduceThreads"/>
    /// per channel: thread t adds partials t, t + 256, ... in that order (four loads in flight before any is added), then a
    /// shared-memory tree in a fixed order (deterministic). The per-channel kernels read its (1, C) totals instead of each
    /// walking the R partials, which left all but C threads of the GPU idle. Launch: grid C, group 256.
    /// </summary>
    public static void ReduceRows(ArrayView<double> p0, ArrayView<double> p1, ArrayView<double> out0, ArrayView<double> out1, int rows, int c, int two)
    {
        var s0 = SharedMemory.Allocate<double>(ReduceThreads);
        var s1 = SharedMemory.Allocate<double>(ReduceThreads);
        int ci = Grid.IdxX, t = Group.IdxX;
        double a = 0, b = 0;
        long at = (long)ci * rows + t;
        for (int r = t; r < rows; r += 4 * ReduceThreads)
        {
            int left = (rows - r - 1) / ReduceThreads;   // partials after r this trip may still add (3 or more: all four)
            a = AddFour(a, p0, at, left);
            if (two != 0) b = AddFour(b, p1, at, left);
            at += 4 * ReduceThreads;
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
