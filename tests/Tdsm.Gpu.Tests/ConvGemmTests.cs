using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Tdsm.Kernels.StGcn;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// The conv GEMM kernels (<see cref="ConvGemm"/>) through ILGPU's PTX backend (sm_80, what ILGPU targets on the H100),
/// no driver needed, with the checks of <see cref="GemmPtxTests"/>: the 64 accumulators stay registers (no
/// <c>.local</c>), helpers are inlined (no <c>call</c>), the K-step loop body is one k's 8×8 outer product (64
/// multiply-adds fed by 4 float4 shared loads, no scalar shared loads) in one basic block, and the launch bounds
/// reach the PTX. When a ptxas is at hand (TDSM_PTXAS), the PTX is assembled for sm_80 and must need no stack frame
/// and no spills; its register count is printed (TDSM_PTX_KEEP=DIR keeps the PTX and cubin).
/// </summary>
public class ConvGemmPtxTests
{
    [TestCase(nameof(ConvGemm.Forward))]
    [TestCase(nameof(ConvGemm.InputGrad))]
    [TestCase(nameof(ConvGemm.WeightGrad))]
    [TestCase(nameof(ConvGemm.ForwardWide))]
    [TestCase(nameof(ConvGemm.InputGradWide))]
    [TestCase(nameof(ConvGemm.WeightGradWide))]
    [TestCase(nameof(ConvGemm.WeightGradTWide))]
    public void KernelCompilesToUnrolledRegisterTiledPtx(string kernelName)
    {
        using var context = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O2).Math(MathMode.Default));
        using var backend = new PTXBackend(context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, null!);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(typeof(ConvGemm).GetMethod(kernelName)!);
        string ptx = ((PTXCompiledKernel)backend.Compile(entry, ConvGemm.Specialization)).PTXAssembly;

        int Count(string pattern) => Regex.Matches(ptx, pattern).Count;
        int mul = Count(@"\bmul(\.rn)?\.f32\b"), fma = Count(@"\bfma\.rn\.f32\b");
        int ldsV4 = Count(@"\bld\.shared\.v4\.f32\b"), lds = Count(@"\bld\.shared\.f32\b"), sts = Count(@"\bst\.shared\.f32\b");
        int ldg = Count(@"\bld\.global(\.nc)?\.f32\b"), stg = Count(@"\bst\.global\.f32\b"), div = Count(@"\b(div|rem)\.s32\b");
        TestContext.Out.WriteLine($"{kernelName} PTX: {ptx.Split('\n').Length} lines; mul.f32 {mul}, fma.rn.f32 {fma}; ld.shared.v4.f32 {ldsV4}, " +
            $"ld.shared.f32 {lds}, st.shared.f32 {sts}; ld.global.f32 {ldg}, st.global.f32 {stg}; div/rem.s32 {div}; bar.sync {Count(@"\bbar(\.sync)?\b")}");

        Assert.That(ptx, Does.Contain(".entry"));
        Assert.That(ptx, Does.Not.Contain(".local"), "the register tile spilled to local memory in ILGPU's output");
        Assert.That(Count(@"\bcall(\.uni)?\b"), Is.Zero, "a helper was not inlined");
        Assert.That(ptx, Does.Match(@"\.maxntid\s+256"), "launch bounds missing");
        Assert.That(ptx, Does.Match(@"\.minnctapersm\s+2"), "launch bounds missing");
        Assert.That(mul + fma, Is.EqualTo(64), "multiply-adds of one k: the 8x8 register tile, once");
        Assert.That(ldsV4, Is.EqualTo(4), "float4 fragment loads of one k");
        Assert.That(lds, Is.Zero, "scalar shared loads in the inner loop");
        int first = ptx.IndexOf("ld.shared.v4.f32", StringComparison.Ordinal), last = ptx.LastIndexOf("mul.f32", StringComparison.Ordinal);
        Assert.That(Regex.IsMatch(ptx[first..last], @"^\s*L_\w+:|\bbar\b|\bbra\b", RegexOptions.Multiline), Is.False, "the k loop's body is split");

        string? ptxas = Environment.GetEnvironmentVariable("TDSM_PTXAS");
        if (string.IsNullOrEmpty(ptxas) || !File.Exists(ptxas))
        {
            TestContext.Out.WriteLine("ptxas: not run (set TDSM_PTXAS to a ptxas binary to check registers, stack and spills)");
            return;
        }
        // TDSM_PTX_KEEP=DIR keeps the PTX and cubin there (for cuobjdump -sass).
        string? keep = Environment.GetEnvironmentVariable("TDSM_PTX_KEEP");
        string dir = string.IsNullOrEmpty(keep) ? Path.Combine(Path.GetTempPath(), $"tdsm-conv-ptx-{Environment.ProcessId}") : keep;
        Directory.CreateDirectory(dir);
        try
        {
            string file = Path.Combine(dir, $"{kernelName}.ptx");
            // An older ptxas (CUDA 11.8 knows PTX ISA 7.8) accepts the same instructions.
            File.WriteAllText(file, Regex.Replace(ptx, @"^\.version \d+\.\d+", ".version 7.8", RegexOptions.Multiline));
            var psi = new System.Diagnostics.ProcessStartInfo(ptxas, ["-arch=sm_80", "-O3", "-v", file, "-o", Path.Combine(dir, $"{kernelName}.cubin")])
            { RedirectStandardError = true, RedirectStandardOutput = true };
            using var proc = System.Diagnostics.Process.Start(psi)!;
            string log = proc.StandardError.ReadToEnd() + proc.StandardOutput.ReadToEnd();
            proc.WaitForExit();
            TestContext.Out.WriteLine($"{kernelName} ptxas: {log.Trim()}");
            Assert.That(proc.ExitCode, Is.EqualTo(0), log);
            Assert.That(log, Does.Contain("0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"));
        }
        finally
        {
            if (string.IsNullOrEmpty(keep)) Directory.Delete(dir, recursive: true);
        }
    }
}
