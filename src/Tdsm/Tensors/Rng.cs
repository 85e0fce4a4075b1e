namespace Tdsm.Tensors;

/// <summary>
/// A small seeded generator (the <see cref="Xoshiro256"/> core, seeded through SplitMix64) whose
/// sequence is fixed by this code, not by the runtime, so the same seed gives the same numbers on every machine and
/// .NET version. Normals come from Box–Muller.
/// </summary>
public sealed class Rng
{
    private Xoshiro256 _core;
    private double? _spare;

    /// <summary>Creates a generator from a 64-bit seed.</summary>
    public Rng(ulong seed) => _core = new Xoshiro256(seed);

    /// <summary>The full internal state, for checkpoints.</summary>
    public ulong[] State
    {
        get
        {
            var (s0, s1, s2, s3) = _core.State;
            return [s0, s1, s2, s3, _spare.HasValue ? 1UL : 0UL, BitConverter.DoubleToUInt64Bits(_spare ?? 0)];
        }
        set
        {
            if (value.Length != 6) throw new ArgumentException("RNG state must have 6 words");
            _core = new Xoshiro256(value[0], value[1], value[2], value[3]);
            _spare = value[4] != 0 ? BitConverter.UInt64BitsToDouble(value[5]) : null;
        }
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64() => _core.NextUInt64();

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n) (rejection-free multiply-shift; bias below 2^-32 for n &lt; 2^32).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        return (int)((NextUInt64() >> 32) * (ulong)n >> 32);
    }

    /// <summary>Standard normal.</summary>
    public double NextNormal()
    {
        if (_spare is double s) { _spare = null; return s; }
        double u1, u2;
        do { u1 = NextDouble(); } while (u1 <= double.Epsilon);
        u2 = NextDouble();
        double r = Math.Sqrt(-2 * Math.Log(u1));
        _spare = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fills with N(0, std²).</summary>
    public void FillNormal(Span<float> dst, double std = 1)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)(NextNormal() * std);
    }

    /// <summary>Fills with U(-bound, bound).</summary>
    public void FillUniform(Span<float> dst, double bound)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)((NextDouble() * 2 - 1) * bound);
    }
}
