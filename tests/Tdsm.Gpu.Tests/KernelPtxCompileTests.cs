using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// Every public kernel of Tdsm.Kernels (DiT and ST-GCN) through ILGPU's PTX backend for sm_80, the
/// target ILGPU uses on the H100. No driver is needed to generate PTX, so a kernel the CUDA backend
/// cannot compile fails here in CI rather than during a GPU visit. Lists each kernel's PTX size,
/// whether it uses local memory and approximate math (the parity path must not).
/// </summary>
[NonParallelizable]
public class KernelPtxCompileTests
{
    /// <summary>Public static void methods whose parameters a kernel can take (an index, views, scalars, structs).</summary>
    internal static IEnumerable<MethodInfo> Kernels() =>
        typeof(Tdsm.Kernels.Gemm).Assembly.GetTypes()
            .Where(t => t.IsPublic || t.IsNestedPublic)
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.ReturnType == typeof(void) && !m.IsGenericMethodDefinition && m.GetParameters().Length > 0
                && m.GetParameters().All(p => p.ParameterType.IsValueType && !p.ParameterType.IsByRef))
            .OrderBy(m => m.DeclaringType!.FullName).ThenBy(m => m.Name);

    [Test]
    public void EveryKernelCompilesToPtx()
    {
        using var context = Context.Create(b => b.CPU().EnableAlgorithms().Optimize(OptimizationLevel.O2).Math(MathMode.Default));
        using var backend = new PTXBackend(context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, null!);
        var failures = new List<string>();
        int count = 0;
        foreach (var m in Kernels())
        {
            string name = $"{m.DeclaringType!.Name}.{m.Name}";
            var first = m.GetParameters()[0].ParameterType;
            bool implicitGroups = first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D);
            try
            {
                var entry = implicitGroups ? EntryPointDescription.FromImplicitlyGroupedKernel(m) : EntryPointDescription.FromExplicitlyGroupedKernel(m);
                var ptx = ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
                count++;
                bool local = ptx.Contains(".local", StringComparison.Ordinal), approx = ptx.Contains(".approx", StringComparison.Ordinal);
                TestContext.Out.WriteLine($"{name,-44} {ptx.Length,8} chars{(local ? "  .local" : "")}{(approx ? "  .approx" : "")}");
            }
            catch (Exception e)
            {
                failures.Add($"{name}: {e.GetType().Name}: {e.Message}");
            }
        }
        TestContext.Out.WriteLine($"{count} kernels compiled to PTX");
        Assert.That(failures, Is.Empty);
        Assert.That(count, Is.GreaterThanOrEqualTo(45), "the kernel list lost kernels");
    }
}
