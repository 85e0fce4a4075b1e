namespace Tdsm.Tensors;

/// <summary>
/// xoshiro256** seeded through SplitMix64: our own generator so that the synthetic dataset is
/// byte-identical for a seed on every .NET version (System.Random's algorithm is not a contract).
/// </summary>
public struct Xoshiro256
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the four state words from SplitMix64(seed).</summary>
    public Xoshiro256(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x); _s1 = SplitMix64(ref x); _s2 = SplitMix64(ref x); _s3 = SplitMix64(ref x);
    }

    /// <summary>Starts from a raw state (for checking against the reference test vectors).</summary>
    internal Xoshiro256(ulong s0, ulong s1, ulong s2, ulong s3) { _s0 = s0; _s1 = s1; _s2 = s2; _s3 = s3; }

    /// <summary>The four state words (for checkpoints).</summary>
    internal readonly (ulong S0, ulong S1, ulong S2, ulong S3) State => (_s0, _s1, _s2, _s3);

    /// <summary>An independent stream for item <paramref name="index"/> of a run seeded with <paramref name="seed"/>
    /// (lets parallel workers draw per-item numbers without sharing state).</summary>
    public static Xoshiro256 ForItem(ulong seed, ulong stream, ulong index)
    {
        ulong x = seed ^ 0x9E3779B97F4A7C15UL * (stream + 1);
        ulong a = SplitMix64(ref x);
        x = a ^ (index * 0xD1B54A32D192ED03UL + 0x8CB92BA72F3D8DD7UL);
        return new Xoshiro256(SplitMix64(ref x));
    }

    /// <summary>One SplitMix64 step.</summary>
    public static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        return (int)((NextUInt64() >> 33) * (ulong)n >> 31);
    }

    /// <summary>Standard normal (Box-Muller; one value per call for simplicity of replay).</summary>
    public double Normal()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
