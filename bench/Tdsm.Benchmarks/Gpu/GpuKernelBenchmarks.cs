using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Tdsm.Gpu;
using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Benchmarks.Gpu;

/// <summary>
/// The DiT's non-GEMM kernel families at the paper config's training shapes (R = 512 rows,
/// L = 35 text tokens, H = 768, 12 heads, MLP 3072, 261.2 M parameters), each against the
/// memory roofline: the baseline is a device-to-device copy moving the op's compulsory traffic
/// (every input read once, every output written once), so Ratio = how many times that minimum the
/// kernel takes. Needs CUDA (the GPU machine, in-process toolchain).
/// </summary>
[Config(typeof(InProcessGpuKernelConfig))]
public class GpuKernelBenchmarks
{
    private const int R = 512, L = 35, H = 768, Heads = 12, S = L + 1, Mlp = 4 * H, ParameterCount = 261_208_576;

    [Params("attention-fwd", "attention-bwd", "ln-modulate-fwd", "ln-modulate-bwd", "gelu-fwd", "gelu-bwd", "adamw")]
    public string Op { get; set; } = "";

    /// <summary>Floats each op must read plus write at the paper shapes.</summary>
    public static long TrafficFloats(string op) => op switch
    {
        "attention-fwd" => (long)R * S * 3 * H + (long)R * Heads * S * S + (long)R * S * H,
        "attention-bwd" => (long)R * S * H + (long)R * S * 3 * H + (long)R * Heads * S * S + (long)R * S * 3 * H,
        "ln-modulate-fwd" => 2L * R * L * H + R * 6L * H + 2L * R * L,
        "ln-modulate-bwd" => 3L * R * L * H + 2 * R * 6L * H + 2L * R * L,
        "gelu-fwd" => 2L * R * L * Mlp,
        "gelu-bwd" => 3L * R * L * Mlp,
        "adamw" => 7L * ParameterCount,
        _ => throw new ArgumentException($"unknown op {op}"),
    };

    private GpuDevice _device = null!;
    private GpuOps _ops = null!;
    private Tensor _copyFrom = null!, _copyTo = null!;
    private Tensor _a = null!, _b = null!, _c = null!, _d = null!, _e = null!, _f = null!, _g = null!;
    private int _step;

    [GlobalSetup]
    public void Setup()
    {
        if (!GpuDevice.CudaAvailable()) throw new InvalidOperationException("GPU benchmarks need a CUDA device");
        _device = GpuDevice.OpenCuda();
        _ops = new GpuOps(_device);
        var rng = new Rng(1);
        Tensor T(long n, double scale = 1)
        {
            var t = _ops.Allocate(checked((int)n));
            var h = new float[n];
            rng.FillNormal(h, scale);
            _ops.Upload(h, t);
            return t;
        }
        long half = TrafficFloats(Op) / 2;
        _copyFrom = _ops.Allocate(checked((int)half));
        _copyTo = _ops.Allocate(checked((int)half));
        switch (Op)
        {
            case "attention-fwd" or "attention-bwd":
                _a = T((long)R * 3 * H); _b = T((long)R * L * 3 * H); _c = T((long)R * Heads * S * S);
                _d = T((long)R * H); _e = T((long)R * L * H); _f = T((long)R * 3 * H); _g = T((long)R * L * 3 * H);
                _ops.JointAttention(_a, _b, _c, _d, _e, R, L, H, Heads); // valid probabilities for the backward
                break;
            case "ln-modulate-fwd" or "ln-modulate-bwd":
                _a = T((long)R * L * H); _b = T((long)R * 6 * H, 0.1); _c = T((long)R * L * H); _d = T((long)R * L); _e = T((long)R * L);
                _f = T((long)R * L * H); _g = T((long)R * 6 * H);
                _ops.LayerNormModulate(_a, _b, 6, 0, 1, _c, _d, _e, R, L, H);
                break;
            case "gelu-fwd" or "gelu-bwd":
                _a = T((long)R * L * Mlp); _b = T((long)R * L * Mlp); _c = T((long)R * L * Mlp);
                break;
            case "adamw":
                _a = T(ParameterCount, 0.02); _b = T(ParameterCount, 1e-3); _c = T(ParameterCount, 1e-3); _d = _ops.Allocate(ParameterCount);
                break;
        }
        _ops.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ops?.Dispose();
        _device?.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void CopyCompulsoryTraffic()
    {
        _ops.Copy(_copyFrom, _copyTo);
        _ops.Synchronize();
    }

    [Benchmark]
    public void Kernel()
    {
        switch (Op)
        {
            case "attention-fwd": _ops.JointAttention(_a, _b, _c, _d, _e, R, L, H, Heads); break;
            case "attention-bwd": _ops.JointAttentionBackward(_d, _e, _a, _b, _c, _f, _g, R, L, H, Heads); break;
            case "ln-modulate-fwd": _ops.LayerNormModulate(_a, _b, 6, 0, 1, _c, _d, _e, R, L, H); break;
            case "ln-modulate-bwd": _ops.LayerNormModulateBackward(_c, _a, _b, 6, 0, 1, _d, _e, _f, _g, R, L, H, false); break;
            case "gelu-fwd": _ops.GeluTanh(_a, _b); break;
            case "gelu-bwd": _ops.GeluTanhBackward(_a, _b, _c, false); break;
            case "adamw": _ops.AdamWStep(_a, _b, _c, _d, 1e-4, new AdamWConfig(), ++_step); break;
        }
        _ops.Synchronize();
    }

    /// <summary>GB/s of compulsory traffic = <see cref="TrafficFloats"/>·4 bytes / mean time.</summary>
    internal sealed class BandwidthColumn : IColumn
    {
        public string Id => "GBps";
        public string ColumnName => "GB/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 1;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "compulsory bytes (inputs read once, outputs written once) / mean time";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            if (benchmarkCase.Parameters["Op"] is not string op || report?.ResultStatistics is null) return "-";
            return (TrafficFloats(op) * 4.0 / (report.ResultStatistics.Mean * 1e-9) / 1e9).ToString("F0", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}

/// <summary>In-process job (no SDK on the GPU machine) with the bandwidth column.</summary>
public sealed class InProcessGpuKernelConfig : ManualConfig
{
    public InProcessGpuKernelConfig()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(3).WithIterationCount(10));
        AddColumn(new GpuKernelBenchmarks.BandwidthColumn());
    }
}
