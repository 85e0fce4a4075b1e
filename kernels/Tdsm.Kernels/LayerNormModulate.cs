using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>Shapes of LN-modulate: x (B, N, H), mod (B, Chunks·H) with shift at ShiftChunk and scale at ScaleChunk.</summary>
public struct LayerNormArgs
{
    public int B, N, H, Chunks, ShiftChunk, ScaleChunk, AccumulateDx;
    /// <summary>Forward: 1 = also write y as bf16 pairs (the packed A operand of the product that reads y next); H even.</summary>
    public int PackOut;
}

/// <summary>
/// LayerNorm without affine (eps 1e-6) fused with modulate: y = LN(x)·(1 + scale[b]) + shift[b].
/// Forward: one warp per (b, token) row, float64 statistics reduced with warp shuffles; saves
/// mean and rstd; with PackOut it also casts y to bf16 pairs (LN + modulate + cast: the following
/// product's packed operand without a pack pass that reads y back). Backward in two launches, each with enough threads to fill the GPU:
/// <see cref="BackwardInput"/> is one warp per row (dx overwritten, or added with AccumulateDx = 1);
/// <see cref="BackwardModulation"/> is one thread per (b, channel) summing its N tokens into the
/// shift/scale gradients (deterministic, no atomics).
/// </summary>
public static class LayerNormModulate
{
    /// <summary>Threads per group of the row kernels: four warps, a row each. Groups of one warp (the first version)
    /// cap an SM at 32 groups, half its warps, for kernels that wait on their loads.</summary>
    public const int Threads = 128;
    /// <summary>Rows per group of the row kernels (a warp per row). Launch: grid ⌈B·N / RowsPerGroup⌉, group <see cref="Threads"/>.</summary>
    public const int RowsPerGroup = Threads / Lanes;
    private const int Lanes = 32;
    private const double Eps = 1e-6;

    private static double WarpSum(double v)
    {
        for (int offset = 16; offset > 0; offset /= 2) v += Warp.ShuffleXor(v, offset);
        return v;
    }

    /// <summary>Launch: see <see cref="RowsPerGroup"/>. packed (B·N, H/2) words, written when p.PackOut = 1 (a dummy otherwise).</summary>
    public static void Forward(ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<uint> packed, LayerNormArgs p)
    {
        int row = Grid.IdxX * RowsPerGroup + (Group.IdxX >> 5), lane = Group.IdxX & (Lanes - 1);
        if (row >= p.B * p.N) return;   // the whole warp: no shuffle waits on it
        int bi = row / p.N;
        long o = (long)row * p.H, m = (long)bi * p.Chunks * p.H;
        double s = 0;
        for (int i = lane; i < p.H; i += Lanes) s += x[o + i];
        double mu = WarpSum(s) / p.H;
        double v = 0;
        for (int i = lane; i < p.H; i += Lanes) { double d = x[o + i] - mu; v += d * d; }
        double rs = 1 / XMath.Sqrt(WarpSum(v) / p.H + Eps);
        if (lane == 0) { mean[row] = (float)mu; rstd[row] = (float)rs; }
        if (p.PackOut == 0)
        {
            for (int i = lane; i < p.H; i += Lanes) y[o + i] = Modulated(x, mod, o, m, i, mu, rs, p);
            return;
        }
        // A lane per pair of channels, so each lane packs its own two values (the same floats, then rounded as Bf16.PackRows does).
        for (int j = lane; j < p.H / 2; j += Lanes)
        {
            float y0 = Modulated(x, mod, o, m, 2 * j, mu, rs, p), y1 = Modulated(x, mod, o, m, 2 * j + 1, mu, rs, p);
            y[o + 2 * j] = y0;
            y[o + 2 * j + 1] = y1;
            packed[o / 2 + j] = Bf16.Pack(y0, y1);
        }
    }

    // y[o + i] of row o's LN-modulate (m: the row's sample offset into mod).
    private static float Modulated(ArrayView<float> x, ArrayView<float> mod, long o, long m, int i, double mu, double rs, LayerNormArgs p)
    {
        double xh = (x[o + i] - mu) * rs;
        return (float)(xh * (1 + mod[m + p.ScaleChunk * p.H + i]) + mod[m + p.ShiftChunk * p.H + i]);
    }

    /// <summary>dx for one row per warp. Launch: see <see cref="RowsPerGroup"/>.</summary>
    public static void BackwardInput(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dx, LayerNormArgs p)
    {
        int row = Grid.IdxX * RowsPerGroup + (Group.IdxX >> 5), lane = Group.IdxX & (Lanes - 1);
        if (row >= p.B * p.N) return;
        int bi = row / p.N;
        long o = (long)row * p.H, sc = (long)bi * p.Chunks * p.H + p.ScaleChunk * p.H;
        double mu = mean[row], rs = rstd[row];
        double sumD = 0, sumDX = 0;
        for (int i = lane; i < p.H; i += Lanes)
        {
            double xh = (x[o + i] - mu) * rs;
            double dxh = dy[o + i] * (1 + (double)mod[sc + i]);
            sumD += dxh;
            sumDX += dxh * xh;
        }
        sumD = WarpSum(sumD) / p.H;
        sumDX = WarpSum(sumDX) / p.H;
        for (int i = lane; i < p.H; i += Lanes)
        {
            double xh = (x[o + i] - mu) * rs;
            double dxh = dy[o + i] * (1 + (double)mod[sc + i]);
            double v = rs * (dxh - sumD - xh * sumDX);
            dx[o + i] = p.AccumulateDx != 0 ? (float)(dx[o + i] + v) : (float)v;
        }
    }

    /// <summary>dshift[b, i] += Σ_t dy, dscale[b, i] += Σ_t dy·x̂ over the N tokens. Thread idx = b·H + i (B·H threads).</summary>
    public static void BackwardModulation(Index1D idx, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dmod, LayerNormArgs p)
    {
        int bi = idx / p.H, i = idx % p.H;
        double s = 0, sx = 0;
        for (int t = 0; t < p.N; t++)
        {
            int row = bi * p.N + t;
            long k = (long)row * p.H + i;
            double g = dy[k];
            s += g;
            sx += g * ((x[k] - mean[row]) * rstd[row]);
        }
        long m = (long)bi * p.Chunks * p.H;
        long si = m + p.ShiftChunk * p.H + i, ci = m + p.ScaleChunk * p.H + i;
        dmod[si] = (float)(dmod[si] + s);
        dmod[ci] = (float)(dmod[ci] + sx);
    }
}
