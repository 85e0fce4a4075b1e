using System.Numerics;

namespace Tdsm.StGcn.Reference;

// BatchNorm over channels: x is (B, C, L) (BatchNorm1d: L = T; BatchNorm2d: L = T*V).
// Training: mean and biased variance over (B, L) normalise; running stats get
// r = (1-momentum) r + momentum * stat with the UNBIASED variance (PyTorch semantics).
// Backward: dx overwritten, dGamma and dBeta accumulate.
public static partial class Ref
{
    /// <summary>Training-mode forward. saveMean/saveRstd (C) receive mean and 1/sqrt(var+eps).</summary>
    public static void BatchNormTrainForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y,
        Span<T> saveMean, Span<T> saveRstd, Span<T> runMean, Span<T> runVar, int b, int c, int l, double eps, double momentum)
        where T : IFloatingPointIeee754<T>
    {
        Need<T>(x, (long)b * c * l, "x"); Need<T>(y, (long)b * c * l, "y");
        Need<T>(gamma, c, "gamma"); Need<T>(beta, c, "beta"); Need<T>(runMean, c, "runMean"); Need<T>(runVar, c, "runVar");
        double count = (double)b * l;
        for (int ci = 0; ci < c; ci++)
        {
            double sum = 0;
            for (int bi = 0; bi < b; bi++)
                for (int li = 0; li < l; li++) sum += D(x[(bi * c + ci) * l + li]);
            double mean = sum / count, sq = 0;
            for (int bi = 0; bi < b; bi++)
                for (int li = 0; li < l; li++) { double d = D(x[(bi * c + ci) * l + li]) - mean; sq += d * d; }
            double var = sq / count, rstd = 1.0 / Math.Sqrt(var + eps);
            double g = D(gamma[ci]), be = D(beta[ci]);
            for (int bi = 0; bi < b; bi++)
                for (int li = 0; li < l; li++)
                {
                    int i = (bi * c + ci) * l + li;
                    y[i] = F<T>((D(x[i]) - mean) * rstd * g + be);
                }
            saveMean[ci] = F<T>(mean); saveRstd[ci] = F<T>(rstd);
            double unbiased = count > 1 ? sq / (count - 1) : var;
            runMean[ci] = F<T>((1 - momentum) * D(runMean[ci]) + momentum * mean);
            runVar[ci] = F<T>((1 - momentum) * D(runVar[ci]) + momentum * unbiased);
        }
    }

    /// <summary>Eval-mode forward with the running statistics.</summary>
    public static void BatchNormEvalForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> y,
        ReadOnlySpan<T> runMean, ReadOnlySpan<T> runVar, int b, int c, int l, double eps) where T : IFloatingPointIeee754<T>
    {
        Need<T>(x, (long)b * c * l, "x"); Need<T>(y, (long)b * c * l, "y");
        for (int ci = 0; ci < c; ci++)
        {
            double mean = D(runMean[ci]), rstd = 1.0 / Math.Sqrt(D(runVar[ci]) + eps), g = D(gamma[ci]), be = D(beta[ci]);
            for (int bi = 0; bi < b; bi++)
                for (int li = 0; li < l; li++)
                {
                    int i = (bi * c + ci) * l + li;
                    y[i] = F<T>((D(x[i]) - mean) * rstd * g + be);
                }
        }
    }

    /// <summary>Training-mode backward: dx = rstd*g*(dy - mean(dy) - xhat*mean(dy*xhat)).</summary>
    public static void BatchNormBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma, ReadOnlySpan<T> saveMean,
        ReadOnlySpan<T> saveRstd, Span<T> dx, Span<T> dGamma, Span<T> dBeta, int b, int c, int l) where T : IFloatingPointIeee754<T>
    {
        Need<T>(dy, (long)b * c * l, "dy"); Need<T>(x, (long)b * c * l, "x"); Need<T>(dx, (long)b * c * l, "dx");
        double count = (double)b * l;
        for (int ci = 0; ci < c; ci++)
        {
            double mean = D(saveMean[ci]), rstd = D(saveRstd[ci]), g = D(gamma[ci]);
            double sdy = 0, sdyx = 0;
            for (int bi = 0; bi < b; bi++)
                for (int li = 0; li < l; li++)
                {
                    int i = (bi * c + ci) * l + li;
                    double d = D(dy[i]);
                    sdy += d; sdyx += d * (D(x[i]) - mean) * rstd;
                }
            dGamma[ci] = F<T>(D(dGamma[ci]) + sdyx);
            dBeta[ci] = F<T>(D(dBeta[ci]) + sdy);
            double mdy = sdy / count, mdyx = sdyx / count;
            for (int bi = 0; bi < b; bi++)
                for (int li = 0; li < l; li++)
                {
                    int i = (bi * c + ci) * l + li;
                    double xhat = (D(x[i]) - mean) * rstd;
                    dx[i] = F<T>(rstd * g * (D(dy[i]) - mdy - xhat * mdyx));
                }
        }
    }
}
