using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>
/// The diffusion pieces: q-sample z_t = √ᾱ_t z0 + √(1−ᾱ_t) ε (t read from a float tensor),
/// the sinusoidal timestep embedding gathered from a float32 table precomputed on the host (so
/// the GPU gives bit-identical embeddings to the CPU tiers), the TD loss per row and the
/// per-row MSE used by zero-shot scoring.
/// </summary>
public static class Diffusion
{
    public static void QSample(Index1D idx, ArrayView<float> z0, ArrayView<float> eps, ArrayView<float> t, ArrayView<float> alphas,
        ArrayView<float> zt, int channels)
    {
        int bi = idx / channels;
        double ab = alphas[(int)t[bi]];
        zt[idx] = (float)(XMath.Sqrt(ab) * z0[idx] + XMath.Sqrt(1 - ab) * eps[idx]);
    }

    public static void TimestepEmbedding(Index1D idx, ArrayView<float> t, ArrayView<float> table, ArrayView<float> emb, int dim)
    {
        int bi = idx / dim;
        emb[idx] = table[(long)(int)t[bi] * dim + idx % dim];
    }

    /// <summary>One thread per sample i: pos, neg, the masked hinge term (for the host's mean) and dpred rows i and B+i.</summary>
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

    /// <summary>score[i] = mean_c (pred[i] − eps)², eps one row broadcast over i.</summary>
    public static void RowMse(Index1D i, ArrayView<float> pred, ArrayView<float> eps, ArrayView<float> score, int c, int broadcast)
    {
        double acc = 0;
        for (int k = 0; k < c; k++)
        {
            double d = pred[(long)(int)i * c + k] - (double)eps[broadcast != 0 ? k : (long)(int)i * c + k];
            acc += d * d;
        }
        score[i] = (float)(acc / c);
    }
}
