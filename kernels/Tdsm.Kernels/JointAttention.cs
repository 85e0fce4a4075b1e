using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>Shapes of the joint attention: B rows, L text tokens (S = L + 1 ≤ 64), H hidden, Heads.</summary>
public struct AttentionArgs
{
    public int B, L, H, Heads;
}

/// <summary>
/// Joint multi-head attention over [skeleton token, L text tokens], one group of 64 threads per
/// (row, head), thread i owning query token i. qkvX (B, 3H) and qkvU (B, L, 3H) are [q | k | v]
/// with heads of D = H/Heads contiguous channels. Scores live in shared memory; the softmax is
/// max-subtracted. probs (B, Heads, S, S) is saved for the backward, which keeps ∂scores in
/// shared memory between a query pass (dq) and a key pass (dk, dv).
/// </summary>
public static class JointAttention
{
    public const int Threads = 64;
    public const int MaxTokens = 64;

    private static long Index(int bi, int t, int part, int ch, AttentionArgs p) =>
        t == 0 ? (long)bi * 3 * p.H + part * p.H + ch : ((long)bi * p.L + t - 1) * 3 * p.H + part * p.H + ch;

    private static float Load(ArrayView<float> qkvX, ArrayView<float> qkvU, int bi, int t, int part, int ch, AttentionArgs p) =>
        t == 0 ? qkvX[Index(bi, 0, part, ch, p)] : qkvU[Index(bi, t, part, ch, p)];

    /// <summary>Launch: grid B·Heads, group 64.</summary>
    public static void Forward(ArrayView<float> qkvX, ArrayView<float> qkvU, ArrayView<float> probs, ArrayView<float> outX, ArrayView<float> outU, AttentionArgs p)
    {
        var sc = SharedMemory.Allocate<float>(MaxTokens * MaxTokens);
        int bi = Grid.IdxX / p.Heads, hd = Grid.IdxX % p.Heads, i = Group.IdxX;
        int s = p.L + 1, d = p.H / p.Heads;
        if (i >= s) return;
        float scale = 1f / XMath.Sqrt((float)d);
        float max = float.NegativeInfinity;
        for (int j = 0; j < s; j++)
        {
            float dot = 0;
            for (int c = 0; c < d; c++)
                dot += Load(qkvX, qkvU, bi, i, 0, hd * d + c, p) * Load(qkvX, qkvU, bi, j, 1, hd * d + c, p);
            dot *= scale;
            sc[i * MaxTokens + j] = dot;
            max = XMath.Max(max, dot);
        }
        double sum = 0;
        for (int j = 0; j < s; j++)
        {
            float e = FloatMath.Exp(sc[i * MaxTokens + j] - max);
            sc[i * MaxTokens + j] = e;
            sum += e;
        }
        long pRow = (((long)bi * p.Heads + hd) * s + i) * s;
        for (int j = 0; j < s; j++)
        {
            float pr = (float)(sc[i * MaxTokens + j] / sum);
            sc[i * MaxTokens + j] = pr;
            probs[pRow + j] = pr;
        }
        for (int c = 0; c < d; c++)
        {
            float o = 0;
            for (int j = 0; j < s; j++) o += sc[i * MaxTokens + j] * Load(qkvX, qkvU, bi, j, 2, hd * d + c, p);
            if (i == 0) outX[(long)bi * p.H + hd * d + c] = o;
            else outU[((long)bi * p.L + i - 1) * p.H + hd * d + c] = o;
        }
    }

    private static float LoadDOut(ArrayView<float> dOutX, ArrayView<float> dOutU, int bi, int i, int ch, AttentionArgs p) =>
        i == 0 ? dOutX[(long)bi * p.H + ch] : dOutU[((long)bi * p.L + i - 1) * p.H + ch];

    /// <summary>Launch: grid B·Heads, group 64.</summary>
    public static void Backward(ArrayView<float> dOutX, ArrayView<float> dOutU, ArrayView<float> qkvX, ArrayView<float> qkvU, ArrayView<float> probs,
        ArrayView<float> dqkvX, ArrayView<float> dqkvU, AttentionArgs p)
    {
        var ds = SharedMemory.Allocate<float>(MaxTokens * MaxTokens);
        int bi = Grid.IdxX / p.Heads, hd = Grid.IdxX % p.Heads, i = Group.IdxX;
        int s = p.L + 1, d = p.H / p.Heads;
        float scale = 1f / XMath.Sqrt((float)d);
        long pBase = ((long)bi * p.Heads + hd) * s * s;
        if (i < s)
        {
            // Query pass: ∂P[i,j] = dO_i·v_j, ∂S[i,j] = P[i,j](∂P[i,j] − Σ_j' P ∂P) · scale.
            double dot = 0;
            for (int j = 0; j < s; j++)
            {
                float acc = 0;
                for (int c = 0; c < d; c++) acc += LoadDOut(dOutX, dOutU, bi, i, hd * d + c, p) * Load(qkvX, qkvU, bi, j, 2, hd * d + c, p);
                ds[i * MaxTokens + j] = acc;
                dot += probs[pBase + (long)i * s + j] * acc;
            }
            for (int j = 0; j < s; j++)
                ds[i * MaxTokens + j] = (float)(probs[pBase + (long)i * s + j] * (ds[i * MaxTokens + j] - dot) * scale);
            for (int c = 0; c < d; c++)
            {
                float acc = 0;
                for (int j = 0; j < s; j++) acc += ds[i * MaxTokens + j] * Load(qkvX, qkvU, bi, j, 1, hd * d + c, p);
                Store(dqkvX, dqkvU, bi, i, 0, hd * d + c, p, acc);
            }
        }
        Group.Barrier();
        if (i < s)
        {
            // Key pass, thread i as key token t = i.
            for (int c = 0; c < d; c++)
            {
                float dk = 0, dv = 0;
                for (int q = 0; q < s; q++)
                {
                    dk += ds[q * MaxTokens + i] * Load(qkvX, qkvU, bi, q, 0, hd * d + c, p);
                    dv += probs[pBase + (long)q * s + i] * LoadDOut(dOutX, dOutU, bi, q, hd * d + c, p);
                }
                Store(dqkvX, dqkvU, bi, i, 1, hd * d + c, p, dk);
                Store(dqkvX, dqkvU, bi, i, 2, hd * d + c, p, dv);
            }
        }
    }

    private static void Store(ArrayView<float> dqkvX, ArrayView<float> dqkvU, int bi, int t, int part, int ch, AttentionArgs p, float v)
    {
        if (t == 0) dqkvX[Index(bi, 0, part, ch, p)] = v;
        else dqkvU[Index(bi, t, part, ch, p)] = v;
    }
}
