namespace Tdsm.Tensors;

/// <summary>
/// Counter-based random numbers: every value is a pure function of (seed, stream, index), so a
/// training step's noise, timesteps and negatives can be drawn in parallel on any tier (host loop
/// or GPU kernel) and a resumed run redraws exactly what it would have drawn. The mixer is the
/// SplitMix64 finaliser applied twice over the combined key; integer results are identical on
/// every tier, normals (Box–Muller in float64) agree to the last bits of the math library.
/// </summary>
public static class CounterRng
{
    /// <summary>64 well-mixed bits for (seed, stream, index).</summary>
    public static ulong Bits(ulong seed, ulong stream, ulong index)
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + stream * 0xD1B54A32D192ED03UL + index * 0x8CB92BA72F3D8DD7UL + 0x632BE59BD9B4E019UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in (0, 1): 53 random bits, offset by half a step so log() never sees 0.</summary>
    public static double Uniform(ulong seed, ulong stream, ulong index) => ((Bits(seed, stream, index) >> 11) + 0.5) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n) (multiply-shift on the top 32 bits).</summary>
    public static int Below(int n, ulong seed, ulong stream, ulong index) => (int)((Bits(seed, stream, index) >> 32) * (ulong)n >> 32);

    /// <summary>Standard normal number <paramref name="index"/> of a stream (Box–Muller cosine branch over uniforms 2i and 2i+1).</summary>
    public static double Normal(ulong seed, ulong stream, ulong index)
    {
        double u1 = Uniform(seed, stream, 2 * index), u2 = Uniform(seed, stream, 2 * index + 1);
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
