using System.Globalization;
using Tdsm.Gpu;
using Tdsm.Tensors;

namespace Tdsm.Benchmarks.Gpu;

/// <summary>
/// `attention-probe`: the joint attention's scalar kernels against the register-tiled ones (GpuOps.TiledAttention) at
/// the paper's heads (36 tokens, H 768, 12 heads) for the training batch (512 rows) and a scoring chunk (2,048 rows),
/// host-timed around back-to-back launches like gemm-probe. Prints ms per call, the compulsory traffic's GB/s (every
/// input read once, every output written once), the tiled/scalar speed-up, and the largest difference between the two
/// kernels' outputs relative to the largest output (both are float32 sums in the reference's order; the softmax
/// normaliser's reciprocal may differ by an ulp).
/// </summary>
public static class AttentionProbe
{
    public const string Usage = """
        usage: Tdsm.Benchmarks attention-probe [--rows R1,R2,...] [--reps N] [--rounds R] [--simulator]
          --rows     DiT rows per call (default 512,2048: the paper's training batch and scoring chunk)
          --reps     launches per timed round (default 20); --rounds: rounds, the median is printed (default 3)
          --simulator  run on the ILGPU CPU simulator (checks this code; its times mean nothing)
        """;

    private const int L = 35, H = 768, Heads = 12, S = L + 1;

    public static int Run(string[] args)
    {
        var rows = new List<int> { 512, 2048 };
        int reps = 20, rounds = 3;
        bool simulator = false;
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--rows": rows = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(r => GemmProbe.Count(r, "--rows")).ToList(); break;
                case "--reps": reps = GemmProbe.Count(Next(), "--reps"); break;
                case "--rounds": rounds = GemmProbe.Count(Next(), "--rounds"); break;
                case "--simulator": simulator = true; break;
                case "--help" or "-h": Console.WriteLine(Usage); return 0;
                default: throw new ArgumentException($"unknown option '{args[i]}'\n{Usage}");
            }
        }
        if (!simulator && !GpuDevice.CudaAvailable()) { Console.Error.WriteLine("attention-probe: no CUDA device (--simulator runs the code on the CPU simulator)"); return 2; }
        using var device = simulator ? GpuDevice.OpenSimulator() : GpuDevice.OpenCuda();
        using var ops = new GpuOps(device);
        Console.WriteLine($"attention-probe: {device.Accelerator.Name}; S {S}, H {H}, {Heads} heads; {reps} launches per round, median of {rounds} rounds");
        foreach (int r in rows) ProbeRows(ops, r, reps, rounds);
        return 0;
    }

    private static void ProbeRows(GpuOps ops, int b, int reps, int rounds)
    {
        var rng = new Rng(3);
        Tensor Random(long n) { var t = ops.Allocate(checked((int)n)); var h = new float[n]; rng.FillNormal(h); ops.Upload(h, t); return t; }
        Tensor Zeros(long n) => ops.Allocate(checked((int)n));
        var qx = Random((long)b * 3 * H); var qu = Random((long)b * L * 3 * H);
        var probs = Zeros((long)b * Heads * S * S); var ox = Zeros((long)b * H); var ou = Zeros((long)b * L * H);
        var dox = Random((long)b * H); var dou = Random((long)b * L * H);
        var dqx = Zeros((long)b * 3 * H); var dqu = Zeros((long)b * L * 3 * H);
        // Compulsory traffic (floats): forward reads qkv, writes probs and out; backward reads dO, qkv, probs, writes dqkv.
        long fwdFloats = (long)b * S * 3 * H + (long)b * Heads * S * S + (long)b * S * H;
        long bwdFloats = (long)b * S * H + (long)b * S * 3 * H + (long)b * Heads * S * S + (long)b * S * 3 * H;
        var outputs = new Dictionary<bool, (float[] Fwd, float[] Bwd)>();
        var times = new Dictionary<(bool, string), double>();
        foreach (bool tiled in new[] { false, true })
        {
            ops.TiledAttention = tiled;
            string name = tiled ? "tiled" : "scalar";
            if (tiled && !ops.UsesTiledAttention(L, H, Heads)) { Console.WriteLine($"  rows {b,5} {name,-7} not taken by the tiled kernels"); continue; }
            void Fwd() => ops.JointAttention(qx, qu, probs, ox, ou, b, L, H, Heads);
            void Bwd() => ops.JointAttentionBackward(dox, dou, qx, qu, probs, dqx, dqu, b, L, H, Heads);
            foreach (var (pass, launch, floats) in new (string, Action, long)[] { ("forward", Fwd, fwdFloats), ("backward", Bwd, bwdFloats) })
            {
                Fwd(); launch(); ops.Synchronize();   // compiles; the backward reads this kernel's probs
                double median = GemmProbe.MedianMs(ops, launch, reps, rounds);
                times[(tiled, pass)] = median;
                string speedup = tiled && times.TryGetValue((false, pass), out var scalarMs) ? $"  {scalarMs / median,5:F2}x the scalar kernel" : "";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  rows {b,5} {pass,-8} {name,-7} {median,8:F4} ms  {floats * 4.0 / median / 1e6,7:F1} GB/s{speedup}"));
            }
            Fwd(); Bwd();
            var fwd = new float[ou.Length + ox.Length + probs.Length];
            ops.Download(ox, fwd.AsSpan(0, ox.Length)); ops.Download(ou, fwd.AsSpan(ox.Length, ou.Length)); ops.Download(probs, fwd.AsSpan(ox.Length + ou.Length));
            var bwd = new float[dqx.Length + dqu.Length];
            ops.Download(dqx, bwd.AsSpan(0, dqx.Length)); ops.Download(dqu, bwd.AsSpan(dqx.Length));
            outputs[tiled] = (fwd, bwd);
        }
        ops.TiledAttention = true;
        Console.WriteLine($"  rows {b,5} {ops.TiledAttentionLaunches} launches on the tiled kernels so far");
        if (outputs.TryGetValue(false, out var s) && outputs.TryGetValue(true, out var t))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  rows {b,5} tiled vs scalar: out+probs max |diff| / max |value| = {RelMax(t.Fwd, s.Fwd):E2}, dqkv {RelMax(t.Bwd, s.Bwd):E2}"));
    }

    private static double RelMax(float[] a, float[] b)
    {
        double diff = 0, scale = 0;
        for (int i = 0; i < a.Length; i++) { diff = Math.Max(diff, Math.Abs((double)a[i] - b[i])); scale = Math.Max(scale, Math.Abs((double)b[i])); }
        return diff / Math.Max(scale, 1e-300);
    }
}
