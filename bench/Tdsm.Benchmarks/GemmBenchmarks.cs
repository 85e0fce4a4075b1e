using BenchmarkDotNet.Attributes;
using Tdsm.Cpu;
using Tdsm.Tensors;

namespace Tdsm.Benchmarks;

/// <summary>
/// C (M,N) = A (M,K)·Bᵀ, the Linear layout, at the DiT's shapes: managed (packing B on every call,
/// as training does), managed on a B packed once (the inference path), and OpenBLAS sgemm, in
/// the same run. Shapes "MxKxN": paper config (H 768) skeleton rows 512 x 768 -> 768 / 3072 and
/// the text stream 512·35 = 17920 rows x 768 -> 2304 (qkv_c); Small config (H 128) text stream
/// 17920 x 128 -> 384 and 17920 x 512 -> 128 (mlp_c.fc2).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
public class GemmBenchmarks
{
    [Params("512x768x768", "512x768x3072", "17920x768x2304", "17920x128x384", "17920x512x128")]
    public string Shape { get; set; } = "512x768x768";

    private float[] _a = [], _b = [], _c = [];
    private PackedMatrix _packed = null!;
    private int _m, _n, _k;

    [GlobalSetup]
    public void Setup()
    {
        var s = Shape.Split('x').Select(int.Parse).ToArray();
        (_m, _k, _n) = (s[0], s[1], s[2]);
        _a = new float[_m * _k]; _b = new float[_n * _k]; _c = new float[_m * _n];
        new Rng(1).FillNormal(_a);
        new Rng(2).FillNormal(_b);
        _packed = PackedMatrix.Pack(_b, 0, _n, _k);
        Console.WriteLine($"// OpenBLAS: {OpenBlas.ConfigString()}, threads {OpenBlas.NumThreads()}; OPENBLAS_CORETYPE={Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)"}");
    }

    [Benchmark(Baseline = true)]
    public void OpenBlasSgemm() => OpenBlas.MatMulABt(_a, _b, _c, _m, _n, _k);

    [Benchmark]
    public void Managed() => Gemm.MatMulABt(_a, 0, _b, 0, _c, 0, _m, _n, _k, accumulate: false);

    [Benchmark]
    public void ManagedPrepacked() => Gemm.MatMulPacked(_a, 0, _packed, _c, 0, _m, accumulate: false);
}
