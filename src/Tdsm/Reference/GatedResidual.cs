using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>
/// adaLN gated residual, reference tier: out = x + gate[b]·y with x, y, out (B, N, H) and the
/// gate at chunk <c>gateChunk</c> of mod (B, Chunks·H). Backward: given dout, dy = gate·dout
/// (overwritten) and the gate chunk of dmod accumulates Σ_tokens dout·y; dx = dout is the
/// caller's identity path.
/// </summary>
public static class GatedResidual
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> mod, int chunks, int gateChunk, ReadOnlySpan<T> y, Span<T> output,
        int b, int n, int h) where T : IFloatingPointIeee754<T>
    {
        int ms = chunks * h;
        for (int bi = 0; bi < b; bi++)
            for (int t = 0; t < n; t++)
                for (int i = 0; i < h; i++)
                {
                    int k = (bi * n + t) * h + i;
                    output[k] = F<T>(D(x[k]) + D(mod[bi * ms + gateChunk * h + i]) * D(y[k]));
                }
    }

    public static void Backward<T>(ReadOnlySpan<T> dout, ReadOnlySpan<T> mod, int chunks, int gateChunk, ReadOnlySpan<T> y,
        Span<T> dy, Span<T> dmod, int b, int n, int h) where T : IFloatingPointIeee754<T>
    {
        int ms = chunks * h;
        for (int bi = 0; bi < b; bi++)
            for (int i = 0; i < h; i++)
            {
                int gi = bi * ms + gateChunk * h + i;
                double g = D(mod[gi]), acc = 0;
                for (int t = 0; t < n; t++)
                {
                    int k = (bi * n + t) * h + i;
                    acc += D(dout[k]) * D(y[k]);
                    dy[k] = F<T>(g * D(dout[k]));
                }
                dmod[gi] = F<T>(D(dmod[gi]) + acc);
            }
    }
}
