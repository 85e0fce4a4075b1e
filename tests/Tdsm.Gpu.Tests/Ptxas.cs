using System.Reflection;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// Assembles a kernel's PTX with a real ptxas when one is at hand (TDSM_PTXAS, e.g. unpacked from
/// Debian's nvidia-cuda-toolkit package; CI has none, and a test that needs it ends as ignored with the reason):
/// sm_80, -O3, and the kernel must need no stack frame and no spills. TDSM_PTX_KEEP=DIR keeps the
/// PTX and cubin (for cuobjdump -sass). The PTX's .version is lowered to 7.8 so that CUDA 11.8's
/// ptxas accepts the same instructions.
/// </summary>
internal static class Ptxas
{
    /// <summary>Why a check that needs ptxas did not run.</summary>
    public const string NotConfigured = "ptxas not configured (set TDSM_PTXAS to a ptxas binary): registers, stack and spills not checked";

    /// <summary>The configured ptxas (TDSM_PTXAS), or null.</summary>
    public static string? Binary =>
        Environment.GetEnvironmentVariable("TDSM_PTXAS") is { Length: > 0 } p && File.Exists(p) ? p : null;

    /// <summary>
    /// Runs the check for <paramref name="ptx"/> and returns ptxas's -v output. Without a ptxas the test ends as
    /// ignored (skipped, with the reason), so a run without one does not report the register check as passed: the
    /// ptxas checks are tests of their own, apart from the PTX-text checks that CI runs.
    /// </summary>
    public static string AssertAssemblesWithoutSpills(string ptx, string kernelName)
    {
        var (exitCode, log) = Assemble(ptx, kernelName);
        if (log is null) Assert.Ignore(PtxTarget.NeedsSm90a(ptx) ? NoSm90a : NotConfigured);
        Assert.That(exitCode, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"));
        return log;
    }

    /// <summary>
    /// A ptxas that assembles sm_90a (CUDA 12 or later, for wgmma): TDSM_PTXAS_SM90A, else TDSM_PTXAS when it is one; or null.
    /// </summary>
    public static string? Sm90aBinary => Sm90a.Value;

    // Found once per test run: TDSM_PTXAS's release is read by running it.
    private static readonly Lazy<string?> Sm90a = new(() =>
        Environment.GetEnvironmentVariable("TDSM_PTXAS_SM90A") is { Length: > 0 } p && File.Exists(p) ? p
            : Binary is { } b && MajorVersion(b) >= 12 ? b : null);

    /// <summary>Why a check that needs an sm_90a ptxas did not run.</summary>
    public const string NoSm90a = "no ptxas for sm_90a (set TDSM_PTXAS_SM90A, or TDSM_PTXAS, to a CUDA 12+ ptxas): the wgmma kernels not assembled";

    // The release of a ptxas ("Cuda compilation tools, release 12.4, V12.4.131"), 0 when it cannot be read.
    private static int MajorVersion(string ptxas)
    {
        try
        {
            using var proc = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(ptxas, ["--version"]) { RedirectStandardOutput = true })!;
            string text = proc.StandardOutput.ReadToEnd();
            proc.WaitForExit();
            return Regex.Match(text, @"release (\d+)\.") is { Success: true } m ? int.Parse(m.Groups[1].Value) : 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return 0;
        }
    }

    /// <summary>
    /// ptxas's exit code and -v output for <paramref name="ptx"/> (-O3): for sm_80 with the PTX's .version lowered to 7.8
    /// (CUDA 11.8's ptxas), or, when the text uses wgmma, retargeted as the GPU tier loads it (<see cref="PtxTarget.ToSm90a"/>)
    /// for sm_90a with <see cref="Sm90aBinary"/>; log null when no such ptxas is configured.
    /// </summary>
    public static (int ExitCode, string? Log) Assemble(string ptx, string kernelName)
    {
        var (exitCode, log, _) = AssembleAndDisassemble(ptx, kernelName, disassemble: false);
        return (exitCode, log);
    }

    /// <summary>
    /// <see cref="Assemble"/>, and with <paramref name="disassemble"/> the cubin's SASS from the cuobjdump that sits beside
    /// the ptxas (CUDA's bin folder; null when there is none or ptxas failed).
    /// </summary>
    public static (int ExitCode, string? Log, string? Sass) AssembleAndDisassemble(string ptx, string kernelName, bool disassemble = true)
    {
        bool hopper = PtxTarget.NeedsSm90a(ptx);
        string arch = hopper ? "sm_90a" : "sm_80";
        string? ptxas = hopper ? Sm90aBinary : Binary;
        if (ptxas is null)
        {
            TestContext.Out.WriteLine(hopper ? $"ptxas: not run ({NoSm90a})" : "ptxas: not run (set TDSM_PTXAS to a ptxas binary to check registers, stack and spills)");
            return (0, null, null);
        }
        string? keep = Environment.GetEnvironmentVariable("TDSM_PTX_KEEP");
        string dir = string.IsNullOrEmpty(keep) ? Path.Combine(Path.GetTempPath(), $"tdsm-ptx-{Environment.ProcessId}-{kernelName}") : keep;
        Directory.CreateDirectory(dir);
        try
        {
            string file = Path.Combine(dir, $"{kernelName}.ptx");
            File.WriteAllText(file, hopper ? PtxTarget.ToSm90a(ptx) : Regex.Replace(ptx, @"^\.version \d+\.\d+", ".version 7.8", RegexOptions.Multiline));
            var psi = new System.Diagnostics.ProcessStartInfo(ptxas, [$"-arch={arch}", "-O3", "-v", file, "-o", Path.Combine(dir, $"{kernelName}.cubin")])
            { RedirectStandardError = true, RedirectStandardOutput = true };
            using var proc = System.Diagnostics.Process.Start(psi)!;
            string log = proc.StandardError.ReadToEnd() + proc.StandardOutput.ReadToEnd();
            proc.WaitForExit();
            TestContext.Out.WriteLine($"{kernelName} ptxas: {log.Trim()}");
            string cubin = Path.Combine(dir, $"{kernelName}.cubin");
            string cuobjdump = Path.Combine(Path.GetDirectoryName(ptxas)!, "cuobjdump");
            string? sass = disassemble && proc.ExitCode == 0 && File.Exists(cuobjdump) ? Run(cuobjdump, "-sass", cubin) : null;
            return (proc.ExitCode, log, sass);
        }
        finally
        {
            if (string.IsNullOrEmpty(keep)) Directory.Delete(dir, recursive: true);
        }
    }

