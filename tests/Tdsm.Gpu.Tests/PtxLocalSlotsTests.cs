using System.Text.RegularExpressions;
using ILGPU.Runtime;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// PtxLocalSlots: the inline-asm operand slots ILGPU writes become registers, and nothing else changes. The text
/// tests run in CI; every kernel's PTX is compiled (no driver needed) and rewritten, and with a ptxas at hand
/// (TDSM_PTXAS) the rewritten PTX must assemble with no stack frame wherever the only local memory was operand slots.
/// </summary>
[NonParallelizable]
public class PtxLocalSlotsTests
{
    private const string Head = ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry k(\n\t.param .u64 p\n)\n{\n";

    [Test]
    public void OperandSlotsBecomeMovesThroughARegister()
    {
        string ptx = Head +
            "\t.local .align 4 .b8 __local_depot0[4];\n" +
            "\t.local .align 4 .b8 __local_depot1[4];\n" +
            "\t.reg .f32 %f<9>;\n\t.reg .b32 %r<9>;\n\t.reg .b64 %rd<9>;\n\t.reg .pred %p<2>;\n" +
            "\tmov.b64\t%rd1, __local_depot0;\n" +
            "\tmov.b64\t%rd2, __local_depot1;\n" +
            "\tst.local.f32\t[%rd1], %f1;\n" +
            "\tst.local.b32\t[%rd2], %r1;\n" +
            "\tld.local.f32\t%f2, [%rd1];\n" +
            "\tld.local.b32\t%r2, [%rd2];\n" +
            "\tcvt.rn.bf16x2.f32 %r2, %f2, %f2;\n" +
            "\t@%p1 st.local.b32\t[%rd2], %r2;\n" +
            "\tst.local.f32\t[%rd1], 0f00000000;\n" +
            "\tld.local.b32\t%r3, [%rd2];\n" +
            "\tret;\n}\n";
        var (rewritten, promoted) = PtxLocalSlots.Promote(ptx);
        Assert.That(promoted, Is.EqualTo(2));
        string expected = Head +
            "\t.reg .b32 %tdsm_slot0;\n" +
            "\t.reg .b32 %tdsm_slot1;\n" +
            "\t.reg .f32 %f<9>;\n\t.reg .b32 %r<9>;\n\t.reg .b64 %rd<9>;\n\t.reg .pred %p<2>;\n" +
            "\tmov.b32\t%tdsm_slot0, %f1;\n" +
            "\tmov.b32\t%tdsm_slot1, %r1;\n" +
            "\tmov.b32\t%f2, %tdsm_slot0;\n" +
            "\tmov.b32\t%r2, %tdsm_slot1;\n" +
            "\tcvt.rn.bf16x2.f32 %r2, %f2, %f2;\n" +
            "\t@%p1 mov.b32\t%tdsm_slot1, %r2;\n" +
            "\tmov.b32\t%tdsm_slot0, 0f00000000;\n" +
            "\tmov.b32\t%r3, %tdsm_slot1;\n" +
            "\tret;\n}\n";
        // Depots are promoted in declaration order, so the slot numbers follow it.
        Assert.That(rewritten, Is.EqualTo(expected));
    }

    [TestCase("\tadd.s64\t%rd3, %rd1, 4;\n", TestName = "AddressArithmeticKeepsTheDepot")]
    [TestCase("\tst.local.f32\t[%rd1+4], %f1;\n", TestName = "AnOffsetKeepsTheDepot")]
    [TestCase("\tcvta.local.u64\t%rd3, %rd1;\n", TestName = "AGenericAddressKeepsTheDepot")]
    [TestCase("\tld.local.v2.f32\t{%f3, %f4}, [%rd1];\n", TestName = "AVectorAccessKeepsTheDepot")]
    [TestCase("\tst.local.u8\t[%rd1], %r1;\n", TestName = "ANarrowerAccessKeepsTheDepot")]
    [TestCase("\tmov.b64\t%rd1, %rd4;\n", TestName = "ARedefinedAddressKeepsTheDepot")]
    [TestCase("\tmov.b64\t%rd5, __local_depot0;\n", TestName = "ASecondAddressKeepsTheDepot")]
    public void AnythingButWholeSlotAccessLeavesTheTextAlone(string extra)
    {
        string ptx = Head +
            "\t.local .align 4 .b8 __local_depot0[4];\n" +
            "\t.reg .f32 %f<9>;\n\t.reg .b32 %r<9>;\n\t.reg .b64 %rd<9>;\n" +
            "\tmov.b64\t%rd1, __local_depot0;\n" +
            "\tst.local.f32\t[%rd1], %f1;\n" +
            extra +
            "\tld.local.f32\t%f2, [%rd1];\n" +
            "\tret;\n}\n";
        var (rewritten, promoted) = PtxLocalSlots.Promote(ptx);
        Assert.That(promoted, Is.Zero);
        Assert.That(rewritten, Is.SameAs(ptx));
    }

    [Test]
    public void ArraysAndModuleScopeDepotsStay()
    {
        string ptx = ".version 8.0\n.target sm_80\n.address_size 64\n.local .align 4 .b8 __local_depot9[4];\n" + Head +
            "\t.local .align 4 .b8 __local_depot0[16];\n" +
            "\t.reg .f32 %f<9>;\n\t.reg .b64 %rd<9>;\n" +
            "\tmov.b64\t%rd1, __local_depot0;\n\tst.local.f32\t[%rd1], %f1;\n\tld.local.f32\t%f2, [%rd1];\n" +
            "\tmov.b64\t%rd2, __local_depot9;\n\tst.local.f32\t[%rd2], %f1;\n\tld.local.f32\t%f3, [%rd2];\n" +
            "\tret;\n}\n";
        Assert.That(PtxLocalSlots.Promote(ptx).Promoted, Is.Zero);
    }

    /// <summary>
    /// Every kernel of Tdsm.Kernels (the tensor-core ones with the launch bounds the tier loads them with): the rewrite leaves no ld/st.local in the kernels whose only local memory was
    /// asm operand slots (the tensor-core GEMMs and convolutions and the bf16 packers), and with a ptxas the rewritten
    /// PTX assembles for sm_80 with no more stack than the original (registers and stack printed before and after; at the
    /// 128 registers of 2 blocks per SM the fp32-operand and convolution kernels spill 16-80 bytes either way).
    /// </summary>
    [Test]
    public void EveryKernelsOperandSlotsBecomeRegisters()
    {
        var failures = new List<string>();
        int rewrittenKernels = 0;
        foreach (var m in KernelPtxCompileTests.Kernels())
        {
            string name = $"{m.DeclaringType!.Name}.{m.Name}";
            string ptx = PtxCompiler.CompileOne(m, PtxCompiler.TierBounds(m));
            var (rewritten, promoted) = PtxLocalSlots.Promote(ptx);
            if (promoted == 0) continue;
            rewrittenKernels++;
            int before = Regex.Matches(ptx, @"\b(ld|st)\.local\b").Count, after = Regex.Matches(rewritten, @"\b(ld|st)\.local\b").Count;
            string line = $"{name,-44} {promoted,5} slots promoted; ld/st.local {before} -> {after}";
            bool asmOnly = after == 0;
            if (Ptxas.Binary is not null)
            {
                var (code0, log0) = Ptxas.Assemble(ptx, name + ".original");
                var (code1, log1) = Ptxas.Assemble(rewritten, name);
                if (log0 is null || log1 is null) line += $"; ptxas: {Ptxas.NoSm90a}";
                else if (code1 != 0) failures.Add($"{name}: the rewritten PTX does not assemble: {log1}");
                else
                {
                    int r0 = Registers(log0!), r1 = Registers(log1!);
                    line += $"; ptxas: registers {r0} -> {r1}, {Frame(log0!)} -> {Frame(log1!)}";
                    if (Stack(log1!) > Stack(log0!)) failures.Add($"{name}: more local memory after the rewrite: {log0} -> {log1}");
                }
            }
            TestContext.Out.WriteLine(line);
            if (m.DeclaringType!.Name is "TensorCoreGemm" or "TensorCoreConv" && !asmOnly) failures.Add($"{name}: {after} ld/st.local left");
        }
        TestContext.Out.WriteLine($"{rewrittenKernels} kernels had operand slots");
        Assert.That(failures, Is.Empty);
        Assert.That(rewrittenKernels, Is.GreaterThanOrEqualTo(14), "the tensor-core kernels should all have had operand slots");
    }

    /// <summary>
    /// The wrapper LiftedKernels loads on CUDA: the compiled kernel rebuilt around the rewritten text keeps its entry point
    /// and kernel information (ILGPU's constructor is internal, reached by reflection; this fails if an ILGPU update
    /// changes it, before a GPU visit would). Loading it needs a CUDA device (the visit's kernel tests).
    /// </summary>
    [Test]
    public void TheRewrittenKernelKeepsItsEntryPoint()
    {
        using var compiler = new PtxCompiler();
        // A small kernel with slots (its cvt's operands); the rewrite does not depend on the kernel's size.
        var compiled = compiler.CompileKernel(typeof(Tdsm.Kernels.Bf16).GetMethod(nameof(Tdsm.Kernels.Bf16.PackRowsTransposed))!, KernelSpecialization.Empty);
        var rewritten = LiftedKernels.Rewrite(compiled, out int promoted);
        Assert.That(rewritten, Is.Not.Null);
        Assert.Multiple(() =>
        {
            Assert.That(promoted, Is.EqualTo(2));
            var entryPoint = typeof(ILGPU.Backends.CompiledKernel).GetProperty("EntryPoint", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!;
            Assert.That(entryPoint.GetValue(rewritten), Is.SameAs(entryPoint.GetValue(compiled)));
            Assert.That(rewritten.Info, Is.SameAs(compiled.Info));
            Assert.That(rewritten.Name, Is.EqualTo(compiled.Name));
            Assert.That(rewritten.PTXAssembly, Is.EqualTo(PtxLocalSlots.Promote(compiled.PTXAssembly).Ptx));
            Assert.That(rewritten.PTXAssembly, Does.Not.Contain("ld.local").And.Contain(".entry"));
        });
    }

    /// <summary>
    /// A kernel whose text uses wgmma is rewritten even when it has no slots to lift or lifting is off (TDSM_PTX_LIFT=0): it
    /// needs the sm_90a target to load at all. The small kernel above with a wgmma fence added to its text, wrapped as
    /// LiftedKernels wraps its kernels: without lifting it keeps its slots and gets the target; with lifting, both.
    /// </summary>
    [Test]
    public void AWgmmaKernelIsRetargetedWithOrWithoutLifting()
    {
        using var compiler = new PtxCompiler();
        var compiled = compiler.CompileKernel(typeof(Tdsm.Kernels.Bf16).GetMethod(nameof(Tdsm.Kernels.Bf16.PackRowsTransposed))!, KernelSpecialization.Empty);
        int ret = compiled.PTXAssembly.LastIndexOf("\tret;", StringComparison.Ordinal);
        Assert.That(ret, Is.GreaterThan(0), "the kernel's ret");
        string text = compiled.PTXAssembly.Insert(ret, "\twgmma.fence.sync.aligned;\n");
        var flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public;
        var entryPoint = typeof(ILGPU.Backends.CompiledKernel).GetProperty("EntryPoint", flags)!.GetValue(compiled);
        var constructor = typeof(ILGPU.Backends.PTX.PTXCompiledKernel).GetConstructor(flags, null,
            [typeof(ILGPU.Context), typeof(ILGPU.Backends.EntryPoints.EntryPoint), typeof(ILGPU.Backends.CompiledKernel.KernelInfo), typeof(string)], null)!;
        var withWgmma = (ILGPU.Backends.PTX.PTXCompiledKernel)constructor.Invoke([compiled.Context, entryPoint, compiled.Info, text]);

        var unlifted = LiftedKernels.Rewrite(withWgmma, out int none, promoteSlots: false);
        var lifted = LiftedKernels.Rewrite(withWgmma, out int promoted);
        Assert.Multiple(() =>
        {
            Assert.That(unlifted, Is.Not.Null, "retargeted without lifting");
            Assert.That(none, Is.Zero);
            Assert.That(unlifted!.PTXAssembly, Does.Contain("\n.target sm_90a\n").And.Contain("ld.local").And.Contain("wgmma.fence"));
            Assert.That(lifted, Is.Not.Null);
            Assert.That(promoted, Is.EqualTo(2));
            Assert.That(lifted!.PTXAssembly, Does.Contain("\n.target sm_90a\n").And.Not.Contain("ld.local"));
            Assert.That(LiftedKernels.Rewrite(compiled, out _, promoteSlots: false), Is.Null, "a kernel without wgmma, not lifted: nothing to rewrite");
        });
    }

    private static int Stack(string log) => Regex.Match(log, @"(\d+) bytes stack frame") is { Success: true } r ? int.Parse(r.Groups[1].Value) : int.MaxValue;

    private static int Registers(string log) => Regex.Match(log, @"Used (\d+) registers") is { Success: true } r ? int.Parse(r.Groups[1].Value) : -1;

    private static string Frame(string log) => Regex.Match(log, @"(\d+) bytes stack frame") is { Success: true } r ? $"{r.Groups[1].Value} B stack" : "?";
}
