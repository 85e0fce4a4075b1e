using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tdsm.Cpu;

/// <summary>
/// Elementwise residual ops, CPU tier: the adaLN gated residual (forward and backward)
/// out = x + gate[b]·y (x, y, out (B, N, H), gate a chunk of mod (B, Chunks·H)), y = a + b and the
/// broadcast add of a (L·H) table to every row.
/// </summary>
internal static class CpuResidual
{
    /// <summary>Tokens [row0, row1) of the gated residual; sample b uses modulation row b mod <paramref name="modRows"/>.</summary>
    public static void GatedRows(ReadOnlySpan<float> x, ReadOnlySpan<float> mod, int chunks, int gateChunk, ReadOnlySpan<float> y, Span<float> output,
        int n, int h, int row0, int row1, int modRows = int.MaxValue)
    {
        for (int r = row0; r < row1; r++)
            Fma(mod.Slice((r / n % modRows) * chunks * h + gateChunk * h, h), y.Slice(r * h, h), x.Slice(r * h, h), output.Slice(r * h, h));
    }

    /// <summary>o = g·y + x over equal-length spans.</summary>
    public static void Fma(ReadOnlySpan<float> g, ReadOnlySpan<float> y, ReadOnlySpan<float> x, Span<float> o)
    {
        int w = Vector<float>.Count, i = 0, len = o.Length;
        ref float pg = ref MemoryMarshal.GetReference(g);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float po = ref MemoryMarshal.GetReference(o);
        for (; i <= len - w; i += w)
            Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref pg, (nuint)i), Vector.LoadUnsafe(ref py, (nuint)i), Vector.LoadUnsafe(ref px, (nuint)i)).StoreUnsafe(ref po, (nuint)i);
        for (; i < len; i++) Unsafe.Add(ref po, i) = Unsafe.Add(ref px, i) + Unsafe.Add(ref pg, i) * Unsafe.Add(ref py, i);
    }

    /// <summary>y = a + b over equal-length spans.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        int w = Vector<float>.Count, i = 0, len = y.Length;
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        ref float py = ref MemoryMarshal.GetReference(y);
        for (; i <= len - w; i += w) (Vector.LoadUnsafe(ref pa, (nuint)i) + Vector.LoadUnsafe(ref pb, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
        for (; i < len; i++) Unsafe.Add(ref py, i) = Unsafe.Add(ref pa, i) + Unsafe.Add(ref pb, i);
    }

    /// <summary>
    /// Gated-residual backward for samples [b0, b1): dy = gate·dout (overwritten) and the gate chunk
    /// of dmod accumulates Σ_tokens dout·y; each sample owns its dmod row.
    /// </summary>
    public static void GatedBackwardSamples(ReadOnlySpan<float> dout, ReadOnlySpan<float> mod, int chunks, int gateChunk, ReadOnlySpan<float> y,
        Span<float> dy, Span<float> dmod, int n, int h, int b0, int b1)
    {
        int ms = chunks * h;
        for (int b = b0; b < b1; b++)
        {
            var g = mod.Slice(b * ms + gateChunk * h, h);
            var dg = dmod.Slice(b * ms + gateChunk * h, h);
            for (int t = 0; t < n; t++)
            {
                int r = (b * n + t) * h;
                var d = dout.Slice(r, h);
                var yr = y.Slice(r, h);
                var dyr = dy.Slice(r, h);
                for (int i = 0; i < h; i++)
                {
                    dg[i] += d[i] * yr[i];
                    dyr[i] = g[i] * d[i];
                }
            }
        }
    }
}
