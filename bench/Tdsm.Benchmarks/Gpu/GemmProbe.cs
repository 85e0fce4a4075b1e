using System.Diagnostics;
using System.Globalization;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Tdsm.Gpu;
using Tdsm.Kernels;
using Tdsm.Ops;
using Tdsm.Tensors;

namespace Tdsm.Benchmarks.Gpu;

/// <summary>
/// `gemm-probe`: every GEMM kernel at a few shapes, timed with the host clock around back-to-back launches, in seconds
/// rather than BenchmarkDotNet's ~4 s per case, and small enough to run under Nsight Compute
/// (`ncu --kernel-name regex:KernelLdMatrix ... gemm-probe --reps 1`). The same operands and set-up as
/// <see cref="GpuGemmBenchmarks"/> (packed operands packed once, untimed); cuBLAS SGEMM and bf16 are the same-run
/// baselines. Prints one line per (shape, method): ms per product, TFLOP/s, and the ratio to cuBLAS bf16 (tensor-core
/// methods) or SGEMM (fp32).
/// </summary>
public static class GemmProbe
{
    private const string DefaultShapes = "17920x3072x768 ABt;2304x768x17920 AtB;8192x8192x8192 ABt";

    public const string Usage = $$"""
        usage: Tdsm.Benchmarks gemm-probe [--shapes "MxNxK layout; ..."] [--methods m1,m2,...] [--reps N] [--rounds R]
          --shapes   default "{{DefaultShapes}}"
          --methods  any of sgemm, cublas-bf16, fp32, fp32-scalar, fp32-vector, bf16, bf16-1sm, packed, ldmatrix, ldmatrix-general, ldmatrix-unlifted, ldmatrix-wide, ldmatrix-async, ldmatrix-wide-async, wgmma, wgmma-deep, tf32
                     (default: all but tf32); wgmma and wgmma-deep (Hopper's warpgroup MMA; -deep: 4 stages in 64 KB of
                     dynamic shared memory) need a compute capability 9.0 GPU; ldmatrix-general is ldmatrix with the per-element epilogue (no pair stores);
                     fp32 is the fp32 SIMT GEMM as the GPU tier runs it (scalar staging unless TDSM_SIMT_VECTOR_STAGING=1);
                     fp32-scalar and fp32-vector force its staging (GpuOps.SimtVectorStaging off / on: ABt in 16-byte chunks)
          --reps     launches per timed round (default 20); --rounds: rounds, the median is printed (default 3)
          --simulator  run on the ILGPU CPU simulator (checks this code and the C comparison; its times mean nothing)
        Needs CUDA. cuBLAS from TDSM_CUBLAS (a libcublas.so.*), else the loader's default names; without it the cuBLAS
        methods print 'unavailable' and the others still run.
        """;

    private static readonly string[] AllMethods = ["sgemm", "cublas-bf16", "fp32", "fp32-scalar", "fp32-vector", "bf16", "bf16-1sm", "packed", "ldmatrix", "ldmatrix-general", "ldmatrix-unlifted", "ldmatrix-wide", "ldmatrix-async", "ldmatrix-wide-async", "wgmma", "wgmma-deep", "tf32"];

    // ldmatrix-unlifted: KernelLdMatrix loaded from ILGPU's PTX as it is (TDSM_PTX_LIFT=0), on a GpuOps of its own so
    // that the lifted kernel of the main one stays loaded.
    private static GpuOps? _unlifted;

    public static int Run(string[] args)
    {
        string shapes = DefaultShapes;
        var methods = AllMethods.Where(m => m != "tf32").ToList();
        int reps = 20, rounds = 3;
        bool simulator = false;
        for (int i = 1; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--shapes": shapes = Next(); break;
                case "--methods":
                    methods = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
                    foreach (var m in methods)
                        if (!AllMethods.Contains(m)) throw new ArgumentException($"unknown method '{m}' (expected {string.Join(", ", AllMethods)})");
                    break;
                case "--reps": reps = Count(Next(), "--reps"); break;
                case "--rounds": rounds = Count(Next(), "--rounds"); break;
                case "--simulator": simulator = true; break; // the ILGPU CPU simulator: a check of this code, not a timing
                case "--help" or "-h": Console.WriteLine(Usage); return 0;
                default: throw new ArgumentException($"unknown option '{args[i]}'\n{Usage}");
            }
        }

