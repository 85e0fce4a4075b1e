using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>
/// The diffusion forward process: the "scaled_linear" beta schedule (β_i = linspace(√β_start,
/// √β_end, T)_i², computed in float32 like diffusers) and the q-sample
/// z_t = √ᾱ_t·z_0 + √(1-ᾱ_t)·ε. z0, eps and zt are (B, C); t is (B).
/// </summary>
public static class NoiseSchedule
{
    /// <summary>ᾱ_t for t = 0..steps-1 (float32 cumulative product, as diffusers computes it).</summary>
    public static float[] AlphasCumprod(int steps = 50, double betaStart = 0.00085, double betaEnd = 0.012)
    {
        var ac = new float[steps];
        float a = (float)Math.Sqrt(betaStart), z = (float)Math.Sqrt(betaEnd);
        float prod = 1f;
        for (int i = 0; i < steps; i++)
        {
            // torch.linspace in float32: start + i * (end - start) / (steps - 1)
            float s = steps == 1 ? a : a + i * ((z - a) / (steps - 1));
            float beta = s * s;
            prod *= 1f - beta;
            ac[i] = prod;
        }
        return ac;
    }

    /// <summary>zt (B, C) = √ᾱ_t z0 + √(1−ᾱ_t) eps, t per sample; eps is (B, C) or one row (C) shared by every sample.</summary>
    public static void QSample<T>(ReadOnlySpan<T> z0, ReadOnlySpan<T> eps, ReadOnlySpan<T> t, ReadOnlySpan<float> alphasCumprod,
        Span<T> zt, int b, int c) where T : IFloatingPointIeee754<T>
    {
        for (int bi = 0; bi < b; bi++)
        {
            int ti = (int)D(t[bi]);
            if (ti < 0 || ti >= alphasCumprod.Length) throw new ArgumentOutOfRangeException(nameof(t), $"timestep {ti} outside [0, {alphasCumprod.Length})");
            double ab = alphasCumprod[ti];
            double sa = Math.Sqrt(ab), sb = Math.Sqrt(1 - ab);
            int eo = eps.Length == c ? 0 : bi * c; // one eps row: the same noise for every sample
            for (int i = 0; i < c; i++) zt[bi * c + i] = F<T>(sa * D(z0[bi * c + i]) + sb * D(eps[eo + i]));
        }
    }
}
