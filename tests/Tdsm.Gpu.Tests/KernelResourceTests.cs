using System.Reflection;
using ILGPU.Runtime;
using Tdsm.Gpu.Tests;
using K = Tdsm.Kernels;

namespace Tdsm.Gpu.Diagnostics;

/// <summary>
/// On CUDA only: each explicitly grouped production kernel as this card's driver JIT-compiles it, with the launch bounds
/// the GPU tier loads it with. Prints (one `resources` line per kernel) the registers, local memory (stack and spills),
/// static shared memory and the blocks per SM the occupancy calculator gives at the group size the tier launches, and
/// requires at least the blocks per SM the kernel is bounded for: fewer would mean the JIT needed more registers than the
/// bound leaves, or more shared memory than fits, and the kernel's performance model (and its launch) would not hold.
/// The ptxas checks in CI assemble the same PTX with CUDA 11.8 for sm_80; this is what the H100's own driver makes of it.
/// Kernels with inline-asm operand slots are compiled as the tier loads them, from the PTX LiftedKernels rewrites.
/// 42 kernels, each compiled by ILGPU and then by the driver (~1 s each on the 2-core build machine for ILGPU's part):
/// a namespace of its own so that the GPU visit runs it as a stage of its own (`resources`), after the numbers the issues
/// need, rather than inside the kernel tests.
/// </summary>
[TestFixture("cuda")]
[NonParallelizable]
public class KernelResourceTests(string device) : DeviceFixture(device)
{
    // name -> (kernel, specialization it is loaded with, threads per group, blocks per SM it is bounded for (0: none),
    // dynamic shared bytes per group as the tier launches it at the paper config).
    private static readonly Dictionary<string, (MethodInfo Method, KernelSpecialization Specialization, int Threads, int Bound, int DynamicShared)> Kernels = Build();

