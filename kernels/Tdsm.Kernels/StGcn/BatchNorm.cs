using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels.StGcn;

/// <summary>BatchNorm launch sizes and hyper-parameters: x is (B, C, L).</summary>
public struct BatchNormArgs
{
    public int B, C, L;
    public double Eps, Momentum;
}

/// <summary>
/// BatchNorm over the channels of x (B, C, L) (BatchNorm1d over V*C channels with L = T, or
/// BatchNorm2d with L = T*V). Training: mean and biased variance over (B, L) in float64 (two passes
/// of <see cref="ChannelStats.Partial"/>), running stats r = (1-momentum) r + momentum·stat with the
/// unbiased variance; eval: the running stats. Backward: dx = rstd·γ·(dy − mean(dy) − x̂·mean(dy·x̂)),
/// dγ += Σ dy·x̂, dβ += Σ dy (sums from <see cref="ChannelStats.PartialGrad"/>).
/// </summary>
public static class BatchNorm
{
    /// <summary>Thread c: mean[c] = sum[c] / (B·L) (first pass of training statistics; sum = Σ x per channel, from
    /// <see cref="ChannelStats.ReduceRows"/>).</summary>
    public static void Mean(Index1D ci, ArrayView<double> sum, ArrayView<float> mean, BatchNormArgs a) =>
        mean[ci] = (float)(sum[ci] / ((double)a.B * a.L));

    /// <summary>Thread c: from the channel totals Σ x (sum) and Σ (x − mean32)² (sq, centered on the float32 mean) and the
    /// float64 mean, writes saveMean, saveRstd and updates the running statistics.</summary>
    public static void Finish(Index1D ci, ArrayView<double> sum, ArrayView<double> sumSq, ArrayView<float> saveMean, ArrayView<float> saveRstd,
        ArrayView<float> runMean, ArrayView<float> runVar, BatchNormArgs a)
    {
        double count = (double)a.B * a.L, sq = sumSq[ci];
        double mean = sum[ci] / count;
        // p1 was centered on the float32 mean; correct to the float64 mean: Σ(x-m)² = Σ(x-m32)² - count·(m-m32)².
        double shift = mean - saveMean[ci];
        sq = XMath.Max(0.0, sq - count * shift * shift);
        double var = sq / count;
        saveMean[ci] = (float)mean;
        saveRstd[ci] = (float)(1.0 / XMath.Sqrt(var + a.Eps));
        double unbiased = count > 1 ? sq / (count - 1) : var;
        runMean[ci] = (float)((1 - a.Momentum) * runMean[ci] + a.Momentum * mean);
        runVar[ci] = (float)((1 - a.Momentum) * runVar[ci] + a.Momentum * unbiased);
    }

    /// <summary>Element i of y = (x − mean)·rstd·γ + β with per-channel mean and rstd (training: the saved batch stats).</summary>
    public static void Normalize(Index1D i, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> mean,
        ArrayView<float> rstd, ArrayView<float> y, int c, int l)
    {
        int ci = (int)i / l % c;   // 32-bit: a (B, C, L) tensor of the GPU tier has < 2^31 elements (its Index1D)
        y[i] = (float)((x[i] - (double)mean[ci]) * rstd[ci] * gamma[ci] + beta[ci]);
    }

    /// <summary>Element i of eval-mode y = (x − running mean)/sqrt(running var + eps)·γ + β.</summary>
    public static void Eval(Index1D i, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> runMean,
        ArrayView<float> runVar, ArrayView<float> y, BatchNormArgs a)
    {
        int ci = (int)i / a.L % a.C;
        double rstd = 1.0 / XMath.Sqrt(runVar[ci] + a.Eps);
        y[i] = (float)((x[i] - (double)runMean[ci]) * rstd * gamma[ci] + beta[ci]);
    }

    /// <summary>Thread c: sums[c] = Σ dy, sums[C + c] = Σ dy·x̂ from the channel totals (<see cref="ChannelStats.ReduceRows"/>);
    /// dγ[c] += Σ dy·x̂, dβ[c] += Σ dy.</summary>
    public static void GradParams(Index1D ci, ArrayView<double> sumDy, ArrayView<double> sumDyXhat, ArrayView<double> sums, ArrayView<float> dGamma,
        ArrayView<float> dBeta, BatchNormArgs a)
    {
        double s = sumDy[ci], sx = sumDyXhat[ci];
        sums[ci] = s;
        sums[a.C + ci] = sx;
        dGamma[ci] = (float)(dGamma[ci] + sx);
        dBeta[ci] = (float)(dBeta[ci] + s);
    }

    /// <summary>Element i of dx (overwritten) from the channel sums of <see cref="GradParams"/>.</summary>
    public static void GradInput(Index1D i, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> mean,
        ArrayView<float> rstd, ArrayView<double> sums, ArrayView<float> dx, BatchNormArgs a)
    {
        int ci = (int)i / a.L % a.C;
        double count = (double)a.B * a.L, r = rstd[ci];
        double xhat = (x[i] - (double)mean[ci]) * r;
        dx[i] = (float)(r * gamma[ci] * (dy[i] - sums[ci] / count - xhat * (sums[a.C + ci] / count)));
    }
}
