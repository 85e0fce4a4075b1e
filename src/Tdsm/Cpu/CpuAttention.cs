using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tdsm.Cpu;

/// <summary>
/// Joint attention over [skeleton token, L text tokens] (S = L + 1), CPU tier, forward only.
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
}
