using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tdsm.Cpu;

/// <summary>
/// Joint attention over [skeleton token, L text tokens] (S = L + 1), CPU tier, forward only.
/// qkvX (B, 3H) and qkvU (B, L, 3H) hold [q | k | v], heads of D = H/heads channels; outX (B, H),
/// outU (B, L, H); probs (B, heads, S, S) is written when not empty (training needs it for the
/// backward; inference passes an empty span). Softmax in float32 after subtracting the row max.
/// </summary>
internal static class CpuAttention
{
    /// <summary>Samples [b0, b1).</summary>
    public static void ForwardRows(ReadOnlySpan<float> qkvX, ReadOnlySpan<float> qkvU, Span<float> probs, Span<float> outX, Span<float> outU,
        int l, int h, int heads, int b0, int b1)
    {
        int s = l + 1, d = h / heads;
        float scale = 1f / MathF.Sqrt(d);
        Span<float> p = s <= 1024 ? stackalloc float[s] : new float[s];
        for (int bi = b0; bi < b1; bi++)
            for (int hd = 0; hd < heads; hd++)
                for (int i = 0; i < s; i++)
                {
                    var q = Token(qkvX, qkvU, bi, i, 0, hd * d, d, l, h);
                    float max = float.NegativeInfinity;
                    for (int j = 0; j < s; j++)
                    {
                        p[j] = Dot(q, Token(qkvX, qkvU, bi, j, 1, hd * d, d, l, h)) * scale;
                        max = MathF.Max(max, p[j]);
                    }
                    float sum = 0;
                    for (int j = 0; j < s; j++) { p[j] = MathF.Exp(p[j] - max); sum += p[j]; }
                    float inv = 1f / sum;
                    for (int j = 0; j < s; j++) p[j] *= inv;
                    if (!probs.IsEmpty) p.CopyTo(probs.Slice(((bi * heads + hd) * s + i) * s, s));
                    var o = i == 0 ? outX.Slice(bi * h + hd * d, d) : outU.Slice((bi * l + i - 1) * h + hd * d, d);
                    o.Clear();
                    for (int j = 0; j < s; j++) Gemm.Axpy(p[j], Token(qkvX, qkvU, bi, j, 2, hd * d, d, l, h), o);
                }
    }

    // The d channels of part (0 q, 1 k, 2 v) of token t of sample bi, starting at channel ch.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ReadOnlySpan<float> Token(ReadOnlySpan<float> qkvX, ReadOnlySpan<float> qkvU, int bi, int t, int part, int ch, int d, int l, int h) =>
        t == 0 ? qkvX.Slice(bi * 3 * h + part * h + ch, d) : qkvU.Slice((bi * l + t - 1) * 3 * h + part * h + ch, d);

    private static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int w = Vector<float>.Count, i = 0, n = x.Length;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        Vector<float> acc = default;
        for (; i <= n - w; i += w) acc = Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref px, (nuint)i), Vector.LoadUnsafe(ref py, (nuint)i), acc);
        float r = Vector.Sum(acc);
        for (; i < n; i++) r += Unsafe.Add(ref px, i) * Unsafe.Add(ref py, i);
        return r;
    }
}
