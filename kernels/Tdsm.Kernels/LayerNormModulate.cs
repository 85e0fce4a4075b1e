using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>Shapes of LN-modulate: x (B, N, H), mod (B, Chunks·H) with shift at ShiftChunk and scale at ScaleChunk.</summary>
public struct LayerNormArgs
{
    public int B, N, H, Chunks, ShiftChunk, ScaleChunk, AccumulateDx;
}

/// <summary>
/// LayerNorm without affine (eps 1e-6) fused with modulate: y = LN(x)·(1 + scale[b]) + shift[b].
/// Forward: one warp per (b, token) row, float64 statistics reduced with warp shuffles; saves
/// mean and rstd. Backward: one warp per b walking its N tokens, so each (b, channel) of the
/// shift/scale gradients is owned by one lane (deterministic, no atomics); dx is overwritten or
/// added (AccumulateDx = 1).
/// </summary>
public static class LayerNormModulate
{
    public const int Threads = 32;
    private const double Eps = 1e-6;

    private static double WarpSum(double v)
    {
        for (int offset = 16; offset > 0; offset /= 2) v += Warp.ShuffleXor(v, offset);
        return v;
    }

    /// <summary>Launch: grid B·N, group 32.</summary>
    public static void Forward(ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, LayerNormArgs p)
    {
        int row = Grid.IdxX, lane = Group.IdxX, bi = row / p.N;
        long o = (long)row * p.H, m = (long)bi * p.Chunks * p.H;
        double s = 0;
        for (int i = lane; i < p.H; i += Threads) s += x[o + i];
        double mu = WarpSum(s) / p.H;
        double v = 0;
        for (int i = lane; i < p.H; i += Threads) { double d = x[o + i] - mu; v += d * d; }
        double rs = 1 / XMath.Sqrt(WarpSum(v) / p.H + Eps);
        if (lane == 0) { mean[row] = (float)mu; rstd[row] = (float)rs; }
        for (int i = lane; i < p.H; i += Threads)
        {
            double xh = (x[o + i] - mu) * rs;
            y[o + i] = (float)(xh * (1 + mod[m + p.ScaleChunk * p.H + i]) + mod[m + p.ShiftChunk * p.H + i]);
        }
    }

    /// <summary>Launch: grid B, group 32.</summary>
    public static void Backward(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dx, ArrayView<float> dmod, LayerNormArgs p)
    {
        int bi = Grid.IdxX, lane = Group.IdxX;
        long m = (long)bi * p.Chunks * p.H;
        for (int t = 0; t < p.N; t++)
        {
            int row = bi * p.N + t;
            long o = (long)row * p.H;
            double mu = mean[row], rs = rstd[row];
            double sumD = 0, sumDX = 0;
            for (int i = lane; i < p.H; i += Threads)
            {
                double xh = (x[o + i] - mu) * rs;
                double g = dy[o + i];
                long si = m + p.ShiftChunk * p.H + i, ci = m + p.ScaleChunk * p.H + i;
                dmod[si] = (float)(dmod[si] + g);
                dmod[ci] = (float)(dmod[ci] + g * xh);
                double dxh = g * (1 + mod[ci]);
                sumD += dxh;
                sumDX += dxh * xh;
            }
            sumD = WarpSum(sumD) / p.H;
            sumDX = WarpSum(sumDX) / p.H;
            for (int i = lane; i < p.H; i += Threads)
            {
                double xh = (x[o + i] - mu) * rs;
                double dxh = dy[o + i] * (1 + (double)mod[m + p.ScaleChunk * p.H + i]);
                double v = rs * (dxh - sumD - xh * sumDX);
                dx[o + i] = p.AccumulateDx != 0 ? (float)(dx[o + i] + v) : (float)v;
            }
        }
    }
}
