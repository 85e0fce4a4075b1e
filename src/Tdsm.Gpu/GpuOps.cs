using ILGPU;
using ILGPU.Runtime;
using Tdsm.Kernels;
using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;
using K = Tdsm.Kernels;

namespace Tdsm.Gpu;

/// <summary>
/// The ILGPU tier of the op set. Every kernel is loaded once here; buffers are owned by this
/// object and freed by <see cref="Dispose"/>. Launches are asynchronous on the default stream;
/// downloads synchronise. Shapes are validated on the host before a launch.
/// </summary>
public sealed class GpuOps : IOps, IDisposable
{
    private readonly GpuDevice _device;
    private readonly Accelerator _acc;
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _buffers = [];
    private MemoryBuffer1D<int, Stride1D.Dense> _index;
    private MemoryBuffer1D<float, Stride1D.Dense> _hinge;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _alphas, _tTable, _dummy;
    private float[] _alphasUploaded = [];   // host copy of what _alphas holds
    private const int MaxTimestep = 1024;

    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> _gemm, _gemmVecABt;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, int> _gemmReduce;
    private MemoryBuffer1D<float, Stride1D.Dense>? _gemmSplits;   // split-K partial products, grown on demand (Workspace)
    // The fp32-operand tensor-core kernels by (precision, blocks per SM they are bounded for), loaded on first use.
    private readonly Dictionary<(GemmPrecision, int), Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>> _tensorCore = [];
    private Action<KernelConfig, ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs>? _gemmPacked;
    private Action<Index1D, ArrayView<float>, ArrayView<uint>>? _packBf16;
    private Action<KernelConfig, ArrayView<float>, ArrayView<uint>, ArrayView<uint>, int, int, int>? _packBf16Transposed;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>, AdamWArgs, long, long>? _adamwPacked;
    private Action<KernelConfig, ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs>? _gemmLdMatrix;
    private Action<KernelConfig, ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs>? _gemmLdMatrixWide;
    private Action<KernelConfig, ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs, long, long>? _gemmLdMatrixAsync, _gemmLdMatrixWideAsync, _gemmWgmma, _gemmWgmmaDeep;
    private GpuTensor? _bound;                                               // the BindParameters scope's parameters
    // The bound parameters' bf16 pairs; a product's packed operands (_packedAT: dy's columns when a Linear backward packs dy
    // for both of its products in one pass); Mlp's hidden.
    private MemoryBuffer1D<uint, Stride1D.Dense>? _boundPacked, _packedA, _packedAT, _packedB, _packedHidden;
    private bool _boundPackedValid;
    // The output of the last LN-modulate, GELU or joint attention (its text stream), cast to bf16 pairs in _packedA by its
    // kernel (address and length of the output, and which op), for the product that reads it next; any other op forgets it (V),
    // so nothing can have written the output or _packedA in between.
    private (long At, long Length, CastBy By)? _castHandOff;

    private enum CastBy { LayerNorm, Gelu, Attention }
    private readonly MemoryBuffer1D<uint, Stride1D.Dense> _dummyWords;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _silu, _gelu, _geluFast;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<uint>> _geluFastPacked, _geluFastPacked4;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _gelu4, _geluFast4;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _siluBwd, _geluBwd, _geluBwdFast;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _add;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int> _addRows;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<double>, int, int, int> _sumRowsPartial;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<float>, int, int> _sumRowsFinish;
    private MemoryBuffer1D<double, Stride1D.Dense> _columnPartials;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ResidualArgs> _gated, _gated4;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ResidualArgs> _gatedBwd;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>, LayerNormArgs> _ln, _lnVec;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<uint>, LayerNormArgs> _gatedLnVec;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormArgs> _lnBwdInput, _lnBwdInputVec;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormArgs> _lnBwdMod;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> _attn;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>, AttentionArgs> _attnTiled;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs, int> _attnSkeletonRow;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int> _skeletonQueries;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionArgs> _valueWeightsByHead;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> _skeletonMix;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> _skeletonCombine;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> _attnBwd, _attnTiledBwd;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> _qsample;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _temb;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, float> _tdloss;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> _tdlossReduce;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> _rowMse;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int> _argmin;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWArgs> _adamw;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> _gather;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _gatherT;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> _gatherVec;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int> _gatherTVec;
    private readonly Action<Index1D, ArrayView<float>, ulong, ulong> _normal;
    private readonly Action<Index1D, ArrayView<float>, int, ulong, ulong> _below;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _notEqual;

    /// <summary>"gpu" on CUDA, "gpu-sim" on the simulator, with "-bf16" / "-tf32" when the GEMMs use tensor cores.</summary>
    public string Name => (_device.IsCuda ? "gpu" : "gpu-sim") + GemmPrecision switch { GemmPrecision.Bf16 => "-bf16", GemmPrecision.Tf32 => "-tf32", _ => "" };

    /// <summary>Bytes this op set holds on the device now: tensors and the GEMM workspaces (split-K partial products, packed
    /// bf16 operands); the small fixed scratch of the other kernels is excluded.</summary>
    public long AllocatedBytes { get; private set; }

    /// <summary>The most tensor memory held at once.</summary>
    public long PeakAllocatedBytes { get; private set; }

    /// <summary>The device this op set runs on.</summary>
    public GpuDevice Device => _device;

    /// <summary>Which GEMM kernel MatMul, Linear and LinearBackward run (default fp32: the parity path).</summary>
    public GemmPrecision GemmPrecision { get; set; } = GemmPrecision.Fp32;