        if (!simulator && !GpuDevice.CudaAvailable()) { Console.Error.WriteLine("gemm-probe: no CUDA device (--simulator runs the code on the CPU simulator)"); return 2; }
        CuBlasLoader.Install();
        using var device = simulator ? GpuDevice.OpenSimulator() : GpuDevice.OpenCuda();
        using var ops = new GpuOps(device);
        var acc = device.Accelerator;
        CuBlas? blas = null; CuBlasBf16? blas16 = null;
        if (acc is CudaAccelerator cuda)
        {
            try { blas = new CuBlas(cuda); } catch (Exception e) { Console.WriteLine($"gemm-probe: cuBLAS SGEMM unavailable ({e.GetType().Name}: {e.Message})"); }
            try { blas16 = new CuBlasBf16(); } catch (Exception e) { Console.WriteLine($"gemm-probe: cuBLAS bf16 unavailable ({e.GetType().Name}: {e.Message})"); }
        }
        Console.WriteLine($"gemm-probe: {acc.Name}; {reps} launches per round, median of {rounds} rounds");
        if (acc is CudaAccelerator) PrintResources(acc, methods);
        Console.WriteLine($"gemm-probe: PTX operand slots lifted (LiftedKernels) {(LiftedKernels.Enabled ? "on" : "off (TDSM_PTX_LIFT=0)")}");
        try
        {
            foreach (var shape in shapes.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                ProbeShape(shape, methods, reps, rounds, device, ops, blas, blas16);
        }
        finally { blas?.Dispose(); blas16?.Dispose(); _unlifted?.Dispose(); _unlifted = null; }
        return 0;
    }

    // What the driver's JIT made of each tensor-core kernel the methods run, as GpuOps loads it: local memory there (ILGPU
    // passes every inline-asm operand through a .local slot the compiler must lift) would bound a kernel whatever its
    // instruction count.
    private static void PrintResources(Accelerator acc, List<string> methods)
    {
        // Lifted: loaded as GpuOps loads it (LiftedKernels, unless TDSM_PTX_LIFT=0); ldmatrix-unlifted from ILGPU's text as it is.
        var kernels = new (string Method, string Kernel, KernelSpecialization Spec, int Threads, bool Lifted)[]
        {
            ("fp32", nameof(Gemm.Kernel), Gemm.Specialization, Gemm.Threads, true),
            ("bf16", nameof(TensorCoreGemm.Kernel), TensorCoreGemm.Specialization(2), TensorCoreGemm.Threads, true),
            ("bf16-1sm", nameof(TensorCoreGemm.Kernel), TensorCoreGemm.Specialization(1), TensorCoreGemm.Threads, true),
            ("tf32", nameof(TensorCoreGemm.KernelTf32), TensorCoreGemm.Specialization(2), TensorCoreGemm.Threads, true),
            ("packed", nameof(TensorCoreGemm.KernelPacked), TensorCoreGemm.Specialization(), TensorCoreGemm.Threads, true),
            ("ldmatrix", nameof(TensorCoreGemm.KernelLdMatrix), TensorCoreGemm.Specialization(), TensorCoreGemm.Threads, true),
            ("ldmatrix-wide", nameof(TensorCoreGemm.KernelLdMatrixWide), TensorCoreGemm.WideSpecialization, TensorCoreGemm.WideThreads, true),
            ("ldmatrix-async", nameof(TensorCoreGemm.KernelLdMatrixAsync), TensorCoreGemm.Specialization(), TensorCoreGemm.Threads, true),
            ("ldmatrix-wide-async", nameof(TensorCoreGemm.KernelLdMatrixWideAsync), TensorCoreGemm.WideSpecialization, TensorCoreGemm.WideThreads, true),
            ("ldmatrix-unlifted", nameof(TensorCoreGemm.KernelLdMatrix), TensorCoreGemm.Specialization(), TensorCoreGemm.Threads, false),
            ("wgmma", nameof(TensorCoreGemm.KernelWgmma), TensorCoreGemm.Specialization(), TensorCoreGemm.Threads, true),
            ("wgmma-deep", nameof(TensorCoreGemm.KernelWgmmaDeep), TensorCoreGemm.Specialization(), TensorCoreGemm.Threads, true),
        };
        bool enabled = LiftedKernels.Enabled;
        foreach (var (method, kernel, spec, threads, lifted) in kernels.Where(k => methods.Contains(k.Method)))
        {
            var type = method == "fp32" ? typeof(Gemm) : typeof(TensorCoreGemm);
            LiftedKernels.Enabled = enabled && lifted;
            int dynamicShared = kernel == nameof(TensorCoreGemm.KernelWgmmaDeep) ? TensorCoreGemm.DeepSharedBytes : 0;
            try { Console.WriteLine($"  {method,-19} {type.Name}.{kernel}: {KernelResources.Of(acc, type.GetMethod(kernel)!, spec, threads, dynamicShared)}"); }
            catch (Exception e) when (e is not OutOfMemoryException) { Console.WriteLine($"  {method,-19} {type.Name}.{kernel}: resources unavailable ({e.GetType().Name}: {e.Message})"); }
            finally { LiftedKernels.Enabled = enabled; }
        }
    }

