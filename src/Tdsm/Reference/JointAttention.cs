using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>
/// Joint multi-head attention over [skeleton token, L text tokens] (S = 1 + L tokens), no mask,
/// reference tier. qkvX is (B, 1, 3H) and qkvU is (B, L, 3H), features ordered [q | k | v], each
/// split into heads of D = H/heads contiguous channels. probs (B, heads, S, S) is saved for the
/// backward (not when empty: a forward-only pass). Outputs are split back: outX (B, H) for token 0 and outU (B, L, H) for tokens 1..L.
/// Backward: dqkvX and dqkvU are overwritten.
/// </summary>
public static class JointAttention
{
    public static void Forward<T>(ReadOnlySpan<T> qkvX, ReadOnlySpan<T> qkvU, Span<T> probs, Span<T> outX, Span<T> outU,
        int b, int l, int h, int heads) where T : IFloatingPointIeee754<T>
    {
        int s = l + 1, d = h / heads;
        double scale = 1 / Math.Sqrt(d);
        var sc = new double[s];
        for (int bi = 0; bi < b; bi++)
            for (int hd = 0; hd < heads; hd++)
                for (int i = 0; i < s; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < s; j++)
                    {
                        double dot = 0;
                        for (int c = 0; c < d; c++) dot += Qkv(qkvX, qkvU, bi, i, 0, hd * d + c, l, h) * Qkv(qkvX, qkvU, bi, j, 1, hd * d + c, l, h);
                        sc[j] = dot * scale;
                        max = Math.Max(max, sc[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < s; j++) { sc[j] = Math.Exp(sc[j] - max); sum += sc[j]; }
                    int pRow = ((bi * heads + hd) * s + i) * s;
                    for (int j = 0; j < s; j++) { sc[j] /= sum; if (!probs.IsEmpty) probs[pRow + j] = F<T>(sc[j]); }
                    for (int c = 0; c < d; c++)
                    {
                        double o = 0;
                        for (int j = 0; j < s; j++) o += sc[j] * Qkv(qkvX, qkvU, bi, j, 2, hd * d + c, l, h);
                        if (i == 0) outX[bi * h + hd * d + c] = F<T>(o);
                        else outU[(bi * l + i - 1) * h + hd * d + c] = F<T>(o);
                    }
                }
    }

    /// <summary>
    /// The skeleton token's row of <see cref="Forward{T}"/> alone: outX (B, H) from qkvX (B, 3H) and the text tokens' keys and values,
    /// the last 2H channels ([k | v]) of each row of textKv (B, L, kvWidth): kvWidth 2H is [k | v], 3H the [q | k | v] of qkvU
    /// (whose queries are not read). A forward-only pass's last block, whose text stream is not used after the attention.
    /// </summary>
    public static void SkeletonRow<T>(ReadOnlySpan<T> qkvX, ReadOnlySpan<T> textKv, int kvWidth, Span<T> outX, int b, int l, int h, int heads)
        where T : IFloatingPointIeee754<T>
    {
        int s = l + 1, d = h / heads, kOffset = kvWidth - 2 * h;
        double scale = 1 / Math.Sqrt(d);
        var sc = new double[s];
        for (int bi = 0; bi < b; bi++)
            for (int hd = 0; hd < heads; hd++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < s; j++)
                {
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += D(qkvX[bi * 3 * h + hd * d + c]) * KeyOrValue(qkvX, textKv, kvWidth, kOffset, bi, j, 1, hd * d + c, l, h);
                    sc[j] = dot * scale;
                    max = Math.Max(max, sc[j]);
                }
                double sum = 0;
                for (int j = 0; j < s; j++) { sc[j] = Math.Exp(sc[j] - max); sum += sc[j]; }
                for (int c = 0; c < d; c++)
                {
                    double o = 0;
                    for (int j = 0; j < s; j++) o += sc[j] / sum * KeyOrValue(qkvX, textKv, kvWidth, kOffset, bi, j, 2, hd * d + c, l, h);
                    outX[bi * h + hd * d + c] = F<T>(o);
                }
            }
    }