    private static Dictionary<string, (MethodInfo, KernelSpecialization, int, int, int)> Build()
    {
        var d = new Dictionary<string, (MethodInfo, KernelSpecialization, int, int, int)>();
        void Add(Type type, string method, KernelSpecialization spec, int threads, int bound, string? name = null, int dynamicShared = 0) =>
            d[name ?? $"{type.Name}.{method}"] = (type.GetMethod(method) ?? throw new MissingMethodException(type.Name, method), spec, threads, bound, dynamicShared);
        // First the kernels the first visit's stage did not reach: the ldmatrix GEMMs (local memory is what decides them).
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelLdMatrix), K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelLdMatrix ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelLdMatrixWide), K.TensorCoreGemm.WideSpecialization, K.TensorCoreGemm.WideThreads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelLdMatrixWide ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelLdMatrixAsync), K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelLdMatrixAsync ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelLdMatrixWideAsync), K.TensorCoreGemm.WideSpecialization, K.TensorCoreGemm.WideThreads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelLdMatrixWideAsync ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        // wgmma: loads only on a compute capability 9.0 GPU (the driver refuses sm_90a code elsewhere).
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelWgmma), K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelWgmma ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelWgmmaDeep), K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelWgmmaDeep ({K.TensorCoreGemm.MinGroupsPerSM}/SM)", K.TensorCoreGemm.DeepSharedBytes);
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelLdMatrixShifted), K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelLdMatrixShifted ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.KernelLdMatrixTapRows), K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
            $"TensorCoreGemm.KernelLdMatrixTapRows ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        foreach (var m in new[] { nameof(K.TensorCoreGemm.KernelLdMatrixShiftedAsync), nameof(K.TensorCoreGemm.KernelLdMatrixTapRowsAsync),
                     nameof(K.TensorCoreGemm.KernelWgmmaShifted), nameof(K.TensorCoreGemm.KernelWgmmaTapRows) })
            Add(typeof(K.TensorCoreGemm), m, K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
                $"TensorCoreGemm.{m} ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        Add(typeof(K.Gemm), nameof(K.Gemm.Kernel), K.Gemm.Specialization, K.Gemm.Threads, K.Gemm.MinGroupsPerSM);
        Add(typeof(K.Gemm), nameof(K.Gemm.KernelVecABt), K.Gemm.Specialization, K.Gemm.Threads, K.Gemm.MinGroupsPerSM);
        // The tensor-core GEMMs as the tier loads them (2 per SM), and the bf16 kernel also for 1 (the visit's A/B).
        Add(typeof(K.TensorCoreGemm), nameof(K.TensorCoreGemm.Kernel), K.TensorCoreGemm.Specialization(1), K.TensorCoreGemm.Threads, 1, "TensorCoreGemm.Kernel (1/SM)");
        foreach (var m in new[] { nameof(K.TensorCoreGemm.Kernel), nameof(K.TensorCoreGemm.KernelTf32), nameof(K.TensorCoreGemm.KernelPacked) })
            Add(typeof(K.TensorCoreGemm), m, K.TensorCoreGemm.Specialization(), K.TensorCoreGemm.Threads, K.TensorCoreGemm.MinGroupsPerSM,
                $"TensorCoreGemm.{m} ({K.TensorCoreGemm.MinGroupsPerSM}/SM)");
        foreach (var m in new[] { nameof(K.StGcn.ConvGemm.Forward), nameof(K.StGcn.ConvGemm.ForwardWide), nameof(K.StGcn.ConvGemm.InputGrad),
                     nameof(K.StGcn.ConvGemm.InputGradWide), nameof(K.StGcn.ConvGemm.WeightGrad), nameof(K.StGcn.ConvGemm.WeightGradWide),
                     nameof(K.StGcn.ConvGemm.WeightGradTWide) })
            Add(typeof(K.StGcn.ConvGemm), m, K.StGcn.ConvGemm.Specialization, K.StGcn.ConvGemm.Threads, K.StGcn.ConvGemm.MinGroupsPerSM);
        // The bf16 convolutions for 1 and 2 per SM (the visit's A/B); the tf32 ones share their structure.
        foreach (var m in new[] { nameof(K.StGcn.TensorCoreConv.ForwardBf16), nameof(K.StGcn.TensorCoreConv.InputGradBf16), nameof(K.StGcn.TensorCoreConv.WeightGradBf16) })
            foreach (int perSm in new[] { 1, 2 })
                Add(typeof(K.StGcn.TensorCoreConv), m, K.StGcn.TensorCoreConv.SpecializationFor(perSm), K.StGcn.TensorCoreConv.Threads, perSm, $"TensorCoreConv.{m} ({perSm}/SM)");
        // Attention with the dynamic shared memory of the DiT's 36 tokens (15 KB: the occupancy the launch gets).
        int attentionShared = K.JointAttention.SharedFloats(36) * sizeof(float);
        Add(typeof(K.JointAttention), nameof(K.JointAttention.Forward), KernelSpecialization.Empty, K.JointAttention.Threads, 0, dynamicShared: attentionShared);
        Add(typeof(K.JointAttention), nameof(K.JointAttention.Backward), KernelSpecialization.Empty, K.JointAttention.Threads, 0, dynamicShared: attentionShared);
        Add(typeof(K.JointAttention), nameof(K.JointAttention.SkeletonRow), KernelSpecialization.Empty, 32, 0);
        Add(typeof(K.JointAttention), nameof(K.JointAttention.SkeletonRowMix), K.JointAttention.MixSpecialization, 12 * 32, 1);   // the paper's 12 heads
        // The tiled attention at the paper's heads (S 36, D 64): 35 KB forward, 44 KB backward.
        Add(typeof(K.JointAttention), nameof(K.JointAttention.ForwardTiled), K.JointAttention.TiledForwardSpecialization, K.JointAttention.TiledThreads,
            K.JointAttention.TiledForwardGroupsPerSM, dynamicShared: K.JointAttention.TiledForwardSharedFloats(36, 64) * sizeof(float));
        Add(typeof(K.JointAttention), nameof(K.JointAttention.BackwardTiled), K.JointAttention.TiledBackwardSpecialization, K.JointAttention.TiledThreads,
            K.JointAttention.TiledBackwardGroupsPerSM, dynamicShared: K.JointAttention.TiledBackwardSharedFloats(36, 64) * sizeof(float));
        // The ST-GCN graph kernels (static shared memory: 35 KB forward and input gradient, 25 KB importance partials).
        foreach (var m in new[] { nameof(K.StGcn.GraphAggregate.Forward), nameof(K.StGcn.GraphAggregate.InputGrad), nameof(K.StGcn.GraphAggregate.ImportancePartial) })
            Add(typeof(K.StGcn.GraphAggregate), m, KernelSpecialization.Empty, K.StGcn.GraphAggregate.Threads, 0);
        Add(typeof(K.LayerNormModulate), nameof(K.LayerNormModulate.Forward), KernelSpecialization.Empty, K.LayerNormModulate.Threads, 0);
        Add(typeof(K.LayerNormModulate), nameof(K.LayerNormModulate.ForwardVec), KernelSpecialization.Empty, K.LayerNormModulate.Threads, 0);
        Add(typeof(K.LayerNormModulate), nameof(K.LayerNormModulate.GatedForwardVec), KernelSpecialization.Empty, K.LayerNormModulate.Threads, 0);
        Add(typeof(K.LayerNormModulate), nameof(K.LayerNormModulate.BackwardInput), KernelSpecialization.Empty, K.LayerNormModulate.Threads, 0);
        Add(typeof(K.LayerNormModulate), nameof(K.LayerNormModulate.BackwardInputVec), KernelSpecialization.Empty, K.LayerNormModulate.Threads, 0);
        return d;
    }

    private static IEnumerable<string> Names() => Kernels.Keys;

    [TestCaseSource(nameof(Names))]
    public void FitsTheBlocksPerSmItIsBoundedFor(string name)
    {
        var (method, spec, threads, bound, dynamicShared) = Kernels[name];
        var r = KernelResources.Of(Device.Accelerator, method, spec, threads, dynamicShared);
        Console.WriteLine($"resources {name}: {r.Registers} registers, {r.LocalBytes} B local (stack + spills), {r.StaticSharedBytes} B shared{(dynamicShared > 0 ? $" + {dynamicShared} B dynamic" : "")}, " +
                          $"{r.BlocksPerSM} blocks/SM at {threads} threads (bounded for {(bound > 0 ? bound.ToString() : "-")}){(r.Lifted ? "; asm operand slots lifted in the PTX" : "")}");
        Assert.That(r.BlocksPerSM, Is.GreaterThanOrEqualTo(Math.Max(1, bound)), $"{name}: blocks per SM at {threads} threads");
    }
}
