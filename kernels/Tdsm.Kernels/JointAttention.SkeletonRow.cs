using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

public static partial class JointAttention
{
    /// <summary>
    /// Kernel: the skeleton token's row of <see cref="Forward"/> alone, outX (B, H): per head, softmax(q_x·[k_x; k_1..k_L]ᵀ·Scale)
    /// ·[v_x; v_1..v_L]. The last block of a forward-only pass needs no more (its text stream is never read after the
    /// attention), so the text tokens' queries are neither computed nor read: textKv (B, L, kvWidth) holds each text token's
    /// [k | v] in its last 2H channels (kvWidth 2H: [k | v]; 3H: the [q | k | v] of qkvU). qkvX (B, 3H) as in Forward.
    /// One warp per (row, head), S = L + 1 ≤ 64: lane j scores keys j and j + 32 (channels in order from zero, as Forward),
    /// the softmax is <see cref="SoftmaxRows"/>'s (a float64 normaliser summed across the warp), and lane c mixes channels
    /// c, c + 32, ... over the keys in order with the probabilities shuffled from their lanes: the same operations in the same
    /// order as Forward's row 0. Launch: grid B·Heads, group 32.
    /// </summary>
    public static void SkeletonRow(ArrayView<float> qkvX, ArrayView<float> textKv, ArrayView<float> outX, AttentionArgs p, int kvWidth)
    {
        int bi = Grid.IdxX / p.Heads, hd = Grid.IdxX - bi * p.Heads, lane = Group.IdxX;
        int s = p.L + 1, d = p.H / p.Heads;
        long xq = (long)bi * 3 * p.H + hd * d;                                    // the skeleton token's q; its k at + H, v at + 2H
        long uk = (long)bi * p.L * kvWidth + (kvWidth - 2 * p.H) + hd * d;        // text token 1's k; its v at + H; token t at + (t − 1)·kvWidth
        int j0 = lane, j1 = lane + 32;
        bool has0 = j0 < s, has1 = j1 < s;
        long k0 = j0 == 0 ? 0 : uk + (long)(j0 - 1) * kvWidth, k1 = uk + (long)(j1 - 1) * kvWidth;
        float a0 = 0, a1 = 0;
        for (int c = 0; c < d; c++)
        {
            float q = qkvX[xq + c];
            if (j0 == 0) a0 += q * qkvX[xq + p.H + c];
            else if (has0) a0 += q * textKv[k0 + c];
            if (has1) a1 += q * textKv[k1 + c];
        }
        float x0 = has0 ? a0 * p.Scale : float.NegativeInfinity;
        float x1 = has1 ? a1 * p.Scale : float.NegativeInfinity;
        float max = WarpMax(XMath.Max(x0, x1));
        float e0 = FloatMath.ExpNonPositive(x0 - max), e1 = FloatMath.ExpNonPositive(x1 - max);
        double inv = 1.0 / WarpSum((double)e0 + e1);
        float p0 = (float)(e0 * inv), p1 = (float)(e1 * inv);
        // Channel trips uniform across the warp: every lane takes part in the shuffles.
        for (int c0 = 0; c0 < d; c0 += 32)
        {
            int c = c0 + lane;
            bool active = c < d;
            float acc = 0;
            for (int j = 0; j < s; j++)
            {
                float pj = j < 32 ? Warp.Shuffle(p0, j) : Warp.Shuffle(p1, j - 32);
                if (active) acc += pj * (j == 0 ? qkvX[xq + 2 * p.H + c] : textKv[uk + p.H + (long)(j - 1) * kvWidth + c]);
            }
            if (active) outX[(long)bi * p.H + hd * d + c] = acc;
        }
    }
}