    /// <summary>
    /// Blocks per SM the fp32-operand tensor-core kernels are compiled for (launch bounds): 2 (the default) caps them at
    /// 128 registers, so two blocks of 8 warps share an SM and one waits at its barriers while the other computes, for a
    /// few spilled words (ptxas sm_80: bf16 24 bytes, tf32 128); 1 leaves them their 154-160 registers and one block
    /// per SM. The same bits either way; the GEMM benchmarks time both. The packed-operand kernels are always compiled
    /// for 2 (KernelPacked needs 122 registers, KernelLdMatrix 134 unbounded and 128 without spills bounded).
    /// </summary>
    public int TensorCoreGroupsPerSM
    {
        get => _tensorCoreGroupsPerSM;
        set => _tensorCoreGroupsPerSM = value is 1 or 2 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "1 or 2 blocks per SM");
    }
    private int _tensorCoreGroupsPerSM = K.TensorCoreGemm.MinGroupsPerSM;

    /// <summary>
    /// With <see cref="GemmPrecision.Bf16"/>, the kernel for the products on packed bf16 operands inside a
    /// <see cref="BindParameters"/> scope (zero-shot scoring, training); <see cref="PackedGemmKernel.Off"/> keeps every
    /// product on the fp32-operand kernel. Results are the same bits either way on the mma.sync kernels; the wgmma kernels
    /// accumulate inside an instruction in the hardware's order (the H200 gave the same scores to the bit). The default is
    /// <see cref="DefaultPackedGemm"/>'s for the device. The environment variable TDSM_PACKED_GEMM (a
    /// <see cref="PackedGemmKernel"/> name, e.g. LdMatrixAsync, or Off) sets the kernel of every GpuOps instead, so that
    /// `train` and `eval` can run another kernel without a rebuild.
    /// </summary>
    public PackedGemmKernel PackedGemm { get; set; }

    /// <summary>
    /// The packed kernel a device runs by default: on a Hopper GPU (CUDA, compute capability 9.0) <see cref="PackedGemmKernel.WgmmaDeep"/>,
    /// the fastest on the H200 (2026-11-28, bench/RESULTS.md: 408-489 TFLOP/s at the DiT's shapes and 8192³, paper-config
    /// training 86.0 ms per step against 94.4 on LdMatrixAsync and 101.0 on LdMatrix, scoring 37,201 rows/s against 28,704 on
    /// LdMatrix); elsewhere <see cref="PackedGemmKernel.LdMatrix"/>, the fastest on the H100 of the mma.sync kernels then
    /// measured (2026-11-27), and the simulator's (whose tests compare kernels explicitly).
    /// </summary>
    public static PackedGemmKernel DefaultPackedGemm(Accelerator accelerator) =>
        accelerator is ILGPU.Runtime.Cuda.CudaAccelerator && PtxTarget.CanRunSm90a(accelerator) ? PackedGemmKernel.WgmmaDeep : PackedGemmKernel.LdMatrix;

    /// <summary>The packed kernel a TDSM_PACKED_GEMM value names (case-insensitive), <paramref name="whenEmpty"/> when empty.</summary>
    /// <exception cref="ArgumentException">Not the name of a <see cref="PackedGemmKernel"/> (numbers included): failing
    /// loudly rather than silently running another kernel.</exception>
    public static PackedGemmKernel PackedGemmSetting(string? name, PackedGemmKernel whenEmpty = PackedGemmKernel.LdMatrix)
    {
        if (string.IsNullOrEmpty(name)) return whenEmpty;
        return TryParsePackedGemm(name, out var kind) ? kind
            : throw new ArgumentException($"TDSM_PACKED_GEMM='{name}': expected one of {string.Join(", ", Enum.GetNames<PackedGemmKernel>())}");
    }

    /// <summary>The <see cref="PackedGemmKernel"/> <paramref name="name"/> names (case-insensitive; numbers are not names).</summary>
    public static bool TryParsePackedGemm(string name, out PackedGemmKernel kind) =>
        Enum.TryParse(name, ignoreCase: true, out kind) && Enum.IsDefined(kind) && !int.TryParse(name, out _);

    /// <summary>
    /// Called after each GEMM launch and each bf16 pack pass inside an op, with its kind and sizes (e.g. "GEMM packed-LdMatrix
    /// 17920x3072x768", "PackBf16 rows 17920x768"), so that a profile (bench --profile with ProfiledOps' timeline) charges
    /// every product and pack to its own row and only the rest (bias sums, epilogue kernels) to the op around them.
    /// Null (the default) costs nothing.
    /// </summary>
    public Action<string>? DetailMark { get; set; }

    /// <summary>
    /// Whether the joint attention runs on the register-tiled kernels (<see cref="K.JointAttention.ForwardTiled"/>, the
    /// default) where they fit (<see cref="UsesTiledAttention"/>), or always on the scalar ones (for A/B benchmarks).
    /// The environment variable TDSM_TILED_ATTENTION=0 turns them off for a whole process (the GPU visit's fallback if the
    /// tiled kernels, not yet run on a GPU, fault).
    /// </summary>
    public bool TiledAttention { get; set; } = Environment.GetEnvironmentVariable("TDSM_TILED_ATTENTION") != "0";

    /// <summary>
    /// Whether <see cref="JointAttentionSkeletonRowFromText"/> runs reassociated (<see cref="K.JointAttention.SkeletonRowMix"/>, the
    /// default, where it fits) or always through the text keys and values (its fallback). TDSM_SKELETON_ROW_MIX=0 turns the
    /// reassociated path off for a whole process (the GPU visit's fallback if its kernel, not yet run on a GPU, faults).
    /// </summary>
    public bool SkeletonRowMix { get; set; } = Environment.GetEnvironmentVariable("TDSM_SKELETON_ROW_MIX") != "0";

    /// <summary>
    /// Whether the tensor-core GEMMs may store a block that lies inside C as 64-bit column pairs with the bias read once
    /// (<see cref="GemmArgs.PairStores"/>, the default; given an 8-byte aligned C, N even and a plain epilogue), or always
    /// take the general per-element epilogue (the same bits; for the gemm-probe's A/B).
    /// </summary>
    public bool EpiloguePairStores { get; set; } = true;

    /// <summary>On: the fp32 SIMT GEMM runs x·Wᵀ products whose operands allow it (16-byte aligned, K a multiple of 4) on
    /// <see cref="K.Gemm.KernelVecABt"/>, which stages them in 16-byte chunks: one 128-bit load per thread, operand and K-step
    /// instead of four scalar ones, the same tile in shared memory, so the same bits. Off by default (TDSM_SIMT_VECTOR_STAGING=1
    /// turns it on): the H200 visit of 2026-11-28 measured the scalar kernel 1.7 % faster at 17920x3072x768 (2.269 vs 2.307 ms),
    /// though the 128-bit path issues fewer instructions; gemm-probe's fp32-vector and fp32-scalar time both.</summary>
    public bool SimtVectorStaging { get; set; } = Environment.GetEnvironmentVariable("TDSM_SIMT_VECTOR_STAGING") == "1";

    /// <summary>fp32 products launched on <see cref="K.Gemm.KernelVecABt"/> (16-byte staging) since this instance was made.</summary>
    public long SimtVectorProducts { get; private set; }

    /// <summary>How many joint-attention launches (forward and backward) ran on the tiled kernels, for tests.</summary>
    public long TiledAttentionLaunches { get; private set; }

    /// <summary>How many JointAttentionSkeletonRowFromText calls ran reassociated (<see cref="K.JointAttention.SkeletonRowMix"/>), for tests.</summary>
    public long SkeletonRowMixLaunches { get; private set; }

    /// <summary>How many products have run on packed operands (<see cref="PackedGemm"/>), for tests and benchmarks.</summary>
    public long PackedProducts { get; private set; }

    /// <summary>How many packed products took their A operand as LN-modulate cast it (no pack pass), for tests.</summary>
    public long LayerNormCastOperands { get; private set; }

    /// <summary>How many packed products took their A operand as the training step's GELU cast it (no pack pass), for tests.</summary>
    public long GeluCastOperands { get; private set; }

    /// <summary>How many packed products took their A operand as the joint attention cast its text stream's output (no pack pass), for tests.</summary>
    public long AttentionCastOperands { get; private set; }

    /// <summary>How many Linear backwards packed dy once for both of their products (its rows and its columns), for tests.</summary>
    public long SharedDyPacks { get; private set; }

    /// <summary>How many of those were MLPs whose hidden activations went from fc1's epilogue to fc2 as bf16 pairs (<see cref="Mlp"/>).</summary>
    public long PackedMlps { get; private set; }

    /// <summary>How many AdamW launches also wrote the bound parameters' bf16 copy (<see cref="AdamWStep"/>).</summary>
    public long PackedAdamWSteps { get; private set; }

    public GpuOps(GpuDevice device)
    {
        _device = device;
        _acc = device.Accelerator;
        PackedGemm = PackedGemmSetting(Environment.GetEnvironmentVariable("TDSM_PACKED_GEMM"), DefaultPackedGemm(_acc));
        _gemm = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(K.Gemm.Kernel, K.Gemm.Specialization);
        _gemmVecABt = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(K.Gemm.KernelVecABt, K.Gemm.Specialization);
        _gemmReduce = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs, int>(K.Gemm.ReduceSplits);
        _silu = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(K.Activations.SiluForward);
        _gelu = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(K.Activations.GeluForward);
        _siluBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(K.Activations.SiluBackward);
        _geluBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(K.Activations.GeluBackward);
        _geluFast = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(K.Activations.GeluForwardFast);
        _geluFastPacked = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<uint>>(K.Activations.GeluForwardFastPacked);
        _geluFastPacked4 = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<uint>>(K.Activations.GeluForwardFastPacked4);
        _gelu4 = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(K.Activations.GeluForward4);
        _geluFast4 = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(K.Activations.GeluForwardFast4);
        _geluBwdFast = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(K.Activations.GeluBackwardFast);
        _add = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Residual.Add);
        _addRows = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(Residual.AddBroadcastRows);
        _sumRowsPartial = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<double>, int, int, int>(Residual.SumRowsPartial);
        _sumRowsFinish = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<float>, int, int>(Residual.SumRowsFinish);
        _gated = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ResidualArgs>(Residual.GatedForward);
        _gated4 = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ResidualArgs>(Residual.GatedForward4);
        _gatedBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ResidualArgs>(Residual.GatedBackward);
        _ln = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>, LayerNormArgs>(K.LayerNormModulate.Forward);
        _lnVec = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>, LayerNormArgs>(K.LayerNormModulate.ForwardVec);
        _gatedLnVec = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<uint>, LayerNormArgs>(K.LayerNormModulate.GatedForwardVec);
        _lnBwdInput = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormArgs>(K.LayerNormModulate.BackwardInput);
        _lnBwdInputVec = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormArgs>(K.LayerNormModulate.BackwardInputVec);
        _lnBwdMod = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormArgs>(K.LayerNormModulate.BackwardModulation);
        _attn = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(K.JointAttention.Forward);
        _attnBwd = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(K.JointAttention.Backward);
        _attnSkeletonRow = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs, int>(K.JointAttention.SkeletonRow);
        _skeletonQueries = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(K.JointAttention.SkeletonRowQueries);
        _valueWeightsByHead = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, AttentionArgs>(K.JointAttention.ValueWeightsByHead);
        _skeletonMix = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(
            K.JointAttention.SkeletonRowMix, K.JointAttention.MixSpecialization);
        _skeletonCombine = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(
            K.JointAttention.SkeletonRowCombine);
        _attnTiled = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>, AttentionArgs>(K.JointAttention.ForwardTiled,
            K.JointAttention.TiledForwardSpecialization);
        _attnTiledBwd = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(K.JointAttention.BackwardTiled,
            K.JointAttention.TiledBackwardSpecialization);
        _qsample = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(Diffusion.QSample);
        _temb = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(Diffusion.TimestepEmbedding);
        _tdloss = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, float>(Diffusion.TdLoss);
        _tdlossReduce = _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(Diffusion.TdLossReduce);
        _rowMse = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(Diffusion.RowMse);
        _argmin = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(Diffusion.ArgMinRows);
        _adamw = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWArgs>(K.AdamW.Step);
        _gather = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(Gather.Rows);
        _gatherT = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(Gather.RowsByTensor);
        _gatherVec = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(Gather.RowsVec);
        _gatherTVec = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(Gather.RowsByTensorVec);
        _normal = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ulong, ulong>(Sampling.Normal);
        _below = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, ulong, ulong>(Sampling.Below);
        _notEqual = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Sampling.NotEqual);

        _index = _acc.Allocate1D<int>(1024);
        _columnPartials = _acc.Allocate1D<double>(1 << 16);
        _hinge = _acc.Allocate1D<float>(256);
        _alphas = _acc.Allocate1D<float>(MaxTimestep);
        _dummy = _acc.Allocate1D<float>(1);
        _dummyWords = _acc.Allocate1D<uint>(2); // two words: LayerNormModulate.ForwardVec views the packed output as 64-bit pairs
        // The sinusoidal embedding of every integer timestep, computed once by the reference code.
        var table = new float[MaxTimestep * Reference.TimestepEmbedding.Dim];
        var ts = Enumerable.Range(0, MaxTimestep).Select(i => (float)i).ToArray();
        Reference.TimestepEmbedding.Forward<float>(ts, table, MaxTimestep);
        _tTable = _acc.Allocate1D(table);
    }

    // Every op reaches its tensors' device memory through V, which therefore also forgets the cast hand-off (_castHandOff).
    private ArrayView<float> V(Tensor t)
    {
        _castHandOff = null;
        return ((GpuTensor)t).View;
    }

    private static long Address(Tensor t) => ((GpuTensor)t).View.LoadEffectiveAddressAsPtr().ToInt64();

    public Tensor Allocate(params int[] shape)
    {
        long t = shape.Aggregate(1L, (a, b) => a * b);
        var buf = _acc.Allocate1D<float>(Math.Max(1, t));
        buf.MemSetToZero();
        _buffers.Add(buf);
        AllocatedBytes += buf.LengthInBytes;
        PeakAllocatedBytes = Math.Max(PeakAllocatedBytes, AllocatedBytes);
        return new GpuTensor(buf.View.SubView(0, t), shape);
    }

    public Tensor View(Tensor storage, int offset, params int[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var v = ((GpuTensor)storage).View; // not V: a view writes nothing, so the LN-modulate hand-off stands
        if (offset < 0 || offset + n > v.Length) throw new ArgumentException($"view [{offset}, {offset + n}) outside a tensor of {v.Length}");
        return new GpuTensor(v.SubView(offset, n), shape);
    }

    public void Upload(ReadOnlySpan<float> source, Tensor destination)
    {
        if (source.Length != destination.Length) throw new ArgumentException($"upload of {source.Length} values into {destination}");
        V(destination).CopyFromCPU(source);
    }

    public void Download(Tensor source, Span<float> destination)
    {
        if (destination.Length != source.Length) throw new ArgumentException($"download of {source} into {destination.Length} values");
        _acc.Synchronize();
        V(source).CopyToCPU(destination);
    }

    public void Zero(Tensor t) => V(t).MemSetToZero();

    /// <summary>Waits for every queued launch.</summary>
    public void Synchronize() => _acc.Synchronize();

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        Check(a, y.Length, "Add a"); Check(b, y.Length, "Add b");
        if (y.Length > 0) _add(y.Length, V(a), V(b), V(y));
    }

    public void AddBroadcastRows(Tensor y, Tensor bias, int rows)
    {
        if (y.Length != rows * bias.Length) throw new ArgumentException($"AddBroadcastRows: y {y} is not {rows} rows of {bias.Length}");
        if (y.Length > 0) _addRows(y.Length, V(y), V(bias), bias.Length);
    }

    public void SumRowsInto(Tensor dy, Tensor db, int rows)
    {
        if (dy.Length != rows * db.Length) throw new ArgumentException($"SumRowsInto: dy {dy} is not {rows} rows of {db.Length}");
        if (rows == 0 || db.Length == 0) return;
        // ~√rows segments of ~√rows rows: both stages stay short and the first has segments·W threads.
        int segment = Math.Max(16, (int)Math.Sqrt(rows));
        int segments = (rows + segment - 1) / segment;
        long need = (long)segments * db.Length;
        if (_columnPartials.Length < need)
        {
            _acc.Synchronize();
            _columnPartials.Dispose();
            _columnPartials = _acc.Allocate1D<double>(need);
        }
        var partial = ((ArrayView<double>)_columnPartials.View).SubView(0, need);
        _sumRowsPartial((int)need, V(dy), partial, rows, db.Length, segment);
        _sumRowsFinish(db.Length, partial, V(db), segments, db.Length);
    }

    /// <summary>C (M,N) (= or +=) op(A)·op(B) (+ bias) on the device; the layout says which operand is transposed.</summary>
    public void MatMul(Tensor a, Tensor b, Tensor c, Tensor? bias, GemmLayout layout, int m, int n, int k, bool accumulate)
    {
        Check(a, (long)m * k, "MatMul A"); Check(b, (long)n * k, "MatMul B"); Check(c, (long)m * n, "MatMul C");
        LaunchGemm(a, b, c, bias, layout, m, n, k, accumulate);
    }

    /// <summary>
    /// Packs <paramref name="src"/> (rows, cols) into bf16 pairs for <see cref="MatMulPacked"/>: (rows, cols/2)
    /// words, or with <paramref name="transpose"/> the packed rows of srcᵀ, (cols, rows/2) words.
    /// </summary>
    public void PackBf16(Tensor src, ArrayView<uint> dst, int rows, int cols, bool transpose)
    {
        Check(src, (long)rows * cols, "PackBf16 src");
        int packedDim = transpose ? rows : cols;
        if (packedDim % 2 != 0) throw new ArgumentException($"PackBf16: the packed dimension ({(transpose ? "rows" : "cols")} = {packedDim}) must be even");
        long words = (long)rows * cols / 2;
        if (dst.Length < words) throw new ArgumentException($"PackBf16: dst holds {dst.Length} words, {words} needed");
        if (words == 0) return;
        if (transpose)
        {
            LaunchPackTransposed(V(src), dst.SubView(0, words), _dummyWords.View, rows, cols, alsoRows: false);
            DetailMark?.Invoke($"PackBf16 transposed {rows}x{cols}");
            return;
        }
        _packBf16 ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>>(K.Bf16.PackRows);
        _packBf16(checked((int)words), V(src), dst.SubView(0, words));
        DetailMark?.Invoke($"PackBf16 rows {rows}x{cols}");
    }

    // src (rows, cols) -> dst: the packed rows of srcᵀ; with alsoRows, dstRows: src's packed rows too, from the same read.
    private void LaunchPackTransposed(ArrayView<float> src, ArrayView<uint> dst, ArrayView<uint> dstRows, int rows, int cols, bool alsoRows)
    {
        _packBf16Transposed ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<uint>, ArrayView<uint>, int, int, int>(K.Bf16.PackRowsTransposed);
        var grid = new Index2D((rows + K.Bf16.TransposeTileRows - 1) / K.Bf16.TransposeTileRows, (cols + K.Bf16.TransposeTileCols - 1) / K.Bf16.TransposeTileCols);
        _packBf16Transposed(new KernelConfig(grid, new Index2D(K.Bf16.TransposeThreads, 1)), src, dst, dstRows, rows, cols, alsoRows ? 1 : 0);
    }

    /// <summary>
    /// C (M,N) (= or +=) A·Bᵀ (+ bias) on tensor cores from operands already packed as bf16 pairs
    /// (<see cref="PackBf16"/>): A (M, K/2) and B (N, K/2) words, K even (<see cref="K.TensorCoreGemm.KernelPacked"/>).
    /// </summary>
    public void MatMulPacked(ArrayView<uint> a, ArrayView<uint> b, Tensor c, Tensor? bias, int m, int n, int k, bool accumulate) =>
        LaunchPacked(PackedGemmKernel.Packed, a, b, V(c), bias, m, n, k, accumulate, gelu: false);

    /// <summary>
    /// <see cref="MatMulPacked"/> through <see cref="K.TensorCoreGemm.KernelLdMatrix"/> (128-bit staging, ldmatrix
    /// fragments): the same result; K must be a multiple of 8 and both operands 16-byte aligned.
    /// </summary>
    public void MatMulPackedLdMatrix(ArrayView<uint> a, ArrayView<uint> b, Tensor c, Tensor? bias, int m, int n, int k, bool accumulate) =>
        LaunchPacked(PackedGemmKernel.LdMatrix, a, b, V(c), bias, m, n, k, accumulate, gelu: false);

    /// <summary><see cref="MatMulPacked"/> through the packed-operand kernel <paramref name="kind"/> (not Off): the same result.</summary>
    public void MatMulPacked(PackedGemmKernel kind, ArrayView<uint> a, ArrayView<uint> b, Tensor c, Tensor? bias, int m, int n, int k, bool accumulate) =>
        LaunchPacked(kind, a, b, V(c), bias, m, n, k, accumulate, gelu: false);

    // Every tensor-core GEMM kernel: one group of 256 threads per 128x128 block of C (M, N) and K-split.
    private static KernelConfig TensorCoreLaunch(int m, int n, int splits = 1, int threads = K.TensorCoreGemm.Threads) => new(
        new Index3D((n + K.TensorCoreGemm.TileN - 1) / K.TensorCoreGemm.TileN, (m + K.TensorCoreGemm.TileM - 1) / K.TensorCoreGemm.TileM, splits),
        new Index3D(threads, 1, 1));

    /// <summary>How many products ran split along K (partial products, then <see cref="K.Gemm.ReduceSplits"/>), for tests.</summary>
    public long SplitProducts { get; private set; }

    // C (M, N) from a kernel launched with `splits` K-splits of kPer: the launch writes the (splits, M, N) partial products
    // into the workspace (no bias, accumulate or activation), then ReduceSplits sums them in split order into C and
    // applies those. launch(part, partArgs, splits).
    private void LaunchSplit(int splits, int kPer, int m, int n, ArrayView<float> c, Tensor? bias, GemmArgs args,
        Action<ArrayView<float>, GemmArgs, int> launch)
    {
        long need = (long)splits * m * n;
        Workspace(ref _gemmSplits, need);
        var part = ((ArrayView<float>)_gemmSplits!.View).SubView(0, need);
        // The workspace starts the buffer: 8-byte aligned for the tensor-core kernels' pair stores.
        launch(part, args with { Accumulate = 0, HasBias = 0, Gelu = 0, GeluGrad = 0, PackedOut = 0, KSplit = kPer, PairStores = EpiloguePairStores ? 1 : 0 }, splits);
        _gemmReduce(checked(m * n), part, c, bias is null ? _dummy.View : V(bias), args, splits);
        SplitProducts++;
    }

    // Checks and launches one of the packed-operand kernels (gelu: C = GELU(product + bias), not with accumulate;
    // geluGradOf: C = product ⊙ GELU'(bias), the bias then being the (M, N) pre-activation, as in LaunchGemm).
    // packedOut: C is written as bf16 pairs ((M, N/2) words viewed as floats), the packed A of a following product.
    private void LaunchPacked(PackedGemmKernel kind, ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> c, Tensor? bias, int m, int n, int k, bool accumulate, bool gelu,
        bool packedOut = false, bool geluGradOf = false)
    {
        string what = kind switch { PackedGemmKernel.Packed => "MatMulPacked", PackedGemmKernel.LdMatrix => "MatMulPackedLdMatrix", _ => $"MatMulPacked({kind})" };
        int chunk = kind == PackedGemmKernel.Packed ? 2 : 8, align = kind == PackedGemmKernel.Packed ? 4 : 16;
        if (k % chunk != 0)
            throw new ArgumentException(chunk == 2 ? $"{what}: K = {k} must be even (bf16 pairs along K)" : $"{what}: K = {k} must be a multiple of 8 (16-byte chunks of bf16)");
        if (a.Length < (long)m * k / 2) throw new ArgumentException($"{what} A: {a.Length} words, ({m}, {k / 2}) needed");
        if (b.Length < (long)n * k / 2) throw new ArgumentException($"{what} B: {b.Length} words, ({n}, {k / 2}) needed");
        long cLength = packedOut ? (long)m * n / 2 : (long)m * n;
        if (c.Length < cLength) throw new ArgumentException($"{what} C: {c.Length} elements, {cLength} needed");
        if (bias is not null) Check(bias, geluGradOf ? (long)m * n : n, what + (geluGradOf ? " pre-activation" : " bias"));
        if (geluGradOf && (bias is null || gelu || packedOut)) throw new ArgumentException($"{what}: the GELU' epilogue needs the pre-activation and a plain fp32 C");
        if ((gelu || geluGradOf || packedOut) && accumulate) throw new ArgumentException("a GELU or packed epilogue cannot accumulate into C");
        if (packedOut && n % 2 != 0) throw new ArgumentException($"{what}: a packed C needs an even N, got {n}");
        if (kind is not PackedGemmKernel.Packed && ((long)(m + K.TensorCoreGemm.TileM) * k / 8 > int.MaxValue || (long)(n + K.TensorCoreGemm.TileN) * k / 8 > int.MaxValue))
            throw new NotSupportedException($"{what} ({m} x {n} x {k}): the kernel indexes its operands' 16-byte chunks in 32 bits; " +
                $"got {(long)m * k / 8:N0} and {(long)n * k / 8:N0} chunks, at most {int.MaxValue - (long)K.TensorCoreGemm.TileM * k / 8:N0} (split the rows into chunks)");
        if (kind is PackedGemmKernel.Wgmma or PackedGemmKernel.WgmmaDeep && !PtxTarget.CanRunSm90a(_acc))
            throw new NotSupportedException($"{what}: wgmma needs a Hopper GPU (compute capability 9.0), this is {_acc.Name}; use LdMatrix");
        if (m == 0 || n == 0) return;
        long aAt = a.LoadEffectiveAddressAsPtr().ToInt64(), bAt = b.LoadEffectiveAddressAsPtr().ToInt64();
        if (k > 0 && (aAt % align != 0 || bAt % align != 0))
            throw new ArgumentException($"{what}: operands must start on {align}-byte boundaries (A at {aAt % align}, B at {bAt % align} mod {align})");
        var args = new GemmArgs
        {
            M = m, N = n, K = k, Layout = (int)GemmLayout.ABt, Accumulate = accumulate ? 1 : 0, HasBias = bias is null || geluGradOf ? 0 : 1, Gelu = gelu ? 1 : 0,
            GeluGrad = geluGradOf ? 1 : 0, PackedOut = packedOut ? 1 : 0,
            // The fast epilogues store C as 64-bit pairs (the GELU' one also reads the pre-activation so): both 8-byte aligned.
            PairStores = EpiloguePairStores && c.LoadEffectiveAddressAsPtr().ToInt64() % 8 == 0 && (!geluGradOf || Address(bias!) % 8 == 0) ? 1 : 0,
        };
        void Launch(ArrayView<float> cOut, ArrayView<float> biasView, GemmArgs launchArgs, int splits)
        {
            var config = TensorCoreLaunch(m, n, splits);
            switch (kind)
            {
                case PackedGemmKernel.Packed:
                    _gemmPacked ??= _acc.LoadStreamKernelLifted<ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs>(K.TensorCoreGemm.KernelPacked, K.TensorCoreGemm.Specialization());
                    _gemmPacked(config, a, b, cOut, biasView, launchArgs);
                    break;
                case PackedGemmKernel.LdMatrix:
                    _gemmLdMatrix ??= _acc.LoadStreamKernelLifted<ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs>(K.TensorCoreGemm.KernelLdMatrix, K.TensorCoreGemm.Specialization());
                    _gemmLdMatrix(config, a, b, cOut, biasView, launchArgs);
                    break;
                case PackedGemmKernel.LdMatrixWide:
                    _gemmLdMatrixWide ??= _acc.LoadStreamKernelLifted<ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs>(K.TensorCoreGemm.KernelLdMatrixWide, K.TensorCoreGemm.WideSpecialization);
                    _gemmLdMatrixWide(TensorCoreLaunch(m, n, splits, K.TensorCoreGemm.WideThreads), a, b, cOut, biasView, launchArgs);
                    break;
                case PackedGemmKernel.LdMatrixAsync:
                    Staged(ref _gemmLdMatrixAsync, K.TensorCoreGemm.KernelLdMatrixAsync, K.TensorCoreGemm.Specialization(), config);
                    break;
                case PackedGemmKernel.LdMatrixWideAsync:
                    Staged(ref _gemmLdMatrixWideAsync, K.TensorCoreGemm.KernelLdMatrixWideAsync, K.TensorCoreGemm.WideSpecialization, TensorCoreLaunch(m, n, splits, K.TensorCoreGemm.WideThreads));
                    break;
                case PackedGemmKernel.Wgmma:
                    Staged(ref _gemmWgmma, K.TensorCoreGemm.KernelWgmma, K.TensorCoreGemm.Specialization(), config);
                    break;
                case PackedGemmKernel.WgmmaDeep:
                    // 64 KB of dynamic shared memory: more than a block has without opting in (LargeSharedMemory).
                    Staged(ref _gemmWgmmaDeep, K.TensorCoreGemm.KernelWgmmaDeep, K.TensorCoreGemm.Specialization(), new KernelConfig(config.GridDim, config.GroupDim, K.TensorCoreGemm.DeepShared),
                        kernel => LargeSharedMemory.Allow(_acc, kernel, K.TensorCoreGemm.DeepSharedBytes));
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind), kind, "no packed-operand kernel");
            }

            // The kernels staged by cp.async take their operands' device addresses too; each is loaded at its first launch.
            void Staged(ref Action<KernelConfig, ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs, long, long>? loaded,
                Action<ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, GemmArgs, long, long> kernel, KernelSpecialization specialization,
                KernelConfig launch, Action<Kernel>? onLoad = null) =>
                (loaded ??= _acc.LoadStreamKernelLifted(kernel, specialization, onLoad))(launch, a, b, cOut, biasView, launchArgs, aAt, bAt);
        }
        // The same K-split as the fp32-operand tensor-core kernel (LaunchGemm), so the same bits; none for a packed C.
        var (splits, kPer) = packedOut ? (1, 0) : K.Gemm.SplitK(m, n, k, K.TensorCoreGemm.KStep);
        if (splits == 1) Launch(c, bias is null ? _dummy.View : V(bias), args, 1);
        else LaunchSplit(splits, kPer, m, n, c, bias, args, (part, partArgs, s) => Launch(part, _dummy.View, partArgs, s));
        DetailMark?.Invoke(GemmLabel($"packed-{kind}", m, n, k, GemmLayout.ABt, splits));
    }

    private static string GemmLabel(string kind, int m, int n, int k, GemmLayout layout, int splits) =>
        $"GEMM {kind} {m}x{n}x{k} {layout}{(splits > 1 ? $" split {splits}" : "")}";

    /// <summary>
    /// Inside the scope, with <see cref="GemmPrecision.Bf16"/> and <see cref="PackedGemm"/> set, every product runs on
    /// packed bf16 operands: a W that lies in <paramref name="parameters"/> comes from their bf16 copy, packed at the
    /// scope's first product and kept current by <see cref="AdamWStep"/> on views of them; every other operand is packed
    /// before its product (one pass; transposed for the AB and AtB layouts, whose operands run along K in columns).
    /// Products whose K is not a multiple of 8 stay on the fp32-operand kernel. Same bits as the fp32-operand kernel.
    /// </summary>
    public IDisposable BindParameters(Tensor parameters)
    {
        if (_bound is not null) throw new InvalidOperationException("BindParameters: scopes do not nest");
        _bound = (GpuTensor)parameters;
        _boundPackedValid = false;
        return new BoundScope(this);
    }

    private sealed class BoundScope(GpuOps owner) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            owner._bound = null;
            owner._boundPackedValid = false;
        }
    }

    // Grows a workspace buffer to at least `length` elements (after the queued work that may still use it), counted in
    // AllocatedBytes like the tensors.
    private void Workspace<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long length) where T : unmanaged
    {
        if (buffer is not null && buffer.Length >= length) return;
        _acc.Synchronize();
        if (buffer is not null) { AllocatedBytes -= buffer.LengthInBytes; buffer.Dispose(); }
        buffer = _acc.Allocate1D<T>(length);
        AllocatedBytes += buffer.LengthInBytes;
        PeakAllocatedBytes = Math.Max(PeakAllocatedBytes, AllocatedBytes);
    }

    // The element offset of `t` in the bound parameters, or -1 when no scope is open or t does not lie inside them.
    private long OffsetInBound(Tensor t)
    {
        if (_bound is null) return -1;
        var bound = _bound.View;
        long start = bound.LoadEffectiveAddressAsPtr().ToInt64(), at = V(t).LoadEffectiveAddressAsPtr().ToInt64();
        long offset = (at - start) / sizeof(float);
        return at >= start && offset + t.Length <= bound.Length ? offset : -1;
    }

    // Inside a BindParameters scope with bf16 products on packed operands.
    private bool PackingOn => _bound is not null && GemmPrecision == GemmPrecision.Bf16 && PackedGemm != PackedGemmKernel.Off;

    // The packed operands of op(A)·op(B) in the ABt form the packed kernels take (A (M, K/2) and B (N, K/2) words),
    // inside a BindParameters scope with packing on; false (the caller stays on fp32 operands) otherwise or when K is
    // not a multiple of 8.
    private bool TryPackProduct(Tensor a, Tensor b, GemmLayout layout, int m, int n, int k, out ArrayView<uint> packedA, out ArrayView<uint> packedB)
    {
        packedA = packedB = default;
        var castBy = layout == GemmLayout.ABt && _castHandOff is { } cast && cast.At == Address(a) && cast.Length == (long)m * k ? cast.By : (CastBy?)null;
        _castHandOff = null;
        if (!PackingOn || k == 0 || k % 8 != 0) return false;
        switch (layout)
        {
            case GemmLayout.ABt:   // A (M, K), B (N, K): rows as they are
                packedB = PackedRows(b, n, k);
                if (castBy is { } by)
                {
                    packedA = _packedA!.View.SubView(0, (long)m * k / 2);
                    if (by == CastBy.Gelu) GeluCastOperands++;
                    else if (by == CastBy.Attention) AttentionCastOperands++;
                    else LayerNormCastOperands++;
                }
                else packedA = Pack(a, ref _packedA, m, k, transpose: false);
                return true;
            case GemmLayout.AB:    // A (M, K), B (K, N): B's columns
                packedB = Pack(b, ref _packedB, k, n, transpose: true);
                packedA = Pack(a, ref _packedA, m, k, transpose: false);
                return true;
            default:               // AtB: A (K, M), B (K, N): both operands' columns
                packedB = Pack(b, ref _packedB, k, n, transpose: true);
                packedA = Pack(a, ref _packedA, k, m, transpose: true);
                return true;
        }
    }

    // w (rows, cols) as packed rows: from the bound parameters' copy when it lies there, else packed now into _packedB.
    private ArrayView<uint> PackedRows(Tensor w, int rows, int cols) =>
        TryPackedWeights(w, rows, cols, out var packed) ? packed : Pack(w, ref _packedB, rows, cols, transpose: false);

    // W (outF, inF) as bf16 pairs from the bound parameters' copy (packed at the scope's first use, then kept by
    // AdamWStep), when W lies in them at an offset the kernels can read (a multiple of 8 floats: 16-byte aligned
    // words) and inF is a multiple of 8.
    private bool TryPackedWeights(Tensor w, int outF, int inF, out ArrayView<uint> packedW)
    {
        packedW = default;
        long offset = OffsetInBound(w), count = (long)outF * inF, even = _bound is null ? 0 : _bound.View.Length & ~1L;
        if (offset < 0 || inF == 0 || inF % 8 != 0 || offset % 8 != 0 || offset + count > even) return false;
        if (!_boundPackedValid)
        {
            Workspace(ref _boundPacked, Math.Max(1, even / 2));
            if (even > 0) PackBf16(View(_bound!, 0, 1, checked((int)even)), _boundPacked!.View, 1, checked((int)even), transpose: false);
            _boundPackedValid = true;
        }
        packedW = _boundPacked!.View.SubView(offset / 2, count / 2);
        return true;
    }

    // src (rows, cols) packed into a workspace: its rows, or with transpose the rows of srcᵀ.
    private ArrayView<uint> Pack(Tensor src, ref MemoryBuffer1D<uint, Stride1D.Dense>? workspace, int rows, int cols, bool transpose)
    {
        long words = (long)rows * cols / 2;
        Workspace(ref workspace, words);
        PackBf16(src, workspace!.View, rows, cols, transpose);
        return workspace.View.SubView(0, words);
    }

    /// <summary>
    /// The forward-only MLP (IOps.Mlp). With packed bf16 operands in a <see cref="BindParameters"/> scope, fc1's epilogue
    /// writes GELU(x W1ᵀ + b1) as bf16 pairs straight into fc2's packed A operand (hidden is not written): one product's
    /// output write and a pack pass fewer, the same bits. Otherwise LinearGelu then Linear.
    /// </summary>
    public void Mlp(Tensor x, Tensor w1, Tensor? b1, Tensor hidden, Tensor w2, Tensor? b2, Tensor y, int rows, int inF, int hiddenF, int outF)
    {
        Check(x, (long)rows * inF, "Mlp x"); Check(w1, (long)hiddenF * inF, "Mlp W1"); Check(hidden, (long)rows * hiddenF, "Mlp hidden");
        Check(w2, (long)outF * hiddenF, "Mlp W2"); Check(y, (long)rows * outF, "Mlp y");
        // fc2's K (hiddenF) must suit the packed kernels as fc1's K does (TryPackProduct checks that one).
        if (rows > 0 && hiddenF > 0 && outF > 0 && hiddenF % 8 == 0 && TryPackProduct(x, w1, GemmLayout.ABt, rows, hiddenF, inF, out var packedX, out var packedW1))
        {
            long words = (long)rows * hiddenF / 2;
            Workspace(ref _packedHidden, words);
            ArrayView<uint> packedHidden = _packedHidden!.View.SubView(0, words);
            LaunchPacked(PackedGemm, packedX, packedW1, packedHidden.Cast<float>(), b1, rows, hiddenF, inF, accumulate: false, gelu: true, packedOut: true);
            // Launched after fc1, so a W2 packed now may reuse the workspace fc1's W1 came from (the queue is in order).
            LaunchPacked(PackedGemm, packedHidden, PackedRows(w2, outF, hiddenF), V(y), b2, rows, outF, hiddenF, accumulate: false, gelu: false);
            PackedProducts += 2;
            PackedMlps++;
            return;
        }
        LinearGelu(x, w1, b1, hidden, rows, inF, hiddenF);
        Linear(hidden, w2, b2, y, rows, hiddenF, outF);
    }

    // gelu: C = GELU(product + bias). geluGradOf: C = product ⊙ GELU'(bias), the bias argument then being the (M, N) pre-activation.
    private void LaunchGemm(Tensor a, Tensor b, Tensor c, Tensor? bias, GemmLayout layout, int m, int n, int k, bool accumulate, bool gelu = false,
        bool geluGradOf = false)
    {
        if (m == 0 || n == 0) return;
        if ((gelu || geluGradOf) && accumulate) throw new ArgumentException("a GELU epilogue cannot accumulate into C");
        if (geluGradOf && (bias is null || bias.Length < (long)m * n)) throw new ArgumentException($"the GELU' epilogue needs the ({m}, {n}) pre-activation");
        var args = new GemmArgs
        {
            M = m, N = n, K = k, Layout = (int)layout, Accumulate = accumulate ? 1 : 0, HasBias = bias is null || geluGradOf ? 0 : 1,
            Gelu = gelu ? 1 : 0, GeluGrad = geluGradOf ? 1 : 0, PairStores = EpiloguePairStores && Address(c) % 8 == 0 ? 1 : 0,
        };
        if (TryPackProduct(a, b, layout, m, n, k, out var packedA, out var packedB))
        {
            LaunchPacked(PackedGemm, packedA, packedB, V(c), bias, m, n, k, accumulate, gelu, geluGradOf: geluGradOf);
            PackedProducts++;
            return;
        }
        // Too few C blocks for the GPU: split K into partial products (splits, M, N), then sum them in order into C.
        if (GemmPrecision != GemmPrecision.Fp32)
        {
            var key = (GemmPrecision, TensorCoreGroupsPerSM);
            if (!_tensorCore.TryGetValue(key, out var kernel))
                _tensorCore[key] = kernel = _acc.LoadStreamKernelLifted<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(
                    GemmPrecision == GemmPrecision.Bf16 ? K.TensorCoreGemm.Kernel : K.TensorCoreGemm.KernelTf32, K.TensorCoreGemm.Specialization(TensorCoreGroupsPerSM));
            var (tcSplits, tcKPer) = K.Gemm.SplitK(m, n, k, K.TensorCoreGemm.KStep);
            if (tcSplits == 1) kernel(TensorCoreLaunch(m, n), V(a), V(b), V(c), bias is null ? _dummy.View : V(bias), args);
            else LaunchSplit(tcSplits, tcKPer, m, n, V(c), bias, args, (part, partArgs, s) => kernel(TensorCoreLaunch(m, n, s), V(a), V(b), part, _dummy.View, partArgs));
            DetailMark?.Invoke(GemmLabel(GemmPrecision == GemmPrecision.Bf16 ? "bf16" : "tf32", m, n, k, layout, tcSplits));
            return;
        }
        if ((long)m * k > K.Gemm.MaxOperandElements || (long)n * k > K.Gemm.MaxOperandElements)
            throw new NotSupportedException($"GEMM ({m} x {n} x {k}): the fp32 GPU kernel indexes its operands in 32 bits and takes at most " +
                $"{K.Gemm.MaxOperandElements:N0} elements per operand; got {(long)m * k:N0} and {(long)n * k:N0} (split the rows into chunks)");
        var (splits, kPer) = K.Gemm.SplitK(m, n, k, splitFullShapes: true);
        KernelConfig SimtLaunch(int s) => new(new Index3D((n + K.Gemm.Tile - 1) / K.Gemm.Tile, (m + K.Gemm.Tile - 1) / K.Gemm.Tile, s), new Index3D(K.Gemm.Threads, 1, 1));
        // x·Wᵀ with both operands on 16-byte boundaries and K a multiple of 4 (every row's chunks then aligned): staged in 16-byte chunks.
        bool vector = SimtVectorStaging && layout == GemmLayout.ABt && k % 4 == 0 && Address(a) % 16 == 0 && Address(b) % 16 == 0;
        var gemm = vector ? _gemmVecABt : _gemm;
        if (splits == 1) gemm(SimtLaunch(1), V(a), V(b), V(c), bias is null ? _dummy.View : V(bias), args);
        else LaunchSplit(splits, kPer, m, n, V(c), bias, args, (part, partArgs, s) => gemm(SimtLaunch(s), V(a), V(b), part, _dummy.View, partArgs));
        if (vector) SimtVectorProducts++;
        DetailMark?.Invoke(GemmLabel(vector ? "fp32-vec" : "fp32", m, n, k, layout, splits));
    }

    public void Linear(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF)
    {
        Check(x, rows * inF, "Linear x"); Check(w, outF * inF, "Linear W"); Check(y, rows * outF, "Linear y");
        LaunchGemm(x, w, y, b, GemmLayout.ABt, rows, outF, inF, false);
    }

    public void LinearGelu(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF)
    {
        Check(x, rows * inF, "LinearGelu x"); Check(w, outF * inF, "LinearGelu W"); Check(y, rows * outF, "LinearGelu y");
        LaunchGemm(x, w, y, b, GemmLayout.ABt, rows, outF, inF, false, gelu: true);
    }

    public void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, int rows, int inF, int outF, bool accumulateDx)
    {
        Check(dy, rows * outF, "LinearBackward dy"); Check(x, rows * inF, "LinearBackward x"); Check(dw, outF * inF, "LinearBackward dW");
        Backward(dy, x, w, dx, null, dw, db, rows, inF, outF, accumulateDx);
    }

    public void LinearBackwardGelu(Tensor dy, Tensor x, Tensor w, Tensor pre, Tensor dPre, Tensor dw, Tensor? db, int rows, int inF, int outF)
    {
        Check(dy, rows * outF, "LinearBackwardGelu dy"); Check(x, rows * inF, "LinearBackwardGelu x"); Check(dw, outF * inF, "LinearBackwardGelu dW");
        Check(pre, rows * inF, "LinearBackwardGelu pre"); Check(dPre, rows * inF, "LinearBackwardGelu dPre");
        Backward(dy, x, w, dPre, pre, dw, db, rows, inF, outF, accumulateDx: false);
    }

    // dx (= or +=) dy·W, or with pre dx = (dy·W) ⊙ GELU'(pre); dW += dyᵀ·x; db += Σ dy. On packed operands both products
    // share one pass over dy (TryPackedBackward); otherwise each is a LaunchGemm.
    private void Backward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor? pre, Tensor dw, Tensor? db, int rows, int inF, int outF, bool accumulateDx)
    {
        if (dx is null || !TryPackedBackward(dy, x, w, dx, pre, dw, rows, inF, outF, accumulateDx))
        {
            if (dx is not null) LaunchGemm(dy, w, dx, pre, GemmLayout.AB, rows, inF, outF, accumulateDx, geluGradOf: pre is not null);
            LaunchGemm(dy, x, dw, null, GemmLayout.AtB, outF, inF, rows, true);
        }
        if (db is not null) SumRowsInto(dy, db, rows);
    }

    // A Linear backward's two products on packed operands with dy (rows, outF) packed in one pass for both: its rows for
    // dx (rows, inF) (=, or += with accumulateDx; or, given pre, dx = (dy·W) ⊙ GELU'(pre)) = dy·W, its columns for
    // dW (outF, inF) += dyᵀ·x. The same packed operands, kernels and order as the two LaunchGemm calls it replaces (same
    // bits). False, nothing launched, unless packing is on and both products' K (outF and rows) are multiples of 8.
    private bool TryPackedBackward(Tensor dy, Tensor x, Tensor w, Tensor dx, Tensor? pre, Tensor dw, int rows, int inF, int outF, bool accumulateDx)
    {
        _castHandOff = null;
        if (!PackingOn || rows == 0 || inF == 0 || outF == 0 || outF % 8 != 0 || rows % 8 != 0) return false;
        long words = (long)rows * outF / 2;
        Workspace(ref _packedA, words);
        Workspace(ref _packedAT, words);
        ArrayView<uint> dyRows = _packedA!.View.SubView(0, words), dyColumns = _packedAT!.View.SubView(0, words);
        LaunchPackTransposed(V(dy), dyColumns, dyRows, rows, outF, alsoRows: true);
        DetailMark?.Invoke($"PackBf16 dy rows+columns {rows}x{outF}");
        // dx (rows, inF) = dy (rows, outF)·W (outF, inF): B = W's columns. Launched before x's columns reuse _packedB (in-order queue).
        LaunchPacked(PackedGemm, dyRows, Pack(w, ref _packedB, outF, inF, transpose: true), V(dx), pre, rows, inF, outF, accumulateDx, gelu: false,
            geluGradOf: pre is not null);
        // dW (outF, inF) += dyᵀ (outF, rows)·x (rows, inF): B = x's columns.
        LaunchPacked(PackedGemm, dyColumns, Pack(x, ref _packedB, rows, inF, transpose: true), V(dw), null, outF, inF, rows, accumulate: true, gelu: false);
        PackedProducts += 2;
        SharedDyPacks++;
        return true;
    }

    public void Silu(Tensor x, Tensor y)
    {
        Check(y, x.Length, "Silu y");
        if (x.Length > 0) _silu(x.Length, V(x), V(y));
    }

    public void SiluBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate)
    {
        Check(dy, x.Length, "SiluBackward dy"); Check(dx, x.Length, "SiluBackward dx");
        if (x.Length > 0) _siluBwd(x.Length, V(x), V(dy), V(dx), accumulate ? 1 : 0);
    }

    // With bf16 or tf32 products the GELU's sigmoid is the approximate one the tensor-core epilogues use (Activations.GeluFast:
    // ≲ 1e-6 relative, below those products' rounding); the fp32 path keeps the precise one.
    public void GeluTanh(Tensor x, Tensor y)
    {
        Check(y, x.Length, "GeluTanh y");
        if (x.Length == 0) return;
        // With packed products y is also cast to bf16 pairs for the product that reads it next (fc2), as LN-modulate's output is.
        // Four elements per thread where the views are 16-byte aligned (GeluForward4: the same values).
        bool byChunks = Aligned16(x, y);
        if (PackingOn && x.Length % 8 == 0)
        {
            long words = x.Length / 2;
            Workspace(ref _packedA, words);
            var packed = _packedA!.View.SubView(0, words);
            if (byChunks) _geluFastPacked4(checked((int)(x.Length / 4)), V(x), V(y), packed);
            else _geluFastPacked(checked((int)words), V(x), V(y), packed);
            _castHandOff = (Address(y), x.Length, CastBy.Gelu);
            return;
        }
        bool precise = GemmPrecision == GemmPrecision.Fp32;
        if (byChunks && x.Length % 4 == 0) (precise ? _gelu4 : _geluFast4)(checked((int)(x.Length / 4)), V(x), V(y));
        else (precise ? _gelu : _geluFast)(x.Length, V(x), V(y));
    }

    public void GeluTanhBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate)
    {
        Check(dy, x.Length, "GeluTanhBackward dy"); Check(dx, x.Length, "GeluTanhBackward dx");
        if (x.Length > 0) (GemmPrecision == GemmPrecision.Fp32 ? _geluBwd : _geluBwdFast)(x.Length, V(x), V(dy), V(dx), accumulate ? 1 : 0);
    }

    public void LayerNormModulate(Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor y, Tensor mean, Tensor rstd, int b, int n, int h)
    {
        Check(x, b * n * h, "LayerNormModulate x"); Check(mod, b * chunks * h, "LayerNormModulate mod"); Check(y, b * n * h, "LayerNormModulate y");
        Check(mean, b * n, "LayerNormModulate mean"); Check(rstd, b * n, "LayerNormModulate rstd");
        if (b * n * h == 0) return;
        var args = new LayerNormArgs { B = b, N = n, H = h, Chunks = chunks, ShiftChunk = shiftChunk, ScaleChunk = scaleChunk };
        var packed = LayerNormCastTarget(ref args);
        // One read of each row into registers where the width and alignment allow (ForwardVec), three scalar passes otherwise.
        bool vec = K.LayerNormModulate.VecFits(h) && Aligned16(x, mod, y);
        (vec ? _lnVec : _ln)(LayerNormLaunch(b * n), V(x), V(mod), V(y), V(mean), V(rstd), packed, args);
        HandOffLayerNormCast(y, args);
    }

    // With packed products (and a width they accept as K) an LN-modulate kernel also casts y to bf16 pairs for the product
    // that reads it next: the words it writes into (_packedA, args.PackOut = 1), or a dummy with PackOut = 0.
    private ArrayView<uint> LayerNormCastTarget(ref LayerNormArgs args)
    {
        long words = (long)args.B * args.N * args.H / 2;
        bool cast = PackingOn && args.H % 8 == 0 && words > 0;
        args.PackOut = cast ? 1 : 0;
        if (!cast) return _dummyWords.View;
        Workspace(ref _packedA, words);
        return _packedA!.View.SubView(0, words);
    }

    // After the launch (whose V calls forgot any earlier hand-off): y's cast, if the kernel wrote one, for the next product.
    private void HandOffLayerNormCast(Tensor y, LayerNormArgs args)
    {
        if (args.PackOut != 0) _castHandOff = (Address(y), (long)args.B * args.N * args.H, CastBy.LayerNorm);
    }

    public void LayerNormModulateBackward(Tensor dy, Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor mean, Tensor rstd,
        Tensor dx, Tensor dmod, int b, int n, int h, bool accumulateDx)
    {
        Check(dy, b * n * h, "LayerNormModulateBackward dy"); Check(dmod, b * chunks * h, "LayerNormModulateBackward dmod");
        Check(x, b * n * h, "LayerNormModulateBackward x"); Check(mod, b * chunks * h, "LayerNormModulateBackward mod");
        Check(mean, b * n, "LayerNormModulateBackward mean"); Check(rstd, b * n, "LayerNormModulateBackward rstd"); Check(dx, b * n * h, "LayerNormModulateBackward dx");
        if (b * n * h == 0) return;
        var args = new LayerNormArgs { B = b, N = n, H = h, Chunks = chunks, ShiftChunk = shiftChunk, ScaleChunk = scaleChunk, AccumulateDx = accumulateDx ? 1 : 0 };
        _lnBwdMod(b * h, V(dy), V(x), V(mean), V(rstd), V(dmod), args);
        bool vec = K.LayerNormModulate.VecFits(h) && Aligned16(dy, x, mod, dx);
        (vec ? _lnBwdInputVec : _lnBwdInput)(LayerNormLaunch(b * n), V(dy), V(x), V(mod), V(mean), V(rstd), V(dx), args);
    }

    public void GatedResidual(Tensor x, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor output, int b, int n, int h)
    {
        Check(x, b * n * h, "GatedResidual x"); Check(mod, b * chunks * h, "GatedResidual mod");
        Check(y, b * n * h, "GatedResidual y"); Check(output, b * n * h, "GatedResidual output");
        if (b * n * h == 0) return;
        var args = new ResidualArgs { B = b, N = n, H = h, Chunks = chunks, Chunk = gateChunk };
        if (h % 4 == 0 && Aligned16(x, mod, y, output)) _gated4(b * n * h / 4, V(x), V(mod), V(y), V(output), args);
        else _gated(b * n * h, V(x), V(mod), V(y), V(output), args);
    }

    /// <summary>
    /// IOps.GatedResidualLayerNormModulate: one pass (<see cref="K.LayerNormModulate.GatedForwardVec"/>: the sum is written and
    /// normalized from registers, not read back) where LN-modulate's 128-bit kernel takes the rows, the same bits as the two ops;
    /// otherwise the two ops. Casts ln to bf16 pairs for the next product as <see cref="LayerNormModulate"/> does.
    /// </summary>
    public void GatedResidualLayerNormModulate(Tensor x, Tensor gateMod, int gateChunks, int gateChunk, Tensor y, Tensor sum,
        Tensor lnMod, int lnChunks, int shiftChunk, int scaleChunk, Tensor ln, Tensor mean, Tensor rstd, int b, int n, int h)
    {
        if (!K.LayerNormModulate.VecFits(h) || !Aligned16(x, gateMod, y, sum, lnMod, ln))
        {
            GatedResidual(x, gateMod, gateChunks, gateChunk, y, sum, b, n, h);
            LayerNormModulate(sum, lnMod, lnChunks, shiftChunk, scaleChunk, ln, mean, rstd, b, n, h);
            return;
        }
        Check(x, b * n * h, "GatedResidualLayerNormModulate x"); Check(gateMod, b * gateChunks * h, "GatedResidualLayerNormModulate gateMod");
        Check(y, b * n * h, "GatedResidualLayerNormModulate y"); Check(sum, b * n * h, "GatedResidualLayerNormModulate sum");
        Check(lnMod, b * lnChunks * h, "GatedResidualLayerNormModulate lnMod"); Check(ln, b * n * h, "GatedResidualLayerNormModulate ln");
        Check(mean, b * n, "GatedResidualLayerNormModulate mean"); Check(rstd, b * n, "GatedResidualLayerNormModulate rstd");
        if (b * n * h == 0) return;
        var args = new LayerNormArgs
        {
            B = b, N = n, H = h, Chunks = lnChunks, ShiftChunk = shiftChunk, ScaleChunk = scaleChunk, GateChunks = gateChunks, GateChunk = gateChunk,
        };
        var packed = LayerNormCastTarget(ref args);
        _gatedLnVec(LayerNormLaunch(b * n), V(x), V(gateMod), V(y), V(sum), V(lnMod), V(ln), V(mean), V(rstd), packed, args);
        FusedGatedLayerNorms++;
        HandOffLayerNormCast(ln, args);
    }

    /// <summary>How many GatedResidualLayerNormModulate calls ran as one pass, for tests.</summary>
    public long FusedGatedLayerNorms { get; private set; }

    public void GatedResidualBackward(Tensor dout, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor dy, Tensor dmod, int b, int n, int h)
    {
        Check(dout, b * n * h, "GatedResidualBackward dout"); Check(dmod, b * chunks * h, "GatedResidualBackward dmod");
        Check(mod, b * chunks * h, "GatedResidualBackward mod"); Check(y, b * n * h, "GatedResidualBackward y"); Check(dy, b * n * h, "GatedResidualBackward dy");
        if (b * n * h == 0) return;
        _gatedBwd(b * h, V(dout), V(mod), V(y), V(dy), V(dmod), new ResidualArgs { B = b, N = n, H = h, Chunks = chunks, Chunk = gateChunk });
    }

    public void JointAttention(Tensor qkvX, Tensor qkvU, Tensor probs, Tensor outX, Tensor outU, int b, int l, int h, int heads)
    {
        CheckAttention(l, h, heads);
        Check(qkvX, b * 3 * h, "JointAttention qkvX"); Check(qkvU, b * l * 3 * h, "JointAttention qkvU");
        // probs empty: a forward-only pass, nothing saved.
        bool save = probs.Length > 0;
        if (save) Check(probs, (long)b * heads * (l + 1) * (l + 1), "JointAttention probs");
        Check(outX, b * h, "JointAttention outX"); Check(outU, b * l * h, "JointAttention outU");
        if (b == 0) return;
        var args = new AttentionArgs { B = b, L = l, H = h, Heads = heads, Scale = 1f / MathF.Sqrt(h / heads), NoProbs = save ? 0 : 1 };
        ArrayView<float> p = save ? V(probs) : _dummy.View;
        if (UsesTiledAttention(l, h, heads) && Aligned16(qkvX, qkvU, outX, outU))
        {
            // With packed products the kernel also casts outU for the text stream's proj_c, the product that reads it next.
            long words = (long)b * l * h / 2;
            bool cast = PackingOn && h % 8 == 0 && words > 0;
            if (cast) Workspace(ref _packedA, words);
            var packed = cast ? _packedA!.View.SubView(0, words) : _dummyWords.View;
            _attnTiled(TiledAttentionLaunch(b, heads, K.JointAttention.TiledForwardSharedFloats(l + 1, h / heads)), V(qkvX), V(qkvU), p, V(outX), V(outU),
                packed, args with { PackOut = cast ? 1 : 0 });
            TiledAttentionLaunches++;
            if (cast) _castHandOff = (Address(outU), (long)b * l * h, CastBy.Attention);
        }
        else _attn(AttentionLaunch(b, l, heads), V(qkvX), V(qkvU), p, V(outX), V(outU), args);
    }

    /// <summary>IOps.JointAttentionSkeletonRow: one warp per (row, head) (<see cref="K.JointAttention.SkeletonRow"/>).</summary>
    public void JointAttentionSkeletonRow(Tensor qkvX, Tensor textKv, int textKvWidth, Tensor outX, int b, int l, int h, int heads)
    {
        CheckAttention(l, h, heads);
        ReferenceOps.CheckSkeletonRow(qkvX, textKv, textKvWidth, outX, b, l, h);
        if (b == 0) return;
        var args = new AttentionArgs { B = b, L = l, H = h, Heads = heads, Scale = 1f / MathF.Sqrt(h / heads) };
        _attnSkeletonRow(new KernelConfig(b * heads, 32), V(qkvX), V(textKv), V(outX), args, textKvWidth);
    }

    /// <summary>
    /// IOps.JointAttentionSkeletonRowFromText, reassociated (see <see cref="K.JointAttention.SkeletonRowMix"/>): the queries copied out,
    /// W_kᵀq for every head as one fp32 product split over K by head, the scores, softmax and mixed states, W_v·mix for every head
    /// as one product split over K by head, the sum. Per row ~3·H² multiply-adds in place of the text keys' and values' 2·L·H².
    /// Where the mix kernel does not take the shape (<see cref="K.JointAttention.MixFits"/>) or a view is not 16-byte aligned: the
    /// keys and values into the scratch, then <see cref="JointAttentionSkeletonRow"/>.
    /// </summary>
    public void JointAttentionSkeletonRowFromText(Tensor qkvX, Tensor hu, Tensor wKv, Tensor bKv, Tensor scratch, Tensor outX, int b, int l, int h, int heads)
    {
        CheckAttention(l, h, heads);
        ReferenceOps.CheckSkeletonRowFromText(qkvX, hu, wKv, bKv, scratch, outX, b, l, h, heads);
        if (b == 0) return;
        if (!SkeletonRowMix || !K.JointAttention.MixFits(h, heads) || !Aligned16(hu, scratch))
        {
            var kv = View(scratch, 0, b * l, 2 * h);
            Linear(hu, wKv, bKv, kv, b * l, h, 2 * h);
            JointAttentionSkeletonRow(qkvX, kv, 2 * h, outX, b, l, h, heads);
            return;
        }
        int d = h / heads;
        var args = new AttentionArgs { B = b, L = l, H = h, Heads = heads, Scale = 1f / MathF.Sqrt(d) };
        // Scratch: W_kᵀq (Heads, B, H) | mixed states (B, Heads, H) | queries (B, H) | W_v·mix (Heads, B, D) | W_v by head (D, Heads·H) | weights (B, Heads, 2).
        long bh = (long)b * h, r0 = 0, mix0 = r0 + heads * bh, q0 = mix0 + heads * bh, vo0 = q0 + bh, wv0 = vo0 + bh, w0 = wv0 + (long)h * h;
        ArrayView<float> sc = V(scratch), r = sc.SubView(r0, heads * bh), mix = sc.SubView(mix0, heads * bh), q = sc.SubView(q0, bh),
            valueOut = sc.SubView(vo0, bh), wvByHead = sc.SubView(wv0, (long)h * h), weights = sc.SubView(w0, 2L * b * heads);
        ArrayView<float> x = V(qkvX), w = V(wKv), bias = V(bKv);
        _skeletonQueries(checked((int)bh), x, q, h);
        _valueWeightsByHead(h * h, w, wvByHead, args);
        var rArgs = new GemmArgs { M = b, N = h, K = h, Layout = (int)GemmLayout.AB, KSplit = d };        // split z: W_k's rows of head z
        _gemm(new KernelConfig(new Index3D((h + K.Gemm.Tile - 1) / K.Gemm.Tile, (b + K.Gemm.Tile - 1) / K.Gemm.Tile, heads), new Index3D(K.Gemm.Threads, 1, 1)),
            q, w.SubView(0, (long)h * h), r, _dummy.View, rArgs);
        DetailMark?.Invoke($"{GemmLabel("fp32", b, h, d, GemmLayout.AB, 1)} x {heads} heads (W_kᵀq)");
        _skeletonMix(new KernelConfig(b, 32 * heads), x, V(hu), bias, r, mix, weights, args);
        DetailMark?.Invoke($"SkeletonRowMix {b}x{l + 1}x{h}");
        var vArgs = new GemmArgs { M = b, N = d, K = heads * h, Layout = (int)GemmLayout.ABt, KSplit = h };  // split z: head z's mix and W_v rows
        _gemm(new KernelConfig(new Index3D((d + K.Gemm.Tile - 1) / K.Gemm.Tile, (b + K.Gemm.Tile - 1) / K.Gemm.Tile, heads), new Index3D(K.Gemm.Threads, 1, 1)),
            mix, wvByHead, valueOut, _dummy.View, vArgs);
        DetailMark?.Invoke($"{GemmLabel("fp32", b, d, h, GemmLayout.ABt, 1)} x {heads} heads (W_v·mix)");
        _skeletonCombine(checked((int)bh), x, bias, valueOut, weights, V(outX), args);
        SkeletonRowMixLaunches++;
    }

    public void JointAttentionBackward(Tensor dOutX, Tensor dOutU, Tensor qkvX, Tensor qkvU, Tensor probs, Tensor dqkvX, Tensor dqkvU, int b, int l, int h, int heads)
    {
        CheckAttention(l, h, heads);
        Check(dOutX, b * h, "JointAttentionBackward dOutX"); Check(dOutU, b * l * h, "JointAttentionBackward dOutU");
        Check(qkvX, b * 3 * h, "JointAttentionBackward qkvX"); Check(qkvU, b * l * 3 * h, "JointAttentionBackward qkvU");
        Check(probs, (long)b * heads * (l + 1) * (l + 1), "JointAttentionBackward probs");
        Check(dqkvX, b * 3 * h, "JointAttentionBackward dqkvX"); Check(dqkvU, b * l * 3 * h, "JointAttentionBackward dqkvU");
        if (b == 0) return;
        var args = new AttentionArgs { B = b, L = l, H = h, Heads = heads, Scale = 1f / MathF.Sqrt(h / heads) };
        if (UsesTiledAttention(l, h, heads) && Aligned16(dOutX, dOutU, qkvX, qkvU, dqkvX, dqkvU))
        {
            _attnTiledBwd(TiledAttentionLaunch(b, heads, K.JointAttention.TiledBackwardSharedFloats(l + 1, h / heads)),
                V(dOutX), V(dOutU), V(qkvX), V(qkvU), V(probs), V(dqkvX), V(dqkvU), args);
            TiledAttentionLaunches++;
        }
        else _attnBwd(AttentionLaunch(b, l, heads), V(dOutX), V(dOutU), V(qkvX), V(qkvU), V(probs), V(dqkvX), V(dqkvU), args);
    }

    /// <summary>
    /// Whether the joint attention over l + 1 tokens of h channels in <paramref name="heads"/> heads runs on the tiled kernels
    /// (<see cref="TiledAttention"/> on, <see cref="K.JointAttention.TiledFits"/>, h a multiple of 4), given 16-byte aligned
    /// tensors (fresh allocations are; an unaligned view falls back to the scalar kernels).
    /// </summary>
    public bool UsesTiledAttention(int l, int h, int heads) =>
        TiledAttention && h % heads == 0 && h % 4 == 0 && K.JointAttention.TiledFits(l + 1, h / heads);

    private static bool Aligned16(params Tensor[] tensors)
    {
        foreach (var t in tensors)
            if (Address(t) % 16 != 0) return false;
        return true;
    }

    /// <summary>A group per (row, head) of the tiled kernels with the dynamic shared memory they need.</summary>
    private static KernelConfig TiledAttentionLaunch(int b, int heads, int sharedFloats) =>
        new(new Index1D(b * heads), new Index1D(K.JointAttention.TiledThreads), SharedMemoryConfig.RequestDynamic<float>(sharedFloats));

    /// <summary>LN-modulate's row kernels: a warp per row, four rows per group.</summary>
    private static KernelConfig LayerNormLaunch(int rows) =>
        new((rows + K.LayerNormModulate.RowsPerGroup - 1) / K.LayerNormModulate.RowsPerGroup, K.LayerNormModulate.Threads);

    /// <summary>A group per (row, head) with the dynamic shared memory of l + 1 tokens.</summary>
    private static KernelConfig AttentionLaunch(int b, int l, int heads) =>
        new(new Index1D(b * heads), new Index1D(K.JointAttention.Threads), SharedMemoryConfig.RequestDynamic<float>(K.JointAttention.SharedFloats(l + 1)));

    private static void CheckAttention(int l, int h, int heads)
    {
        if (l + 1 > K.JointAttention.MaxTokens) throw new ArgumentException($"joint attention supports at most {K.JointAttention.MaxTokens} tokens, got {l + 1}");
        if (h % heads != 0) throw new ArgumentException($"hidden {h} not divisible by {heads} heads");
    }

    public void TimestepEmbedding(Tensor t, Tensor emb, int b)
    {
        Check(t, b, "TimestepEmbedding t"); Check(emb, b * Reference.TimestepEmbedding.Dim, "TimestepEmbedding emb");
        if (b == 0) return;
        _temb(b * Reference.TimestepEmbedding.Dim, V(t), _tTable.View, V(emb), Reference.TimestepEmbedding.Dim);
    }

    public void QSample(Tensor z0, Tensor eps, Tensor t, ReadOnlySpan<float> alphasCumprod, Tensor zt, int b, int c)
    {
        if (alphasCumprod.Length > MaxTimestep) throw new ArgumentException($"at most {MaxTimestep} diffusion steps are supported");
        Check(z0, b * c, "QSample z0"); Check(zt, b * c, "QSample zt"); Check(t, b, "QSample t");
        if (eps.Length != c) Check(eps, b * c, "QSample eps");
        if (b * c == 0) return;
        // The schedule is the same at every call of a run: upload it only when it changes (an upload would stall the queue).
        if (!alphasCumprod.SequenceEqual(_alphasUploaded))
        {
            ((ArrayView<float>)_alphas.View).SubView(0, alphasCumprod.Length).CopyFromCPU(alphasCumprod);
            _alphasUploaded = alphasCumprod.ToArray();
        }
        _qsample(b * c, V(z0), V(eps), V(t), _alphas.View, V(zt), c, eps.Length == c ? 1 : 0);
    }

    public void TdLoss(Tensor pred, Tensor eps, Tensor mask, Tensor pos, Tensor neg, Tensor dpred, Tensor loss, int b, int c, double margin, double lambda)
    {
        Check(pred, 2 * b * c, "TdLoss pred"); Check(dpred, 2 * b * c, "TdLoss dpred"); Check(loss, 3, "TdLoss loss");
        Check(eps, b * c, "TdLoss eps"); Check(mask, b, "TdLoss mask"); Check(pos, b, "TdLoss pos"); Check(neg, b, "TdLoss neg");
        if (b == 0) throw new ArgumentException("TdLoss: the batch is empty (the loss is a mean over its rows)");
        if (_hinge.Length < b)
        {
            _acc.Synchronize();
            _hinge.Dispose();
            _hinge = _acc.Allocate1D<float>(b);
        }
        var hinge = ((ArrayView<float>)_hinge.View).SubView(0, b);
        _tdloss(b, V(pred), V(eps), V(mask), V(pos), V(neg), hinge, V(dpred), b, c, (float)margin, (float)lambda);
        _tdlossReduce(new KernelConfig(1, Diffusion.ReduceThreads), V(pos), hinge, V(loss), b, (float)lambda);
    }

    public void RowMse(Tensor pred, Tensor eps, Tensor score, int b, int c, bool accumulate)
    {
        Check(pred, b * c, "RowMse pred"); Check(score, b, "RowMse score");
        if (eps.Length != c) Check(eps, b * c, "RowMse eps");
        if (b == 0) return;
        _rowMse(b, V(pred), V(eps), V(score), c, eps.Length == c ? 1 : 0, accumulate ? 1 : 0);
    }

    public void ArgMinRows(Tensor scores, Tensor index, int rows, int cols)
    {
        if (scores.Length < (long)rows * cols || index.Length < rows) throw new ArgumentException($"ArgMinRows: scores {scores} / index {index} hold fewer than {rows} rows of {cols}");
        if (rows == 0) return;
        _argmin(rows, V(scores), V(index), cols);
    }

    public void AdamWStep(Tensor p, Tensor g, Tensor m, Tensor v, double lr, AdamWConfig cfg, int step)
    {
        var args = new AdamWArgs
        {
            Lr = (float)lr, Beta1 = (float)cfg.Beta1, Beta2 = (float)cfg.Beta2, Eps = (float)cfg.Eps, WeightDecay = (float)cfg.WeightDecay,
            Bc1 = (float)(1 - Math.Pow(cfg.Beta1, step)), Bc2 = (float)(1 - Math.Pow(cfg.Beta2, step)),
        };
        if (p.Length == 0) return;
        // Inside a BindParameters scope whose bf16 copy exists, the same update also writes the copy's words.
        long first = _boundPackedValid ? OffsetInBound(p) : -1;
        if (first < 0)
        {
            _adamw(p.Length, V(p), V(g), V(m), V(v), args);
            return;
        }
        _adamwPacked ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>, AdamWArgs, long, long>(
            K.AdamW.StepPacked);
        long words = ((first + p.Length - 1) >> 1) - (first >> 1) + 1;
        _adamwPacked(checked((int)words), _bound!.View, V(g), V(m), V(v), _boundPacked!.View, args, first, p.Length);
        PackedAdamWSteps++;
    }

    public void GatherRows(Tensor table, ReadOnlySpan<int> index, Tensor output, int width)
    {
        int classes = table.Length / width;
        foreach (var i in index)
            if ((uint)i >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(index), $"class index {i} outside [0, {classes})");
        if (output.Length < index.Length * width) throw new ArgumentException($"GatherRows: output {output} smaller than {index.Length} rows of {width}");
        if (index.Length == 0) return;
        if (_index.Length < index.Length)
        {
            _acc.Synchronize();
            _index.Dispose();
            _index = _acc.Allocate1D<int>(Math.Max(index.Length, 2 * _index.Length));
        }
        ((ArrayView<int>)_index.View).SubView(0, index.Length).CopyFromCPU(index);
        if (GathersByChunks(table, output, width)) { _gatherVec(index.Length * width / 4, V(table), _index.View, V(output), width / 4); ChunkedGathers++; }
        else _gather(index.Length * width, V(table), _index.View, V(output), width);
    }

    public void GatherRows(Tensor table, Tensor index, Tensor output, int width)
    {
        Check(output, (long)index.Length * width, "GatherRows output");
        if (index.Length == 0) return;
        if (GathersByChunks(table, output, width)) { _gatherTVec(checked((int)(index.Length * width / 4)), V(table), V(index), V(output), width / 4); ChunkedGathers++; }
        else _gatherT(checked((int)(index.Length * width)), V(table), V(index), V(output), width);
    }

    /// <summary>How many GatherRows calls moved 16-byte chunks (<see cref="K.Gather.RowsVec"/>), for tests.</summary>
    public long ChunkedGathers { get; private set; }

    // Rows of a multiple of 4 floats between 16-byte aligned tensors move as 16-byte chunks (Gather.RowsVec).
    private static bool GathersByChunks(Tensor table, Tensor output, int width) => width % 4 == 0 && Aligned16(table, output);

    public void Copy(Tensor source, Tensor destination)
    {
        if (source.Length != destination.Length) throw new ArgumentException($"Copy: {source} into {destination}");
        V(source).CopyTo(V(destination));
    }

    public void SampleNormal(Tensor destination, ulong seed, ulong stream)
    {
        if (destination.Length > 0) _normal(destination.Length, V(destination), seed, stream);
    }

    public void SampleBelow(Tensor destination, int n, ulong seed, ulong stream)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        if (destination.Length > 0) _below(destination.Length, V(destination), n, seed, stream);
    }

    public void NotEqual(Tensor a, Tensor b, Tensor mask)
    {
        Check(a, mask.Length, "NotEqual a"); Check(b, mask.Length, "NotEqual b");
        if (mask.Length > 0) _notEqual(mask.Length, V(a), V(b), V(mask));
    }

    private static void Check(Tensor t, long expected, string what)
    {
        if (t.Length < expected) throw new ArgumentException($"{what}: tensor {t} has {t.Length} elements, the op needs {expected}");
    }

    public void Dispose()
    {
        _acc.Synchronize();
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
        AllocatedBytes = 0;
        _index.Dispose(); _columnPartials.Dispose(); _hinge.Dispose(); _alphas.Dispose(); _tTable.Dispose(); _dummy.Dispose(); _gemmSplits?.Dispose(); _boundPacked?.Dispose(); _packedA?.Dispose(); _packedAT?.Dispose(); _packedB?.Dispose(); _dummyWords.Dispose(); _packedHidden?.Dispose();
    }
}