    private static string Run(string program, params string[] args)
    {
        using var proc = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string output = proc.StandardOutput.ReadToEnd() + proc.StandardError.ReadToEnd();
        proc.WaitForExit();
        return output;
    }
}

/// <summary>
/// ILGPU's PTX backend for sm_80 (the target ILGPU uses on the H100) on a CPU context: kernels compile to PTX
/// on any machine, no driver needed, with the production settings (O2, precise math, algorithms).
/// </summary>
internal sealed class PtxCompiler : IDisposable
{
    private readonly Context _context = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O2).Math(MathMode.Default));
    private readonly PTXBackend _backend;

    public PtxCompiler() => _backend = new PTXBackend(_context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, null!);

    /// <summary>The PTX of <paramref name="kernel"/>: implicitly grouped when its first parameter is an index, else explicitly.</summary>
    public string Compile(MethodInfo kernel, KernelSpecialization specialization) => CompileKernel(kernel, specialization).PTXAssembly;

    private static bool IsImplicitlyGrouped(MethodInfo kernel) =>
        kernel.GetParameters()[0].ParameterType is var first && (first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D));

    /// <summary>The compiled kernel (entry point, information and PTX) of <paramref name="kernel"/>, grouped as <see cref="Compile"/> says.</summary>
    public PTXCompiledKernel CompileKernel(MethodInfo kernel, KernelSpecialization specialization)
    {
        var entry = IsImplicitlyGrouped(kernel) ? EntryPointDescription.FromImplicitlyGroupedKernel(kernel) : EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
        return (PTXCompiledKernel)_backend.Compile(entry, specialization);
    }

    // One compiler for the whole test run and every kernel's PTX once per specialization: the PTX tests of several
    // fixtures compile the same large kernels (each 5-15 s on the 2-core CI machine), so the second asks are free.
    private static readonly Lock SharedLock = new();
    private static PtxCompiler? _shared;
    private static readonly Dictionary<(MethodInfo, int, int), string> Cache = [];

    /// <summary>
    /// The PTX of <paramref name="kernel"/> with <paramref name="specialization"/>, compiled once per test run (a shared
    /// compiler; thread-safe).
    /// </summary>
    public static string CompileOne(MethodInfo kernel, KernelSpecialization specialization)
    {
        var key = (kernel, specialization.MaxNumThreadsPerGroup ?? 0, specialization.MinNumGroupsPerMultiprocessor ?? 0);
        lock (SharedLock)
        {
            if (Cache.TryGetValue(key, out var ptx)) return ptx;
            _shared ??= new PtxCompiler();
            return Cache[key] = _shared.Compile(kernel, specialization);
        }
    }

    /// <summary>
    /// The launch bounds the GPU tier loads <paramref name="kernel"/> with (blocks per SM at its block size), or none: the
    /// specialization the PTX tests compile each kernel with, so that they share <see cref="CompileOne"/>'s cache.
    /// </summary>
    public static KernelSpecialization TierBounds(MethodInfo kernel) => IsImplicitlyGrouped(kernel) ? KernelSpecialization.Empty : kernel.DeclaringType!.Name switch
    {
        nameof(Tdsm.Kernels.TensorCoreGemm) when kernel.Name is nameof(Tdsm.Kernels.TensorCoreGemm.KernelLdMatrixWide) or nameof(Tdsm.Kernels.TensorCoreGemm.KernelLdMatrixWideAsync)
            => Tdsm.Kernels.TensorCoreGemm.WideSpecialization,
        nameof(Tdsm.Kernels.TensorCoreGemm) => Tdsm.Kernels.TensorCoreGemm.Specialization(),
        nameof(Tdsm.Kernels.StGcn.TensorCoreConv) => Tdsm.Kernels.StGcn.TensorCoreConv.Specialization,
        nameof(Tdsm.Kernels.StGcn.ConvGemm) => Tdsm.Kernels.StGcn.ConvGemm.Specialization,
        nameof(Tdsm.Kernels.Gemm) when kernel.Name is nameof(Tdsm.Kernels.Gemm.Kernel) or nameof(Tdsm.Kernels.Gemm.KernelVecABt) => Tdsm.Kernels.Gemm.Specialization,
        nameof(Tdsm.Kernels.JointAttention) when kernel.Name is nameof(Tdsm.Kernels.JointAttention.SkeletonRowMix) => Tdsm.Kernels.JointAttention.MixSpecialization,
        nameof(Tdsm.Kernels.JointAttention) when kernel.Name is nameof(Tdsm.Kernels.JointAttention.ForwardTiled) => Tdsm.Kernels.JointAttention.TiledForwardSpecialization,
        nameof(Tdsm.Kernels.JointAttention) when kernel.Name is nameof(Tdsm.Kernels.JointAttention.BackwardTiled) => Tdsm.Kernels.JointAttention.TiledBackwardSpecialization,
        _ => KernelSpecialization.Empty,
    };

    public void Dispose()
    {
        _backend.Dispose();
        _context.Dispose();
    }
}
