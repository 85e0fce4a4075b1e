using BenchmarkDotNet.Attributes;
using Tdsm.Cpu;
using Tdsm.Tensors;

namespace Tdsm.Benchmarks;

/// <summary>
/// The CPU tier's joint attention (36 tokens) on the DiT's shapes, "BxHxheads": the default run's Tiny DiT (H 64, 4 heads
/// of 16) at its training step (128 rows) and a 2,048-row scoring chunk, the Small config's training step
/// (128 rows, H 128, 4 heads of 32) and a 640-row scoring chunk, and the paper config's training step (512 rows,
/// H 768, 12 heads of 64): the forward keeping the probabilities (training; zero-shot scoring runs the same kernel
/// without them) and the backward.
/// </summary>
[Config(typeof(ShortConfig))]
public class CpuAttentionBenchmarks
{
    [Params("128x64x4", "2048x64x4", "128x128x4", "640x128x4", "512x768x12")]
    public string Shape { get; set; } = "128x128x4";

    private const int L = 35;
    private readonly CpuOps _ops = new();
    private Tensor _qx = null!, _qu = null!, _probs = null!, _ox = null!, _ou = null!, _dox = null!, _dou = null!, _dqx = null!, _dqu = null!;
    private int _b, _h, _heads;

    [GlobalSetup]
    public void Setup()
    {
        var s = Shape.Split('x').Select(int.Parse).ToArray();
        (_b, _h, _heads) = (s[0], s[1], s[2]);
        Tensor Random(int seed, params int[] shape)
        {
            var t = _ops.Allocate(shape);
            var host = new float[t.Length];
            new Rng((ulong)seed).FillNormal(host);
            _ops.Upload(host, t);
            return t;
        }
        _qx = Random(1, _b, 3 * _h); _qu = Random(2, _b, L, 3 * _h);
        _probs = _ops.Allocate(_b, _heads, L + 1, L + 1);
        _ox = _ops.Allocate(_b, _h); _ou = _ops.Allocate(_b, L, _h);
        _dox = Random(3, _b, _h); _dou = Random(4, _b, L, _h);
        _dqx = _ops.Allocate(_b, 3 * _h); _dqu = _ops.Allocate(_b, L, 3 * _h);
        Forward();
    }

    [Benchmark]
    public void Forward() => _ops.JointAttention(_qx, _qu, _probs, _ox, _ou, _b, L, _h, _heads);

    [Benchmark]
    public void Backward() => _ops.JointAttentionBackward(_dox, _dou, _qx, _qu, _probs, _dqx, _dqu, _b, L, _h, _heads);
}
