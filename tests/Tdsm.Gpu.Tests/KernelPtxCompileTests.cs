using System.Reflection;
using ILGPU.Runtime;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// Every public kernel of Tdsm.Kernels (DiT and ST-GCN; the GEMM and convolution kernels' register tiles are
/// checked further in GemmPtxTests, ConvGemmPtxTests and the tensor-core tests) through ILGPU's PTX backend for
/// sm_80, the target ILGPU uses on the H100, with the launch bounds the GPU tier loads them with (PtxCompiler.TierBounds:
/// the other PTX tests then find them in the compile cache). No driver is needed to generate PTX, so a kernel the CUDA backend
/// cannot compile fails here in CI rather than during a GPU visit. Lists each kernel's PTX size,
/// whether it uses local memory, and fails on approximate math outside the bf16 / tf32 kernels (the tensor-core GEMMs and
/// the *Fast activations; the fp32 parity path must not use it). With a ptxas at hand
/// (TDSM_PTXAS), every kernel's PTX must also assemble for sm_80.
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
        var failures = new List<string>();
        int count = 0;
        foreach (var m in Kernels())
        {
            string name = $"{m.DeclaringType!.Name}.{m.Name}";
            try
            {
                var ptx = PtxCompiler.CompileOne(m, PtxCompiler.TierBounds(m));
                if (!ptx.Contains(".entry", StringComparison.Ordinal)) failures.Add($"{name}: no .entry in the PTX");
                count++;
                bool local = ptx.Contains(".local", StringComparison.Ordinal), approx = ptx.Contains(".approx", StringComparison.Ordinal);
                TestContext.Out.WriteLine($"{name,-44} {ptx.Length,8} chars{(local ? "  .local" : "")}{(approx ? "  .approx" : "")}");
                // Approximate math only where the products are bf16 / tf32 (GELU's sigmoid: Activations.GeluFast), never on the fp32 parity path.
                bool approxAllowed = m.DeclaringType == typeof(Tdsm.Kernels.TensorCoreGemm) || m.Name.Contains("Fast", StringComparison.Ordinal);
                if (approx && !approxAllowed) failures.Add($"{name}: approximate math (.approx) in the PTX; the fp32 kernels use precise math (parity)");
                if (m.Name.Contains("Fast", StringComparison.Ordinal) && !ptx.Contains("ex2.approx.ftz.f32", StringComparison.Ordinal))
                    failures.Add($"{name}: no ex2.approx in the PTX: the fast GELU fell back to the precise sigmoid on CUDA");
                if (Ptxas.Binary is not null)
                {
                    var (exitCode, log) = Ptxas.Assemble(ptx, name);
                    if (exitCode != 0) failures.Add($"{name}: ptxas exit {exitCode}: {log}");
                }
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
