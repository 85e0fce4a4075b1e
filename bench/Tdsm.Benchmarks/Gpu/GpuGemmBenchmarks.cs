using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Tdsm.Gpu;
using Tdsm.Kernels;
using Tdsm.Ops;
using Tdsm.Tensors;

namespace Tdsm.Benchmarks.Gpu;

/// <summary>In-process job: the GPU machine has the .NET runtime but no SDK to build child projects.</summary>
public sealed class InProcessGpuConfig : ManualConfig
{
    public InProcessGpuConfig()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithWarmupCount(3).WithIterationCount(10));
        AddColumn(new TflopsColumn());
    }
}

/// <summary>
/// Our SIMT GEMM against cuBLAS SGEMM (the baseline) at the DiT's shapes for the paper config
/// (R = 512 skeleton rows, R·35 = 17,920 text rows, H = 768). Shapes are "M x N x K layout".
/// Also our tensor-core GEMMs (fp32 operands rounded to bf16 / tf32 while staged) against cuBLAS
/// bf16 (cublasGemmEx on operands converted to bf16 once in the set-up, so cuBLAS reads half the
/// bytes) and cuBLAS SGEMM in TF32 tensor-op math mode. The fp32-operand tensor-core kernels run compiled for two
/// blocks per SM (the default, 128 registers); TdsmTensorCoreBf16OneBlockPerSm times the bf16 one bounded for one
/// (160 registers). Products with few C blocks and a long K run split along K, as in training.
/// The TdsmTensorCoreBf16Packed* methods run the bf16 kernels on operands packed into bf16 pairs once in the
/// set-up (C = A·Bᵀ; for AB and AtB the set-up packs the transposed operands), like cuBLAS bf16: half the
/// bytes of the fp32-operand kernel and no conversion while staging; the packing is not timed.
/// Packed: TensorCoreGemm.KernelPacked (32-bit staging, the fp32-operand kernel's shared layout);
/// PackedLdMatrix: KernelLdMatrix (128-bit staging, swizzled rows, ldmatrix fragments). A cp.async variant was
/// dropped after the first H100 visit measured it at 0.08x the fp32-operand path (bench/RESULTS.md).
/// Each method synchronises before returning. Needs CUDA; without it the set-up throws a clear
/// message.
/// </summary>
[Config(typeof(InProcessGpuConfig))]
public class GpuGemmBenchmarks
{
    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "";

    /// <summary>The DiT's shapes and 8192³; TDSM_GEMM_SHAPES ("M x N x K layout" items separated by ';') picks fewer, so a
    /// short GPU visit can time more kernels on the shapes that decide.</summary>
    public static IEnumerable<string> Shapes() =>
        Environment.GetEnvironmentVariable("TDSM_GEMM_SHAPES") is { Length: > 0 } chosen
            ? chosen.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : ["512x4608x768 ABt", "17920x2304x768 ABt", "17920x3072x768 ABt", "17920x768x3072 ABt", "17920x768x3072 AB", "2304x768x17920 AtB", "8192x8192x8192 ABt"];

    private GpuDevice _device = null!;
    private GpuOps _ops = null!;
    private CuBlas _blas = null!;
    private CuBlasBf16 _blas16 = null!;
    private MemoryBuffer1D<ushort, Stride1D.Dense> _a16 = null!, _b16 = null!;
    private MemoryBuffer1D<uint, Stride1D.Dense> _aPacked = null!, _bPacked = null!;
    private Tensor _a = null!, _b = null!, _c = null!;
    private int _m, _n, _k;
    private string _layout = "";