    /// <summary>Milliseconds per launch: the median over <paramref name="rounds"/> rounds of <paramref name="reps"/> back-to-back
    /// launches, each round timed on the host from the first launch to the synchronisation after the last.</summary>
    internal static double MedianMs(GpuOps ops, Action launch, int reps, int rounds)
    {
        var ms = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < reps; i++) launch();
            ops.Synchronize();
            ms.Add(sw.Elapsed.TotalMilliseconds / reps);
        }
        ms.Sort();
        return ms[ms.Count / 2];
    }

    internal static int Count(string text, string option) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new ArgumentException($"{option}: expected a positive count, got '{text}'");

    private static void ProbeShape(string shape, List<string> methods, int reps, int rounds, GpuDevice device, GpuOps ops, CuBlas? blas, CuBlasBf16? blas16)
    {
        var parts = shape.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var dims = parts.Length == 0 ? [] : parts[0].Split('x').Select(d => int.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : -1).ToArray();
        if (dims.Length != 3 || dims.Contains(-1) || parts.Length != 2 || parts[1] is not ("ABt" or "AB" or "AtB"))
            throw new ArgumentException($"shape '{shape}': expected \"MxNxK layout\" with positive sizes and layout ABt, AB or AtB, e.g. 17920x3072x768 ABt");
        int m = dims[0], n = dims[1], k = dims[2];
        string layoutName = parts[1];
        var layout = layoutName switch { "ABt" => GemmLayout.ABt, "AB" => GemmLayout.AB, _ => GemmLayout.AtB };
        var acc = device.Accelerator;
        var rng = new Rng(1);
        Tensor Random(long count, out float[] host) { var t = ops.Allocate(checked((int)count)); host = new float[count]; rng.FillNormal(host); ops.Upload(host, t); return t; }
        var a = Random((long)m * k, out var ha);
        var b = Random((long)n * k, out var hb);
        var c = ops.Allocate(checked(m * n));
        using var a16 = acc.Allocate1D(ha.Select(x => (ushort)Bf16.Bits(x)).ToArray());
        using var b16 = acc.Allocate1D(hb.Select(x => (ushort)Bf16.Bits(x)).ToArray());
        using var aPacked = acc.Allocate1D<uint>((long)m * k / 2);
        using var bPacked = acc.Allocate1D<uint>((long)n * k / 2);
        if (layout == GemmLayout.AtB) ops.PackBf16(a, aPacked.View, k, m, transpose: true); else ops.PackBf16(a, aPacked.View, m, k, transpose: false);
        if (layout == GemmLayout.ABt) ops.PackBf16(b, bPacked.View, n, k, transpose: false); else ops.PackBf16(b, bPacked.View, k, n, transpose: true);
        ops.Synchronize();
        double flop = 2.0 * m * n * k;
        var results = new Dictionary<string, double>();
        float[]? first = null; string firstMethod = "";
        var hostC = new float[(long)m * n];
        // C is set to NaN before each method, so that a kernel that writes nothing (or part of C) cannot pass the C check on
        // the previous method's result.
        var nanC = new float[hostC.Length];
        Array.Fill(nanC, float.NaN);
        // The fp32 SIMT kernel with its staging forced, the device default restored after.
        void Fp32Staged(bool vector)
        {
            ops.GemmPrecision = GemmPrecision.Fp32;
            bool defaultStaging = ops.SimtVectorStaging;
            ops.SimtVectorStaging = vector;
            try { ops.MatMul(a, b, c, null, layout, m, n, k, accumulate: false); }
            finally { ops.SimtVectorStaging = defaultStaging; }
        }
        foreach (var method in methods)
        {
            Action? launch = method switch
            {
                "sgemm" when blas is not null => () => Sgemm(blas, layoutName, a, b, c, m, n, k),
                "cublas-bf16" when blas16 is not null => () => CuBlasBf16Gemm(blas16, layoutName, a16, b16, c, m, n, k),
                "fp32" => () => { ops.GemmPrecision = GemmPrecision.Fp32; ops.MatMul(a, b, c, null, layout, m, n, k, accumulate: false); },
                "fp32-scalar" => () => Fp32Staged(vector: false),
                "fp32-vector" => () => Fp32Staged(vector: true),
                "bf16" => () => { ops.GemmPrecision = GemmPrecision.Bf16; ops.TensorCoreGroupsPerSM = 2; ops.MatMul(a, b, c, null, layout, m, n, k, accumulate: false); },
                "bf16-1sm" => () => { ops.GemmPrecision = GemmPrecision.Bf16; ops.TensorCoreGroupsPerSM = 1; ops.MatMul(a, b, c, null, layout, m, n, k, accumulate: false); },
                "tf32" => () => { ops.GemmPrecision = GemmPrecision.Tf32; ops.TensorCoreGroupsPerSM = 2; ops.MatMul(a, b, c, null, layout, m, n, k, accumulate: false); },
                "packed" => () => ops.MatMulPacked(aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false),
                "ldmatrix" => () => ops.MatMulPackedLdMatrix(aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false),
                "ldmatrix-general" => () =>
                {
                    ops.EpiloguePairStores = false;
                    try { ops.MatMulPackedLdMatrix(aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false); }
                    finally { ops.EpiloguePairStores = true; }
                },
                "ldmatrix-wide" => () => ops.MatMulPacked(PackedGemmKernel.LdMatrixWide, aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false),
                "ldmatrix-async" => () => ops.MatMulPacked(PackedGemmKernel.LdMatrixAsync, aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false),
                "ldmatrix-wide-async" => () => ops.MatMulPacked(PackedGemmKernel.LdMatrixWideAsync, aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false),
                "wgmma" => () => ops.MatMulPacked(PackedGemmKernel.Wgmma, aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false),
                "wgmma-deep" => () => ops.MatMulPacked(PackedGemmKernel.WgmmaDeep, aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false),
                "ldmatrix-unlifted" => () =>
                {
                    var unlifted = _unlifted ??= new GpuOps(device);
                    bool was = LiftedKernels.Enabled;
                    LiftedKernels.Enabled = false; // read when the kernel loads, at the first launch
                    try { unlifted.MatMulPackedLdMatrix(aPacked.View, bPacked.View, c, null, m, n, k, accumulate: false); }
                    finally { LiftedKernels.Enabled = was; }
                },
                _ => null,
            };
            if (launch is null) { Console.WriteLine($"  {shape,-22} {method,-19} unavailable"); continue; }
            try
            {
                ops.Upload(nanC, c);
                launch(); ops.Synchronize(); // compiles the kernel
                double median = MedianMs(ops, launch, reps, rounds);
                results[method] = median;
                bool tensor = method is not ("sgemm" or "fp32" or "fp32-scalar" or "fp32-vector");
                string baseline = tensor ? "cublas-bf16" : "sgemm";
                string ratio = results.TryGetValue(baseline, out var bms) && method != baseline ? $"  {bms / median * 100,5:F1} % of {baseline}" : "";
                // Each method's C against the first method's (relative Frobenius norm), so a broken kernel shows.
                ops.Download(c, hostC);
                string check;
                long unwritten = 0;
                for (long i = 0; i < hostC.Length; i++) if (float.IsNaN(hostC[i])) unwritten++;
                if (unwritten > 0) check = $"  C not written: {unwritten} of {hostC.Length} elements NaN";
                else if (first is null) { first = (float[])hostC.Clone(); firstMethod = method; check = "  (reference C)"; }
                else
                {
                    double num = 0, den = 0;
                    for (long i = 0; i < hostC.Length; i++) { double d = hostC[i] - first[i]; num += d * d; den += (double)first[i] * first[i]; }
                    check = string.Create(CultureInfo.InvariantCulture, $"  |C - C({firstMethod})| / |C({firstMethod})| = {Math.Sqrt(num / Math.Max(den, 1e-300)):E2}");
                }
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {shape,-22} {method,-19} {median,9:F4} ms  {flop / median / 1e9,7:F1} TFLOP/s{ratio}{check}"));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Console.WriteLine($"  {shape,-22} {method,-19} FAILED: {e.GetType().Name}: {e.Message}");
                try { ops.Synchronize(); } catch { /* a CUDA fault poisons the context; later methods then fail too and say so */ }
            }
        }
        ops.GemmPrecision = GemmPrecision.Fp32;
        ops.TensorCoreGroupsPerSM = 2;
    }

    /// <summary>cuBLAS SGEMM of the row-major product in <paramref name="layout"/> (ABt, AB or AtB); also GpuGemmBenchmarks' baseline.</summary>
    internal static void Sgemm(CuBlas blas, string layout, Tensor ta, Tensor tb, Tensor tc, int m, int n, int k)
    {
        // Row-major C (M,N) is column-major Cᵀ (N,M), as in GpuGemmBenchmarks.
        ArrayView<float> a = ((GpuTensor)ta).View, b = ((GpuTensor)tb).View, c = ((GpuTensor)tc).View;
        switch (layout)
        {
            case "ABt": blas.Gemm(CuBlasOperation.Transpose, CuBlasOperation.NonTranspose, n, m, k, 1f, b, k, a, k, 0f, c, n); break;
            case "AB": blas.Gemm(CuBlasOperation.NonTranspose, CuBlasOperation.NonTranspose, n, m, k, 1f, b, n, a, k, 0f, c, n); break;
            default: blas.Gemm(CuBlasOperation.NonTranspose, CuBlasOperation.Transpose, n, m, k, 1f, b, n, a, m, 0f, c, n); break;
        }
    }

    /// <summary>cuBLAS bf16 (fp32 C) of the same product on operands converted to bf16; also GpuGemmBenchmarks' baseline.</summary>
    internal static void CuBlasBf16Gemm(CuBlasBf16 blas, string layout, MemoryBuffer1D<ushort, Stride1D.Dense> a16, MemoryBuffer1D<ushort, Stride1D.Dense> b16,
        Tensor tc, int m, int n, int k)
    {
        IntPtr a = ((ArrayView<ushort>)a16.View).LoadEffectiveAddressAsPtr(), b = ((ArrayView<ushort>)b16.View).LoadEffectiveAddressAsPtr();
        IntPtr c = ((GpuTensor)tc).View.LoadEffectiveAddressAsPtr();
        switch (layout)
        {
            case "ABt": blas.Gemm(true, false, n, m, k, b, k, a, k, c, n); break;
            case "AB": blas.Gemm(false, false, n, m, k, b, n, a, k, c, n); break;
            default: blas.Gemm(false, true, n, m, k, b, n, a, m, c, n); break;
        }
    }
}
