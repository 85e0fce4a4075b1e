using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tdsm.Cpu;

/// <summary>
/// Joint attention over [skeleton token, L text tokens] (S = L + 1), CPU tier, forward and backward.
/// qkvX (B, 3H) and qkvU (B, L, 3H) hold [q | k | v], heads of D = H/heads channels; outX (B, H),
/// outU (B, L, H); probs (B, heads, S, S) is written when not empty (training needs it for the
/// backward; inference passes an empty span). Per (sample, head) the head's K and V are gathered
/// into contiguous scratch, scores and P·V run as small Vector256 loops over pointers, and the
/// softmax is float32 after subtracting the row max.
/// </summary>
internal static class CpuAttention
{
    [ThreadStatic] private static float[]? _scratch;

    /// <summary>Samples [b0, b1).</summary>
    public static unsafe void ForwardRows(ReadOnlySpan<float> qkvX, ReadOnlySpan<float> qkvU, Span<float> probs, Span<float> outX, Span<float> outU,
        int l, int h, int heads, int b0, int b1)
    {
        int s = l + 1, d = h / heads, need = 3 * s * d + s;
        var scratch = _scratch is { } sc && sc.Length >= need ? sc : (_scratch = new float[need]);
        float scale = 1f / MathF.Sqrt(d);
        fixed (float* px = qkvX, pu = qkvU, pox = outX, pou = outU, ps = scratch)
        {
            float* q = ps, k = ps + s * d, v = ps + 2 * s * d, p = ps + 3 * s * d;
            for (int bi = b0; bi < b1; bi++)
                for (int hd = 0; hd < heads; hd++)
                {
                    // Gather the head's q, k, v rows (token 0 from qkvX, tokens 1..L from qkvU).
                    for (int t = 0; t < s; t++)
                    {
                        float* src = t == 0 ? px + (long)bi * 3 * h : pu + ((long)bi * l + t - 1) * 3 * h;
                        Copy(src + hd * d, q + t * d, d);
                        Copy(src + h + hd * d, k + t * d, d);
                        Copy(src + 2 * h + hd * d, v + t * d, d);
                    }
                    for (int i = 0; i < s; i++)
                    {
                        float* qi = q + i * d;
                        float max = float.NegativeInfinity;
                        for (int j = 0; j < s; j++)
                        {
                            float dot = Dot(qi, k + j * d, d) * scale;
                            p[j] = dot;
                            if (dot > max) max = dot;
                        }
                        float sum = 0;
                        for (int j = 0; j < s; j++) { float e = MathF.Exp(p[j] - max); p[j] = e; sum += e; }
                        float inv = 1f / sum;
                        for (int j = 0; j < s; j++) p[j] *= inv;
                        if (!probs.IsEmpty) new Span<float>(p, s).CopyTo(probs.Slice(((bi * heads + hd) * s + i) * s, s));
                        float* o = i == 0 ? pox + (long)bi * h + hd * d : pou + ((long)bi * l + i - 1) * h + hd * d;
                        WeightedSum(p, v, s, d, o);
                    }
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Copy(float* src, float* dst, int n) => Buffer.MemoryCopy(src, dst, n * sizeof(float), n * sizeof(float));

    private static unsafe float Dot(float* x, float* y, int n)
    {
        int i = 0;
        float r = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> a0 = default, a1 = default;
            for (; i <= n - 16; i += 16)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(y + i + 8), a1);
            }
            for (; i <= n - 8; i += 8) a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), a0);
            r = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++) r += x[i] * y[i];
        return r;
    }

    // o (d) = Σ_j p[j]·v[j] (v is s rows of d).
    private static unsafe void WeightedSum(float* p, float* v, int s, int d, float* o)
    {
        int c = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; c <= d - 16; c += 16)
            {
                Vector256<float> a0 = default, a1 = default;
                for (int j = 0; j < s; j++)
                {
                    var pj = Vector256.Create(p[j]);
                    a0 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(v + j * d + c), a0);
                    a1 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(v + j * d + c + 8), a1);
                }
                Vector256.Store(a0, o + c);
                Vector256.Store(a1, o + c + 8);
            }
            for (; c <= d - 8; c += 8)
            {
                Vector256<float> a0 = default;
                for (int j = 0; j < s; j++) a0 = Vector256.FusedMultiplyAdd(Vector256.Create(p[j]), Vector256.Load(v + j * d + c), a0);
                Vector256.Store(a0, o + c);
            }
        }
        for (; c < d; c++)
        {
            float acc = 0;
            for (int j = 0; j < s; j++) acc += p[j] * v[j * d + c];
            o[c] = acc;
        }
    }

    [ThreadStatic] private static float[]? _backScratch;

    /// <summary>
    /// Backward for samples [b0, b1): per (sample, head) the query pass gives ∂S = P∘(∂P − rowsum(P∘∂P))·scale
    /// and dq, the key pass dk = ∂Sᵀq and dv = Pᵀ·dO. dqkvX / dqkvU are overwritten.
    /// </summary>
    public static void BackwardRows(ReadOnlySpan<float> dOutX, ReadOnlySpan<float> dOutU, ReadOnlySpan<float> qkvX, ReadOnlySpan<float> qkvU,
        ReadOnlySpan<float> probs, Span<float> dqkvX, Span<float> dqkvU, int l, int h, int heads, int b0, int b1)
    {
        int s = l + 1, d = h / heads;
        float scale = 1f / MathF.Sqrt(d);
        var ds = _backScratch is { } sc && sc.Length >= s * s ? sc : (_backScratch = new float[s * s]);
        for (int b = b0; b < b1; b++)
        {
            for (int hd = 0; hd < heads; hd++)
            {
                int c0 = hd * d;
                var p = probs.Slice((b * heads + hd) * s * s, s * s);
                for (int i = 0; i < s; i++)
                {
                    var doi = Row(dOutX, dOutU, b, i, l, h).Slice(c0, d);
                    float dot = 0;
                    for (int j = 0; j < s; j++)
                    {
                        var vj = Row(qkvX, qkvU, b, j, l, 3 * h).Slice(2 * h + c0, d);
                        float acc = 0;
                        for (int c = 0; c < d; c++) acc += doi[c] * vj[c];
                        ds[i * s + j] = acc;
                        dot += p[i * s + j] * acc;
                    }
                    for (int j = 0; j < s; j++) ds[i * s + j] = p[i * s + j] * (ds[i * s + j] - dot) * scale;
                }
                for (int t = 0; t < s; t++)
                {
                    var dst = t == 0 ? dqkvX.Slice(b * 3 * h, 3 * h) : dqkvU.Slice((b * l + t - 1) * 3 * h, 3 * h);
                    var dq = dst.Slice(c0, d); var dk = dst.Slice(h + c0, d); var dv = dst.Slice(2 * h + c0, d);
                    dq.Clear(); dk.Clear(); dv.Clear();
                    for (int j = 0; j < s; j++)
                    {
                        var row = Row(qkvX, qkvU, b, j, l, 3 * h);
                        float a = ds[t * s + j], bq = ds[j * s + t], pv = p[j * s + t];
                        var kj = row.Slice(h + c0, d); var qj = row.Slice(c0, d); var doj = Row(dOutX, dOutU, b, j, l, h).Slice(c0, d);
                        for (int c = 0; c < d; c++)
                        {
                            dq[c] += a * kj[c];
                            dk[c] += bq * qj[c];
                            dv[c] += pv * doj[c];
                        }
                    }
                }
            }
        }
    }

    // Token t's row of width w: token 0 from the skeleton tensor, tokens 1..L from the text tensor.
    private static ReadOnlySpan<float> Row(ReadOnlySpan<float> x, ReadOnlySpan<float> u, int b, int t, int l, int w) =>
        t == 0 ? x.Slice(b * w, w) : u.Slice((b * l + t - 1) * w, w);
}
