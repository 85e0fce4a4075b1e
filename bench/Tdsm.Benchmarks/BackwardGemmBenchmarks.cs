using BenchmarkDotNet.Attributes;
using Tdsm.Cpu;
using Tdsm.Tensors;

namespace Tdsm.Benchmarks;

/// <summary>
/// The two products of a Linear backward on the CPU tier against OpenBLAS sgemm, same run:
/// dX (rows, in) = dY (rows, out) · W (out, in) (<see cref="Gemm.MatMulAB"/>, B packed from its (K, N) layout on every
/// call) and dW (out, in) = dYᵀ · X (<see cref="Gemm.MatMulAtB"/>, dY read in place, X packed on every call).
/// Shapes "rows x in x out" of a training step: Small config (H 128, batch 64 = 128 rows x 35 text tokens = 4480
/// rows) qkv_c 128 -> 384, fc1_c 128 -> 512, fc2_c 512 -> 128; paper skeleton stream 512 rows, fc1 768 -> 3072.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
public class BackwardGemmBenchmarks
{
    [Params("4480x128x384", "4480x128x512", "4480x512x128", "512x768x3072")]
    public string Shape { get; set; } = "4480x128x384";

    [Params("dX", "dW")]
    public string Product { get; set; } = "dX";

    private float[] _dy = [], _w = [], _x = [], _out = [];
    private int _rows, _in, _outF;

    [GlobalSetup]
    public void Setup()
    {
        var s = Shape.Split('x').Select(int.Parse).ToArray();
        (_rows, _in, _outF) = (s[0], s[1], s[2]);
        _dy = new float[_rows * _outF]; _w = new float[_outF * _in]; _x = new float[_rows * _in];
        new Rng(1).FillNormal(_dy);
        new Rng(2).FillNormal(_w);
        new Rng(3).FillNormal(_x);
        _out = new float[Product == "dX" ? _rows * _in : _outF * _in];
    }

    [Benchmark(Baseline = true)]
    public void OpenBlasSgemm()
    {
        if (Product == "dX") OpenBlas.MatMulAB(_dy, _w, _out, _rows, _in, _outF);
        else OpenBlas.MatMulAtB(_dy, _x, _out, _outF, _in, _rows);
    }

    [Benchmark]
    public void Managed()
    {
        if (Product == "dX") Gemm.MatMulAB(_dy, 0, _w, 0, _out, 0, _rows, _in, _outF, accumulate: false);
        else Gemm.MatMulAtB(_dy, 0, _x, 0, _out, 0, _outF, _in, _rows, accumulate: false);
    }

    /// <summary>
    /// dW as the CPU tier computed it before 2026-11-27: dYᵀ copied into a pooled buffer, then the A·B product (the
    /// same sums in the same order, so the same bits). dX: the same call as <see cref="Managed"/>.
    /// </summary>
    [Benchmark]
    public void ManagedTransposedCopy()
    {
        if (Product == "dX") { Gemm.MatMulAB(_dy, 0, _w, 0, _out, 0, _rows, _in, _outF, accumulate: false); return; }
        var at = System.Buffers.ArrayPool<float>.Shared.Rent(_outF * _rows);
        Parallel.For(0, (_outF + 63) / 64, blk =>
        {
            int i0 = blk * 64, i1 = Math.Min(_outF, i0 + 64);
            for (int p = 0; p < _rows; p++)
                for (int i = i0; i < i1; i++) at[i * _rows + p] = _dy[p * _outF + i];
        });
        Gemm.MatMulAB(at, 0, _x, 0, _out, 0, _outF, _in, _rows, accumulate: false);
        System.Buffers.ArrayPool<float>.Shared.Return(at);
    }
}