    [GlobalSetup]
    public void Setup()
    {
        if (!GpuDevice.CudaAvailable()) throw new InvalidOperationException("GPU benchmarks need a CUDA device");
        CuBlasLoader.Install();
        var parts = Shape.Split(' ');
        var dims = parts[0].Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k, _layout) = (dims[0], dims[1], dims[2], parts[1]);
        _device = GpuDevice.OpenCuda();
        _ops = new GpuOps(_device);
        _blas = new CuBlas((CudaAccelerator)_device.Accelerator);
        var rng = new Rng(1);
        Tensor R(int n, out float[] h) { var t = _ops.Allocate(n); h = new float[n]; rng.FillNormal(h); _ops.Upload(h, t); return t; }
        _a = R(_m * _k, out var ha); _b = R(_n * _k, out var hb); _c = R(_m * _n, out _);
        _blas16 = new CuBlasBf16();
        _a16 = _device.Accelerator.Allocate1D(ha.Select(x => (ushort)Bf16.Bits(x)).ToArray());
        _b16 = _device.Accelerator.Allocate1D(hb.Select(x => (ushort)Bf16.Bits(x)).ToArray());
        // Packed A (M, K/2) and B (N, K/2) of the product C = A·Bᵀ whatever the layout: AB's B is (K, N), AtB's A is (K, M).
        _aPacked = _device.Accelerator.Allocate1D<uint>((long)_m * _k / 2);
        _bPacked = _device.Accelerator.Allocate1D<uint>((long)_n * _k / 2);
        if (_layout == "AtB") _ops.PackBf16(_a, _aPacked.View, _k, _m, transpose: true);
        else _ops.PackBf16(_a, _aPacked.View, _m, _k, transpose: false);
        if (_layout == "ABt") _ops.PackBf16(_b, _bPacked.View, _n, _k, transpose: false);
        else _ops.PackBf16(_b, _bPacked.View, _k, _n, transpose: true);
        _ops.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _blas?.Dispose();
        _blas16?.Dispose();
        _a16?.Dispose();
        _b16?.Dispose();
        _aPacked?.Dispose();
        _bPacked?.Dispose();
        _ops?.Dispose();
        _device?.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void CuBlasSgemm() => Sgemm();

    [Benchmark]
    public void CuBlasTf32Sgemm()
    {
        _blas.MathMode = (CuBlasMathMode)3; // CUBLAS_TF32_TENSOR_OP_MATH (ILGPU names only 0 and 1)
        try { Sgemm(); }
        finally { _blas.MathMode = CuBlasMathMode.DefaultMath; }
    }

    private void Sgemm()
    {
        GemmProbe.Sgemm(_blas, _layout, _a, _b, _c, _m, _n, _k);
        _device.Accelerator.Synchronize();
    }

    [Benchmark]
    public void TdsmGemm()
    {
        _ops.GemmPrecision = GemmPrecision.Fp32;
        _ops.MatMul(_a, _b, _c, null, Layout(), _m, _n, _k, accumulate: false);
        _ops.Synchronize();
    }

    [Benchmark]
    public void CuBlasBf16Gemm()
    {
        GemmProbe.CuBlasBf16Gemm(_blas16, _layout, _a16, _b16, _c, _m, _n, _k);
        _device.Accelerator.Synchronize();
    }

    [Benchmark]
    public void TdsmTensorCoreBf16()
    {
        _ops.GemmPrecision = GemmPrecision.Bf16;
        _ops.MatMul(_a, _b, _c, null, Layout(), _m, _n, _k, accumulate: false);
        _ops.Synchronize();
    }

    /// <summary>The same kernel compiled for one block per SM (its unbounded 160 registers) instead of two (128).</summary>
    [Benchmark]
    public void TdsmTensorCoreBf16OneBlockPerSm()
    {
        _ops.GemmPrecision = GemmPrecision.Bf16;
        _ops.TensorCoreGroupsPerSM = 1;
        try { _ops.MatMul(_a, _b, _c, null, Layout(), _m, _n, _k, accumulate: false); }
        finally { _ops.TensorCoreGroupsPerSM = 2; }
        _ops.Synchronize();
    }

    [Benchmark]
    public void TdsmTensorCoreBf16Packed()
    {
        _ops.MatMulPacked(_aPacked.View, _bPacked.View, _c, null, _m, _n, _k, accumulate: false);
        _ops.Synchronize();
    }

    [Benchmark]
    public void TdsmTensorCoreBf16PackedLdMatrix()
    {
        _ops.MatMulPackedLdMatrix(_aPacked.View, _bPacked.View, _c, null, _m, _n, _k, accumulate: false);
        _ops.Synchronize();
    }

    [Benchmark]
    public void TdsmTensorCoreTf32()
    {
        _ops.GemmPrecision = GemmPrecision.Tf32;
        _ops.MatMul(_a, _b, _c, null, Layout(), _m, _n, _k, accumulate: false);
        _ops.Synchronize();
    }

    private GemmLayout Layout() => _layout switch { "ABt" => GemmLayout.ABt, "AB" => GemmLayout.AB, _ => GemmLayout.AtB };
}
