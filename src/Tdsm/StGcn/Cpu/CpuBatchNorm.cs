using System.Numerics;
using System.Runtime.InteropServices;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// BatchNorm over channels of x (B, C, L), parallel over channels; each contiguous run of L values
// is summed with SIMD in float32 and the runs are accumulated in float64. Semantics as
// Reference/RefBatchNorm.cs (biased variance normalises, unbiased updates the running variance).
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    protected override void BatchNormTrainForward(Seg x, Seg gamma, Seg beta, Seg y, Seg saveMean, Seg saveRstd, Seg runMean, Seg runVar,
        int b, int c, int l, double eps, double momentum)
    {
        Need(x, (long)b * c * l, "x"); Need(y, (long)b * c * l, "y"); Need(gamma, c, "gamma"); Need(beta, c, "beta");
        Need(saveMean, c, "saveMean"); Need(saveRstd, c, "saveRstd"); Need(runMean, c, "runMean"); Need(runVar, c, "runVar");
        double count = (double)b * l;
        Parallel.For(0, c, ci =>
        {
            double sum = 0;
            for (int bi = 0; bi < b; bi++) sum += SumD(x.AsSpan((bi * c + ci) * l, l));
            double mean = sum / count, sq = 0;
            for (int bi = 0; bi < b; bi++) sq += SumSqDev(x.AsSpan((bi * c + ci) * l, l), (float)mean);
            double var = sq / count, rstd = 1.0 / Math.Sqrt(var + eps);
            float scale = (float)(rstd * gamma[ci]), shift = (float)(beta[ci] - mean * rstd * gamma[ci]);
            for (int bi = 0; bi < b; bi++) Affine(x.AsSpan((bi * c + ci) * l, l), y.AsSpan((bi * c + ci) * l, l), scale, shift);
            saveMean[ci] = (float)mean; saveRstd[ci] = (float)rstd;
            double unbiased = count > 1 ? sq / (count - 1) : var;
            runMean[ci] = (float)((1 - momentum) * runMean[ci] + momentum * mean);
            runVar[ci] = (float)((1 - momentum) * runVar[ci] + momentum * unbiased);
        });
    }

    /// <inheritdoc/>
    protected override void BatchNormEvalForward(Seg x, Seg gamma, Seg beta, Seg y, Seg runMean, Seg runVar, int b, int c, int l, double eps)
    {
        Need(x, (long)b * c * l, "x"); Need(y, (long)b * c * l, "y");
        Parallel.For(0, c, ci =>
        {
            double rstd = 1.0 / Math.Sqrt(runVar[ci] + eps);
            float scale = (float)(rstd * gamma[ci]), shift = (float)(beta[ci] - runMean[ci] * rstd * gamma[ci]);
            for (int bi = 0; bi < b; bi++) Affine(x.AsSpan((bi * c + ci) * l, l), y.AsSpan((bi * c + ci) * l, l), scale, shift);
        });
    }

    /// <inheritdoc/>
    protected override void BatchNormBackward(Seg dy, Seg x, Seg gamma, Seg saveMean, Seg saveRstd, Seg dx, Seg dGamma, Seg dBeta, int b, int c, int l)
    {
        Need(dy, (long)b * c * l, "dy"); Need(x, (long)b * c * l, "x"); Need(dx, (long)b * c * l, "dx");
        double count = (double)b * l;
        Parallel.For(0, c, ci =>
        {
            float mean = saveMean[ci];
            double rstd = saveRstd[ci], g = gamma[ci];
            double sdy = 0, sdyxc = 0;
            for (int bi = 0; bi < b; bi++)
            {
                int o = (bi * c + ci) * l;
                sdy += SumD(dy.AsSpan(o, l));
                sdyxc += DotDev(dy.AsSpan(o, l), x.AsSpan(o, l), mean);
            }
            double sdyx = sdyxc * rstd;   // sum dy * xhat
            dGamma[ci] += (float)sdyx;
            dBeta[ci] += (float)sdy;
            // dx = rstd*g*(dy - mean(dy) - xhat*mean(dy*xhat)) = k1*dy + k2*(x - mean) + k3
            double k1 = rstd * g, k2 = -rstd * g * rstd * sdyx / count, k3 = -rstd * g * sdy / count;
            for (int bi = 0; bi < b; bi++)
            {
                int o = (bi * c + ci) * l;
                BnBackRow(dy.AsSpan(o, l), x.AsSpan(o, l), dx.AsSpan(o, l), mean, k1, k2, k3);
            }
        });
    }

    private static double SumSqDev(ReadOnlySpan<float> x, float mean)
    {
        int w = Vector<float>.Count, i = 0;
        var acc = Vector<float>.Zero; var vm = new Vector<float>(mean);
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - w; i += w) { var d = Vector.LoadUnsafe(ref r, (nuint)i) - vm; acc += d * d; }
        double s = Vector.Sum(acc);
        for (; i < x.Length; i++) { double d = x[i] - mean; s += d * d; }
        return s;
    }

    private static double DotDev(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float mean)
    {
        int w = Vector<float>.Count, i = 0;
        var acc = Vector<float>.Zero; var vm = new Vector<float>(mean);
        ref float rd = ref MemoryMarshal.GetReference(dy);
        ref float rx = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - w; i += w) acc += Vector.LoadUnsafe(ref rd, (nuint)i) * (Vector.LoadUnsafe(ref rx, (nuint)i) - vm);
        double s = Vector.Sum(acc);
        for (; i < x.Length; i++) s += (double)dy[i] * (x[i] - mean);
        return s;
    }

    private static void Affine(ReadOnlySpan<float> x, Span<float> y, float scale, float shift)
    {
        int w = Vector<float>.Count, i = 0;
        var vs = new Vector<float>(scale); var vb = new Vector<float>(shift);
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float ry = ref MemoryMarshal.GetReference(y);
        for (; i <= x.Length - w; i += w) Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref rx, (nuint)i), vs, vb).StoreUnsafe(ref ry, (nuint)i);
        for (; i < x.Length; i++) y[i] = x[i] * scale + shift;
    }

    // dx = k1*dy + k2*(x - mean) + k3 in float64 lanes: the terms nearly cancel, and the bias gradient
    // of the conv before this BN (an exact zero) is the sum of these values.
    private static void BnBackRow(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, float mean, double k1, double k2, double k3)
    {
        int w = Vector<float>.Count, i = 0;
        var v1 = new Vector<double>(k1); var v2 = new Vector<double>(k2); var v3 = new Vector<double>(k3); var vm = new Vector<double>(mean);
        ref float rd = ref MemoryMarshal.GetReference(dy);
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float ro = ref MemoryMarshal.GetReference(dx);
        for (; i <= x.Length - w; i += w)
        {
            Vector.Widen(Vector.LoadUnsafe(ref rd, (nuint)i), out var d0, out var d1);
            Vector.Widen(Vector.LoadUnsafe(ref rx, (nuint)i), out var x0, out var x1);
            Vector.Narrow(d0 * v1 + (x0 - vm) * v2 + v3, d1 * v1 + (x1 - vm) * v2 + v3).StoreUnsafe(ref ro, (nuint)i);
        }
        for (; i < x.Length; i++) dx[i] = (float)(dy[i] * k1 + (x[i] - (double)mean) * k2 + k3);
    }
}
