using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>
/// The diffusion pieces: q-sample z_t = √ᾱ_t z0 + √(1−ᾱ_t) ε (t read from a float tensor),
/// the sinusoidal timestep embedding gathered from a float32 table precomputed on the host (so
/// the GPU gives bit-identical embeddings to the CPU tiers), the TD loss per row with its reduction
/// to the three loss scalars on the device, and the per-row MSE and argmin of zero-shot scoring.
/// </summary>
public static class Diffusion
{
    /// <summary>eps is one row per sample, or one row for all when broadcast ≠ 0.</summary>
    public static void QSample(Index1D idx, ArrayView<float> z0, ArrayView<float> eps, ArrayView<float> t, ArrayView<float> alphas,
        ArrayView<float> zt, int channels, int broadcast)
    {
        int bi = idx / channels;
        double ab = alphas[(int)t[bi]];
        zt[idx] = (float)(XMath.Sqrt(ab) * z0[idx] + XMath.Sqrt(1 - ab) * eps[broadcast != 0 ? idx - bi * channels : idx]);
    }

    public static void TimestepEmbedding(Index1D idx, ArrayView<float> t, ArrayView<float> table, ArrayView<float> emb, int dim)
    {
        int bi = idx / dim;
        emb[idx] = table[(long)(int)t[bi] * dim + idx % dim];
    }

    /// <summary>One thread per sample i: pos, neg, the masked hinge term (summed by <see cref="TdLossReduce"/>) and dpred rows i and B+i.</summary>
    public static void TdLoss(Index1D i, ArrayView<float> pred, ArrayView<float> eps, ArrayView<float> mask, ArrayView<float> pos,
        ArrayView<float> neg, ArrayView<float> hinge, ArrayView<float> dpred, int b, int c, float margin, float lambda)
    {
        double ps = 0, ns = 0;
        long r = (long)(int)i * c, rn = ((long)b + (int)i) * c;
        for (int k = 0; k < c; k++)
        {
            double e = eps[r + k];
            double dp = pred[r + k] - e, dn = pred[rn + k] - e;
            ps += dp * dp; ns += dn * dn;
        }
        ps /= c; ns /= c;
        pos[i] = (float)ps; neg[i] = (float)ns;
        double h = ps - ns + margin;
        double active = h > 0 ? lambda * (double)mask[i] : 0;
        hinge[i] = h > 0 ? (float)(h * mask[i]) : 0f;
        double norm = 2.0 / ((double)b * c);
        for (int k = 0; k < c; k++)
        {
            double e = eps[r + k];
            dpred[r + k] = (float)((pred[r + k] - e) * (1 + active) * norm);
            dpred[rn + k] = (float)(-(pred[rn + k] - e) * active * norm);
        }
    }

    /// <summary>Threads of <see cref="TdLossReduce"/>: one warp.</summary>
    public const int ReduceThreads = 32;

    /// <summary>
    /// loss (3) = [L_diff + λ·L_TD, L_diff, L_TD] from the per-row pos and masked hinge terms of
    /// <see cref="TdLoss"/>: one warp, each lane summing a fixed stride of rows in float64, then a
    /// shuffle tree (a fixed order, so the same inputs give the same bits). Launch: grid 1, group 32.
    /// </summary>
    public static void TdLossReduce(ArrayView<float> pos, ArrayView<float> hinge, ArrayView<float> loss, int b, float lambda)
    {
        int lane = Group.IdxX;
        double p = 0, h = 0;
        for (int i = lane; i < b; i += ReduceThreads) { p += pos[i]; h += hinge[i]; }
        for (int offset = ReduceThreads / 2; offset > 0; offset /= 2)
        {
            p += Warp.ShuffleXor(p, offset);
            h += Warp.ShuffleXor(h, offset);
        }
        if (lane == 0)
        {
            double diff = p / b, trip = h / b;
            loss[0] = (float)(diff + lambda * trip);
            loss[1] = (float)diff;
            loss[2] = (float)trip;
        }
    }

    /// <summary>score[i] = mean_c (pred[i] − eps)² (+= the old score when accumulate ≠ 0), eps one row broadcast over i. Four
    /// channels' loads in flight per trip, summed in channel order (the same bits as a channel per trip, which waited out a load's
    /// latency per channel: ~0.15 ms per 1,920-row scoring chunk at the third visit).</summary>
    public static void RowMse(Index1D i, ArrayView<float> pred, ArrayView<float> eps, ArrayView<float> score, int c, int broadcast, int accumulate)
    {
        double acc = 0;
        long r = (long)(int)i * c, e = broadcast != 0 ? 0 : r;   // the row's first prediction and noise
        int k = 0;
        for (; k + 4 <= c; k += 4)
        {
            float p0 = pred[r + k], p1 = pred[r + k + 1], p2 = pred[r + k + 2], p3 = pred[r + k + 3];
            float e0 = eps[e + k], e1 = eps[e + k + 1], e2 = eps[e + k + 2], e3 = eps[e + k + 3];
            double d0 = p0 - (double)e0, d1 = p1 - (double)e1, d2 = p2 - (double)e2, d3 = p3 - (double)e3;
            acc += d0 * d0; acc += d1 * d1; acc += d2 * d2; acc += d3 * d3;
        }
        for (; k < c; k++)
        {
            double d = pred[r + k] - (double)eps[e + k];
            acc += d * d;
        }
        score[i] = accumulate != 0 ? (float)(score[i] + acc / c) : (float)(acc / c);
    }

    /// <summary>index[i] = the first column of row i of scores (R, cols) holding the row's minimum (NaN never wins after column 0), as a float.</summary>
    public static void ArgMinRows(Index1D i, ArrayView<float> scores, ArrayView<float> index, int cols)
    {
        long r = (long)(int)i * cols;
        int best = 0;
        float min = scores[r];
        for (int k = 1; k < cols; k++)
        {
            float v = scores[r + k];
            if (v < min) { min = v; best = k; }
        }
        index[i] = best;
    }
}
