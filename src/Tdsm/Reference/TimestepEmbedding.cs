using System.Numerics;

namespace Tdsm.Reference;

/// <summary>
/// Sinusoidal timestep embedding (the DiT t_embedder's first stage), computed in float32 as the
/// official code does: f_i = exp(-ln(10000)·i / half), emb = [cos(t·f), sin(t·f)] (cos first).
/// t is (B); emb is (B, Dim). No parameters, so no backward.
/// </summary>
public static class TimestepEmbedding
{
    public const int Dim = 256;

    public static void Forward<T>(ReadOnlySpan<T> t, Span<T> emb, int b) where T : IFloatingPointIeee754<T>
    {
        const int half = Dim / 2;
        float negLog = -(float)Math.Log(10000.0);
        for (int bi = 0; bi < b; bi++)
        {
            float tv = float.CreateTruncating(t[bi]);
            for (int i = 0; i < half; i++)
            {
                // Same float32 operation order as torch: (-ln(P) * arange) / half, exp, times t.
                float f = MathF.Exp(negLog * i / half);
                float arg = tv * f;
                emb[bi * Dim + i] = T.CreateTruncating(MathF.Cos(arg));
                emb[bi * Dim + half + i] = T.CreateTruncating(MathF.Sin(arg));
            }
        }
    }
}
