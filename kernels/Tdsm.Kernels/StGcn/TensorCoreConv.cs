using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// The ST-GCN convolutions of <see cref="ConvGemm"/> (same <see cref="ConvArgs"/>, same products, same epilogues and
/// split-K partials reduced by <see cref="ConvGemm.ReduceSplits"/>) on tensor cores: the compute core of
/// <see cref="TensorCoreGemm"/> (128×128 blocks, K-steps of 32, 8 warps of 64×32, fp32 accumulation; the "Bf16" kernels
/// <c>mma.sync.m16n8k16</c> on bf16, the "Tf32" kernels <c>m16n8k8</c> on tf32) fed by the conv GEMM's gathered staging.
/// Operands are rounded (bf16: nearest even, <see cref="Bf16.Pack"/>; tf32: <see cref="Tf32.Bits"/>) as they are stored
/// into shared memory, in the shared layout of <see cref="TensorCoreGemm"/>; the bias and the stores are fp32.
/// <list type="bullet">
/// <item>Staging: each thread owns two k of the K-step (bf16: 2w, 2w+1, one packed shared word; tf32: w, w+16,
/// two words) and 8 rows 16 apart. An operand contiguous along k in memory (w in the forward, dY and x in the weight gradient) is staged
/// with a warp on 2 rows × 32 consecutive k; one contiguous along rows (the gathered x of the forward, W and dY of the
/// input gradient) with a warp on 16 consecutive rows × 2 k pairs. So a thread has only two k indices, each tracked
/// per K-step without divisions (<see cref="ConvGemm.KDiv"/>, <see cref="ConvGemm.KSample"/>, stepped by this K-step), and 8 gathered rows whose fixed part
/// is computed once (<see cref="ConvGemm.ForwardColumn"/> etc.); loads are branch-free (<see cref="ConvGemm.Load"/>).</item>
/// <item>Square blocks only: a 64-channel layer pads its 64 rows to 128 (the fp32 kernels' 64×256 blocks have no
/// tensor-core counterpart yet), and the weight gradient is never swapped (<see cref="PlanWeightGrad"/>).</item>
/// </list>
/// The kernel bodies are generated (TensorCoreConv.Kernel.g.cs, from gen/tensorcore_conv.py); the helpers are here.
/// </summary>
public static partial class TensorCoreConv
{
    /// <summary>Rows and columns of a block.</summary>
    public const int Tile = 128;
    /// <summary>K per shared-memory stage (2 bf16 / 4 tf32 mma k groups).</summary>
    public const int KStep = 32;
    /// <summary>Threads per group.</summary>
    public const int Threads = 256;
    /// <summary>Groups per SM the kernels are compiled for: 1, because at 2 (ptxas's cap of 128 registers) ptxas 11.8
    /// spilled 56-88 bytes per kernel (64 accumulators, 32 staged floats, 8 gathered rows and 2 trackers per thread).</summary>
    public const int MinGroupsPerSM = 1;
    /// <summary>The launch bounds to load the kernels with.</summary>
    public static KernelSpecialization Specialization => new(Threads, MinGroupsPerSM);

    /// <summary>Launch bounds for <paramref name="groupsPerSM"/> groups per SM (2: 128 registers, with the spills above).</summary>
    public static KernelSpecialization SpecializationFor(int groupsPerSM) => new(Threads, groupsPerSM);

    /// <summary>Grid x (column blocks) and y (row blocks) of an (M, N) product.</summary>
    public static (int X, int Y) Blocks(long m, long n) =>
        (checked((int)((n + Tile - 1) / Tile)), checked((int)((m + Tile - 1) / Tile)));

    /// <summary>
    /// The launch of a weight gradient on these kernels: square blocks, not swapped, and the K-split rule of
    /// <see cref="ConvGemm.PlanWeightGrad"/> (the smallest count within 5% of the best modelled time, K per split
    /// ≥ <see cref="ConvGemm.MinSplitK"/>, at most <see cref="ConvGemm.MaxPartials"/> partial floats), K per split
    /// a multiple of <see cref="KStep"/>.
    /// </summary>
    public static ConvWeightGradPlan PlanWeightGrad(ConvArgs p) => PlanSplits(p.Cout, (long)p.Cin * p.Kt, (long)p.B * p.Tout * p.V);

    /// <summary>Square blocks and the K-split of a weight gradient C (m, n) summed over k (<see cref="PlanWeightGrad"/>'s
    /// rule; also the packed weight gradient's, <see cref="PackedConv.WeightGrad"/>, over its padded K).</summary>
    public static ConvWeightGradPlan PlanSplits(long m, long n, long k)
    {
        var (gx, gy) = Blocks(m, n);
        var (splits, kPer) = Gemm.ChooseSplits((long)gx * gy, k, ConvGemm.MostSplits(m, n, k), KStep);
        return new ConvWeightGradPlan(ConvTile.Square, false, splits, checked((int)kPer), gx, gy);
    }

    /// <summary>c[row·rowLength + o_j] = v_j for the columns inside (o_j ≥ 0), rows inside m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store2(ArrayView<float> c, int m, int rowLength, int row, int o0, int o1, float v0, float v1)
    {
        if (row >= m) return;
        int i = row * rowLength;
        if (o0 >= 0) c[i + o0] = v0;
        if (o1 >= 0) c[i + o1] = v1;
    }
}
