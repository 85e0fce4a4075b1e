using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// The ST-GCN head around the classifier: global average pool over (T,V) and mean over persons,
/// x (N·M, C, L) → f (N, C), and its backward dx = df/(M·L) (overwritten); the mean softmax
/// cross-entropy of logits (N, K), one thread per sample (loss row written for the host to average,
/// dLogits = (softmax − onehot)/N overwritten), in float64 with precise exp/log.
/// </summary>
public static class Head
{
    /// <summary>Thread i = (n, c) of f.</summary>
    public static void Pool(Index1D i, ArrayView<float> x, ArrayView<float> f, int m, int c, int l)
    {
        int ci = i % c, ni = i / c;
        double acc = 0;
        for (int mi = 0; mi < m; mi++)
        {
            long o = ((long)(ni * m + mi) * c + ci) * l;
            double s = 0;
            for (int li = 0; li < l; li++) s += x[o + li];
            acc += s / l;
        }
        f[i] = (float)(acc / m);
    }

    /// <summary>Thread i indexes dx (N·M, C, L).</summary>
    public static void PoolBackward(Index1D i, ArrayView<float> df, ArrayView<float> dx, int m, int c, int l)
    {
        long r = (long)(int)i / l;
        int ci = (int)(r % c), bi = (int)(r / c), ni = bi / m;
        dx[i] = (float)(df[(long)ni * c + ci] / ((double)m * l));
    }

    /// <summary>Thread i = sample: loss[i] = logsumexp(z_i) − z_i[y_i]; dLogits row i = (softmax − onehot)/N.</summary>
    public static void CrossEntropy(Index1D i, ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> dLogits, ArrayView<float> loss,
        int n, int k)
    {
        long o = (long)(int)i * k;
        int y = labels[i];
        double max = logits[o];
        for (int j = 1; j < k; j++) max = XMath.Max(max, (double)logits[o + j]);
        double sum = 0;
        for (int j = 0; j < k; j++) sum += XMath.Exp(logits[o + j] - max);
        double lse = max + XMath.Log(sum);
        loss[i] = (float)(lse - logits[o + y]);
        for (int j = 0; j < k; j++)
            dLogits[o + j] = (float)((XMath.Exp(logits[o + j] - lse) - (j == y ? 1.0 : 0.0)) / n);
    }
}