/// <summary>The kernel for bf16 products on packed operands (<see cref="GpuOps.PackedGemm"/>).</summary>
public enum PackedGemmKernel
{
    /// <summary>No packing: the fp32-operand kernel (<see cref="K.TensorCoreGemm.Kernel"/>).</summary>
    Off = 0,
    /// <summary><see cref="K.TensorCoreGemm.KernelPacked"/>: 32-bit staging, the fp32-operand kernel's shared layout.</summary>
    Packed = 1,
    /// <summary><see cref="K.TensorCoreGemm.KernelLdMatrix"/>: 128-bit staging, swizzled rows, ldmatrix fragments.</summary>
    LdMatrix = 2,
    // 3 was the first cp.async kernel, dropped after the first H100 visit measured it at 0.08x: the driver kept its
    // inline-asm operands in local memory (bench/RESULTS.md). LdMatrixAsync (5) loads through LiftedKernels instead.
    /// <summary><see cref="K.TensorCoreGemm.KernelLdMatrixWide"/>: KernelLdMatrix's tiles with 4 warps of 64×64 (not yet measured on a GPU).</summary>
    LdMatrixWide = 4,
    /// <summary><see cref="K.TensorCoreGemm.KernelLdMatrixAsync"/>: KernelLdMatrix staged by cp.async into 3 shared stages (not yet measured on a GPU).</summary>
    LdMatrixAsync = 5,
    /// <summary><see cref="K.TensorCoreGemm.KernelLdMatrixWideAsync"/>: KernelLdMatrixWide staged by cp.async likewise (not yet measured on a GPU).</summary>
    LdMatrixWideAsync = 6,
    /// <summary>
    /// <see cref="K.TensorCoreGemm.KernelWgmma"/>: KernelLdMatrixAsync's staging multiplied by Hopper's wgmma (sm_90 GPUs only,
    /// loaded for sm_90a through LiftedKernels; not yet run on a GPU).
    /// </summary>
    Wgmma = 7,
    /// <summary>
    /// <see cref="K.TensorCoreGemm.KernelWgmmaDeep"/>: Wgmma with 4 stages in 64 KB of dynamic shared memory, one batch per
    /// warpgroup left running across the barrier (not yet run on a GPU).
    /// </summary>
    WgmmaDeep = 8,
}

/// <summary>Arithmetic of the device GEMMs (<see cref="GpuOps.GemmPrecision"/>).</summary>
public enum GemmPrecision
{
    /// <summary>fp32 SIMT kernel (<see cref="K.Gemm"/>): the default, used by the parity checks.</summary>
    Fp32 = 0,
    /// <summary>Tensor cores (<see cref="K.TensorCoreGemm"/>): operands rounded to bf16, fp32 accumulation and epilogue.</summary>
    Bf16 = 1,
    /// <summary>Tensor cores (<see cref="K.TensorCoreGemm.KernelTf32"/>): operands rounded to tf32 (10-bit mantissa), fp32 accumulation and epilogue.</summary>
    Tf32 = 2,
}