    /// <summary>
    /// <see cref="SkeletonRow{T}"/> with text token j's [k | v] = wKv·hu_j + bKv: hu (B, L, H) the text tokens' LN-modulated
    /// states, wKv (2H, H) and bKv (2H) qkv_c's rows H..3H. The definition, literally: each row's keys and values are computed
    /// (float64 sums, kept in float64) and its skeleton token attends to them.
    /// </summary>
    public static void SkeletonRowFromText<T>(ReadOnlySpan<T> qkvX, ReadOnlySpan<T> hu, ReadOnlySpan<T> wKv, ReadOnlySpan<T> bKv, Span<T> outX,
        int b, int l, int h, int heads) where T : IFloatingPointIeee754<T>
    {
        var x = new double[3 * h];
        var kv = new double[l * 2 * h];
        var o = new double[h];
        for (int bi = 0; bi < b; bi++)
        {
            for (int c = 0; c < 3 * h; c++) x[c] = D(qkvX[bi * 3 * h + c]);
            for (int j = 0; j < l; j++)
                for (int f = 0; f < 2 * h; f++)
                {
                    double acc = D(bKv[f]);
                    for (int c = 0; c < h; c++) acc += D(hu[(bi * l + j) * h + c]) * D(wKv[f * h + c]);
                    kv[j * 2 * h + f] = acc;
                }
            SkeletonRow<double>(x, kv, 2 * h, o, 1, l, h, heads);
            for (int c = 0; c < h; c++) outX[bi * h + c] = F<T>(o[c]);
        }
    }

    // Part 1 (k) or 2 (v) of token j, channel ch: token 0 from qkvX, text token j from row j − 1 of textKv ([k | v] from kOffset).
    private static double KeyOrValue<T>(ReadOnlySpan<T> qkvX, ReadOnlySpan<T> textKv, int kvWidth, int kOffset, int bi, int j, int part, int ch, int l, int h)
        where T : IFloatingPointIeee754<T> =>
        j == 0 ? D(qkvX[bi * 3 * h + part * h + ch]) : D(textKv[(bi * l + j - 1) * kvWidth + kOffset + (part - 1) * h + ch]);

    public static void Backward<T>(ReadOnlySpan<T> dOutX, ReadOnlySpan<T> dOutU, ReadOnlySpan<T> qkvX, ReadOnlySpan<T> qkvU,
        ReadOnlySpan<T> probs, Span<T> dqkvX, Span<T> dqkvU, int b, int l, int h, int heads) where T : IFloatingPointIeee754<T>
    {
        int s = l + 1, d = h / heads;
        double scale = 1 / Math.Sqrt(d);
        var dq = new double[s * d]; var dk = new double[s * d]; var dv = new double[s * d];
        var dp = new double[s];
        for (int bi = 0; bi < b; bi++)
            for (int hd = 0; hd < heads; hd++)
            {
                Array.Clear(dq); Array.Clear(dk); Array.Clear(dv);
                for (int i = 0; i < s; i++)
                {
                    int pRow = ((bi * heads + hd) * s + i) * s;
                    double dot = 0;
                    for (int j = 0; j < s; j++)
                    {
                        double pij = D(probs[pRow + j]), acc = 0;
                        for (int c = 0; c < d; c++)
                        {
                            double go = i == 0 ? D(dOutX[bi * h + hd * d + c]) : D(dOutU[(bi * l + i - 1) * h + hd * d + c]);
                            acc += go * Qkv(qkvX, qkvU, bi, j, 2, hd * d + c, l, h);
                            dv[j * d + c] += pij * go;
                        }
                        dp[j] = acc;
                        dot += pij * acc;
                    }
                    for (int j = 0; j < s; j++)
                    {
                        double ds = D(probs[pRow + j]) * (dp[j] - dot) * scale;
                        for (int c = 0; c < d; c++)
                        {
                            dq[i * d + c] += ds * Qkv(qkvX, qkvU, bi, j, 1, hd * d + c, l, h);
                            dk[j * d + c] += ds * Qkv(qkvX, qkvU, bi, i, 0, hd * d + c, l, h);
                        }
                    }
                }
                for (int t = 0; t < s; t++)
                    for (int c = 0; c < d; c++)
                    {
                        int ch = hd * d + c;
                        Span<T> dst = t == 0 ? dqkvX.Slice(bi * 3 * h, 3 * h) : dqkvU.Slice((bi * l + t - 1) * 3 * h, 3 * h);
                        dst[ch] = F<T>(dq[t * d + c]);
                        dst[h + ch] = F<T>(dk[t * d + c]);
                        dst[2 * h + ch] = F<T>(dv[t * d + c]);
                    }
            }
    }

    // Element `part` (0 q, 1 k, 2 v) channel ch of token t in row bi.
    private static double Qkv<T>(ReadOnlySpan<T> qkvX, ReadOnlySpan<T> qkvU, int bi, int t, int part, int ch, int l, int h)
        where T : IFloatingPointIeee754<T> =>
        t == 0 ? D(qkvX[bi * 3 * h + part * h + ch]) : D(qkvU[(bi * l + t - 1) * 3 * h + part * h + ch]);
}
