using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>
/// LayerNorm without affine (eps 1e-6) fused with adaLN modulation, reference tier.
/// x is (B, N, H); mod is (B, Chunks·H) and holds the shift at chunk <c>shiftChunk</c> and the
/// scale at chunk <c>scaleChunk</c>; y = LN(x)·(1 + scale[b]) + shift[b] is (B, N, H).
/// mean and rstd (B·N) are saved for the backward. Backward: dx overwritten (or added when
/// <c>accumulateDx</c>); the shift/scale chunks of dmod accumulate (summed over the N tokens).
/// </summary>
public static class LayerNormModulate
{
    public const double Eps = 1e-6;

    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> mod, int chunks, int shiftChunk, int scaleChunk,
        Span<T> y, Span<T> mean, Span<T> rstd, int b, int n, int h) where T : IFloatingPointIeee754<T>
    {
        int ms = chunks * h;
        for (int bi = 0; bi < b; bi++)
            for (int t = 0; t < n; t++)
            {
                int row = (bi * n + t) * h;
                double mu = 0;
                for (int i = 0; i < h; i++) mu += D(x[row + i]);
                mu /= h;
                double var = 0;
                for (int i = 0; i < h; i++) { double d = D(x[row + i]) - mu; var += d * d; }
                var /= h;
                double rs = 1 / Math.Sqrt(var + Eps);
                mean[bi * n + t] = F<T>(mu);
                rstd[bi * n + t] = F<T>(rs);
                for (int i = 0; i < h; i++)
                {
                    double xh = (D(x[row + i]) - mu) * rs;
                    double sc = D(mod[bi * ms + scaleChunk * h + i]), sh = D(mod[bi * ms + shiftChunk * h + i]);
                    y[row + i] = F<T>(xh * (1 + sc) + sh);
                }
            }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> mod, int chunks, int shiftChunk, int scaleChunk,
        ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, Span<T> dx, Span<T> dmod, int b, int n, int h, bool accumulateDx)
        where T : IFloatingPointIeee754<T>
    {
        int ms = chunks * h;
        var dxh = new double[h];
        var xh = new double[h];
        for (int bi = 0; bi < b; bi++)
            for (int t = 0; t < n; t++)
            {
                int row = (bi * n + t) * h;
                double mu = D(mean[bi * n + t]), rs = D(rstd[bi * n + t]);
                double sumD = 0, sumDX = 0;
                for (int i = 0; i < h; i++)
                {
                    xh[i] = (D(x[row + i]) - mu) * rs;
                    double g = D(dy[row + i]);
                    int si = bi * ms + shiftChunk * h + i, ci = bi * ms + scaleChunk * h + i;
                    dmod[si] = F<T>(D(dmod[si]) + g);
                    dmod[ci] = F<T>(D(dmod[ci]) + g * xh[i]);
                    dxh[i] = g * (1 + D(mod[ci]));
                    sumD += dxh[i];
                    sumDX += dxh[i] * xh[i];
                }
                sumD /= h; sumDX /= h;
                for (int i = 0; i < h; i++)
                {
                    double v = rs * (dxh[i] - sumD - xh[i] * sumDX);
                    dx[row + i] = F<T>(accumulateDx ? D(dx[row + i]) + v : v);
                }
            }
    }
}
