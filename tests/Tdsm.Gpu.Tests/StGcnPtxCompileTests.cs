using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Algorithms;
using Tdsm.Kernels.StGcn;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// Every ST-GCN kernel through ILGPU's PTX backend (sm_80, the target ILGPU uses on the H100), on any
/// machine: no driver is needed to generate PTX, so a kernel the CUDA backend cannot compile fails
/// here in CI instead of at the GPU visit. Checks the PTX is emitted, that the conv GEMM's register
/// tile did not become a local-memory array in ILGPU's output (ptxas may still spill: the SASS is
/// for the GPU visit), and lists the kernels whose PTX uses approximate math.
/// </summary>
[NonParallelizable]
public class StGcnPtxCompileTests
{
    private static IEnumerable<MethodInfo> Kernels() =>
        new[] { typeof(StGcnLayout), typeof(ChannelStats), typeof(Kernels.StGcn.BatchNorm), typeof(ConvGemm), typeof(Kernels.StGcn.GraphAggregate),
                typeof(Head), typeof(Elementwise), typeof(Sgd) }
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => m.ReturnType == typeof(void) && m.GetParameters().Length > 0);

    [Test]
    public void EveryKernelCompilesToPtx()
    {
        using var context = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O2).Math(MathMode.Default));
        using var backend = new PTXBackend(context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, null!);
        var names = new List<string>();
        var approx = new List<string>();
        foreach (var m in Kernels())
        {
            bool implicitGroups = m.GetParameters()[0].ParameterType == typeof(Index1D);
            var entry = implicitGroups ? EntryPointDescription.FromImplicitlyGroupedKernel(m) : EntryPointDescription.FromExplicitlyGroupedKernel(m);
            var compiled = (PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty);
            Assert.That(compiled.PTXAssembly, Does.Contain(".entry"), $"{m.DeclaringType!.Name}.{m.Name}");
            if (m.DeclaringType == typeof(ConvGemm) && !implicitGroups)
                Assert.That(compiled.PTXAssembly, Does.Not.Contain(".local"), $"{m.Name}: the register tile spilled to local memory");
            names.Add($"{m.DeclaringType!.Name}.{m.Name}");
            if (compiled.PTXAssembly.Contains(".approx", StringComparison.Ordinal)) approx.Add($"{m.DeclaringType!.Name}.{m.Name}");
        }
        TestContext.Out.WriteLine($"{names.Count} kernels compiled to PTX: {string.Join(", ", names)}");
        TestContext.Out.WriteLine($"kernels with .approx instructions: {(approx.Count == 0 ? "none" : string.Join(", ", approx))}");
        Assert.That(names, Has.Count.GreaterThanOrEqualTo(25));
    }
}
