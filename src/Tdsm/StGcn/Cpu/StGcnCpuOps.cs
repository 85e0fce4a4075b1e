using System.Numerics;
using System.Runtime.InteropServices;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

/// <summary>
/// The managed CPU tier: multi-threaded, SIMD (System.Numerics.Vector), convolutions as GEMMs
/// through <see cref="Tdsm.Cpu.Gemm"/>. One op family per file (Cpu/CpuXxx.cs). Holds reusable
/// scratch buffers, so one instance must not run two models concurrently.
/// </summary>
public sealed partial class StGcnCpuOps : StGcnHostOps
{
    // Below this many elements an elementwise op runs on one thread.
    private const int ParallelChunk = 1 << 15;

    private readonly float[][] _scratch = new float[4][];

    /// <inheritdoc/>
    public override string Name => "cpu";

    private float[] Scratch(int slot, long size)
    {
        var s = _scratch[slot];
        if (s is null || s.Length < size) _scratch[slot] = s = new float[checked((int)size)];
        return s;
    }

    private static void Need(Seg s, long n, string name)
    {
        if (s.Count < n) throw new ArgumentException($"{name} holds {s.Count} elements, expected at least {n}");
    }

    // Runs body(start, end) over [0, n) in chunks, in parallel when n is large.
    private static void ForChunks(int n, Action<int, int> body)
    {
        if (n <= ParallelChunk) { body(0, n); return; }
        int chunks = (n + ParallelChunk - 1) / ParallelChunk;
        Parallel.For(0, chunks, i => body(i * ParallelChunk, Math.Min(n, (i + 1) * ParallelChunk)));
    }

    private static float SumF(ReadOnlySpan<float> x)
    {
        int w = Vector<float>.Count, i = 0;
        var acc = Vector<float>.Zero;
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - w; i += w) acc += Vector.LoadUnsafe(ref r, (nuint)i);
        float s = Vector.Sum(acc);
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    // Sum accumulated in float64 lanes (bias gradients and BN statistics, whose exact values may cancel to 0).
    private static double SumD(ReadOnlySpan<float> x)
    {
        int w = Vector<float>.Count, i = 0;
        Vector<double> a0 = Vector<double>.Zero, a1 = Vector<double>.Zero;
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - w; i += w)
        {
            Vector.Widen(Vector.LoadUnsafe(ref r, (nuint)i), out var lo, out var hi);
            a0 += lo; a1 += hi;
        }
        double s = Vector.Sum(a0 + a1);
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    /// <inheritdoc/>
    protected override void SgdNesterovStep(Seg p, Seg g, Seg buf, double lr, double momentum, double weightDecay) =>
        SgdNesterov.ParallelUpdate(p, g, buf, lr, momentum, weightDecay);
}
