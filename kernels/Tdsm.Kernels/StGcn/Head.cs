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
    /// <summary>Warps per group of <see cref="Pool"/>.</summary>
    public const int PoolWarps = 8;

    /// <summary>
    /// Kernel: f[i] for i = (n, c) < <paramref name="outputs"/> (N·C), one warp each: lane j sums x's row (n·M + m, c) at
    /// j, j + 32, ... in float64, the warp adds its lanes (xor butterfly: the same order on every card), divides by L, and the
    /// persons' means are averaged in order. Coalesced reads of each row: a thread per output read its row alone (32 rows per
    /// load instruction), at 2 warps per SM for the paper's N·C = 8,192. Launch: grid ⌈N·C / PoolWarps⌉, group 32·PoolWarps.
    /// </summary>
    public static void Pool(ArrayView<float> x, ArrayView<float> f, int outputs, int m, int c, int l)
    {
        int i = Grid.IdxX * PoolWarps + (Group.IdxX >> 5), lane = Group.IdxX & 31;
        if (i >= outputs) return;   // the whole warp
        int ci = i % c, ni = i / c;
        double acc = 0;
        for (int mi = 0; mi < m; mi++)
        {
            long o = ((long)(ni * m + mi) * c + ci) * l;
            double s = 0;
            for (int li = lane; li < l; li += 32) s += x[o + li];
            for (int offset = 16; offset > 0; offset /= 2) s += Warp.ShuffleXor(s, offset);
            acc += s / l;
        }
        if (lane == 0) f[i] = (float)(acc / m);
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
