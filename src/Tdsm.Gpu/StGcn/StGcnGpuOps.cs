using ILGPU;
using ILGPU.Runtime;
using Tdsm.Kernels.StGcn;
using Tdsm.StGcn;
using Tdsm.Tensors;
using K = Tdsm.Kernels.StGcn;
using Buf = ILGPU.ArrayView<float>;
using TC = Tdsm.Kernels.TensorCoreGemm;

namespace Tdsm.Gpu.StGcn;

/// <summary>
/// The ST-GCN op set on an ILGPU device (<see cref="IStGcnOps"/>): tensors are <see cref="GpuTensor"/>
/// views of device buffers this object allocates and frees (<see cref="Free"/>, or all at
/// <see cref="Dispose"/>), so <see cref="StGcnModel"/> runs on the device unchanged (activation
/// gradients overwrite, parameter gradients accumulate). Kernels are loaded once; float64 scratch for the
/// deterministic two-stage reductions is owned here and grows on demand. Shapes are validated on
/// the host before every launch (a device fault would poison the context). Launches are
/// asynchronous on the default stream; <see cref="CrossEntropy"/> synchronises (it returns the loss).
/// </summary>
public sealed class StGcnGpuOps : StGcnBufferOps<Buf>, IDisposable
{
    private readonly Accelerator _acc;
    private MemoryBuffer1D<double, Stride1D.Dense> _d0, _d1, _sums, _r0, _r1;
    private MemoryBuffer1D<float, Stride1D.Dense> _part, _loss, _adjacency;
    private MemoryBuffer1D<int, Stride1D.Dense> _labels;
    // Packed bf16 operands of the stride-1 convolutions (PackedConv): the channels-last input and the weight; for a weight
    // gradient, x's and dy's channel-first rows.
    private MemoryBuffer1D<uint, Stride1D.Dense> _packIn, _packW;
    private Action<Index1D, ArrayView<float>, ArrayView<uint>, ChannelFirstRows>? _packChannelFirst;
    private Action<KernelConfig, ArrayView<float>, ArrayView<uint>, int, int, int, int>? _packChannelsLast;
    // The packed products: x shifted per tap (forward, input gradient) and the weight gradient's tap rows.
    private readonly PackedProductKernels<TC.ShiftedB> _shiftedGemm = new(TC.KernelLdMatrixShifted, TC.KernelLdMatrixShiftedAsync, TC.KernelWgmmaShifted);
    private readonly PackedProductKernels<TC.TapRowsB> _tapRowsGemm = new(TC.KernelLdMatrixTapRows, TC.KernelLdMatrixTapRowsAsync, TC.KernelWgmmaTapRows);
    private Action<Index1D, ArrayView<float>, ArrayView<uint>, int, int>? _packWeight;
    private Action<Index1D, ArrayView<float>, ArrayView<uint>, int, int, int>? _packWeightT;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _dummy;
    private readonly Dictionary<Tensor, MemoryBuffer1D<float, Stride1D.Dense>> _owned = [];

    private readonly Action<Index1D, Buf, Buf, int, int, int, int> _inToBn, _inToBnBwd;
    private readonly Action<Index1D, Buf, Buf, int, int, int> _bnToBlock, _bnToBlockBwd;
    private readonly Action<Index1D, Buf, Buf, ArrayView<double>, ArrayView<double>, int, int, int, int> _partial;
    private readonly Action<Index1D, Buf, Buf, Buf, Buf, ArrayView<double>, ArrayView<double>, int, int, int> _partialGrad;
    private readonly Action<Index1D, ArrayView<double>, Buf> _accSum;
    private readonly Action<KernelConfig, ArrayView<double>, ArrayView<double>, ArrayView<double>, ArrayView<double>, int, int, int> _reduceRows;
    private readonly Action<Index1D, ArrayView<double>, Buf, BatchNormArgs> _bnMean;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<double>, Buf, Buf, Buf, Buf, BatchNormArgs> _bnFinish;
    private readonly Action<Index1D, Buf, Buf, Buf, Buf, Buf, Buf, int, int> _bnNormalize;
    private readonly Action<Index1D, Buf, Buf, Buf, Buf, Buf, Buf, BatchNormArgs> _bnEval;
    private readonly Action<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, Buf, Buf, BatchNormArgs> _bnGradParams;
    private readonly Action<Index1D, Buf, Buf, Buf, Buf, Buf, ArrayView<double>, Buf, BatchNormArgs> _bnGradInput;
    private readonly Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs> _convFwd, _convFwdWide, _convDx, _convDxWide, _convDw, _convDwWide, _convDwTWide;
    private readonly Action<Index1D, Buf, Buf, int, int> _reduceSplits;
    private readonly Action<KernelConfig, Buf, Buf, Buf, GraphArgs, int, int> _graphFwd, _graphDy;
    private readonly Action<Index1D, Buf, Buf, Buf, GraphArgs, int> _graphAdjacency;
    private readonly Action<KernelConfig, Buf, Buf, ArrayView<double>, GraphArgs, int, int, int, int> _impPartial;
    private readonly Action<Index1D, ArrayView<double>, Buf, Buf, int, int> _impReduce;
    private readonly Action<Index1D, Buf, Buf> _relu, _addInPlace;
    private readonly Action<Index1D, Buf, Buf, Buf> _reluBwd;
    private readonly Action<Index1D, Buf, Buf, Buf, int> _resRelu;
    private readonly Action<Index1D, Buf, Buf, Buf, Buf, int> _resReluBwd;
    private readonly Action<Index1D, Buf, Buf, int, int, int> _poolBwd;
    private readonly Action<KernelConfig, Buf, Buf, int, int, int, int> _pool;
    private readonly Action<Index1D, Buf, ArrayView<int>, Buf, Buf, int, int> _ce;
    private readonly Action<Index1D, Buf, Buf, Buf, float, float, float> _sgd;

    private readonly string _deviceName;
    // Tensor-core conv kernels, loaded on first use: [0] bf16, [1] tf32.
    // Tensor-core kernels by [2·precision (bf16 0, tf32 1) + groups per SM - 1].
    private readonly Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs>?[] _tcFwd = new Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs>?[4],
        _tcDx = new Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs>?[4], _tcDw = new Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs>?[4];
    private GemmPrecision _convPrecision = GemmPrecision.Fp32;

    /// <summary>Tier name: "gpu" on CUDA, "gpu-sim" on the simulator, with "-bf16" / "-tf32" when the convolutions run on tensor cores.</summary>
    public override string Name => _deviceName + _convPrecision switch { GemmPrecision.Bf16 => "-bf16", GemmPrecision.Tf32 => "-tf32", _ => "" };

    /// <summary>
    /// Arithmetic of the convolutions (1x1, temporal, classifier): <see cref="GemmPrecision.Fp32"/> (default, the fp32 SIMT
    /// kernels of <see cref="ConvGemm"/>, used by the parity checks) or <see cref="GemmPrecision.Bf16"/> (the tensor-core
    /// kernels of <see cref="TensorCoreConv"/>: operands rounded to bf16, fp32 accumulation, bias and split reduction)
    /// or <see cref="GemmPrecision.Tf32"/> (the same with operands rounded to tf32). Tensor-core kernels are loaded on first use.
    /// </summary>
    public GemmPrecision ConvPrecision
    {
        get => _convPrecision;
        set
        {
            if (!Enum.IsDefined(value)) throw new ArgumentException($"ST-GCN GPU convolutions: unknown precision {value}", nameof(value));
            _convPrecision = value;
        }
    }

    /// <summary>
    /// Groups per SM the tensor-core convolutions are compiled for (launch bounds): 1 (the default, 168-182 registers)
    /// or 2 (128 registers; ptxas sm_80 spills 56-76 bytes per kernel). The same bits either way; `pretrain-encoder
    /// --bench` with tensor-core convolutions times both.
    /// </summary>
    public int TensorCoreGroupsPerSM
    {
        get => _tcGroupsPerSM;
        set => _tcGroupsPerSM = value is 1 or 2 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "1 or 2 groups per SM");
    }
    private int _tcGroupsPerSM = TensorCoreConv.MinGroupsPerSM;

    /// <summary>The accelerator the kernels run on.</summary>
    public Accelerator Accelerator => _acc;

    /// <summary>Loads every ST-GCN kernel on <paramref name="device"/>.</summary>
    public StGcnGpuOps(GpuDevice device)
    {
        _acc = device.Accelerator;
        _deviceName = device.IsCuda ? "gpu" : "gpu-sim";
        WgmmaPackedConvs = WgmmaConvSetting(Environment.GetEnvironmentVariable("TDSM_CONV_WGMMA"),
            whenUnset: _acc is ILGPU.Runtime.Cuda.CudaAccelerator && PtxTarget.CanRunSm90a(_acc));
        _inToBn = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, int, int, int, int>(K.StGcnLayout.InputToBn);
        _inToBnBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, int, int, int, int>(K.StGcnLayout.InputToBnBackward);
        _bnToBlock = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, int, int, int>(K.StGcnLayout.BnToBlock);
        _bnToBlockBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, int, int, int>(K.StGcnLayout.BnToBlockBackward);
        _partial = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, ArrayView<double>, ArrayView<double>, int, int, int, int>(ChannelStats.Partial);
        _partialGrad = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, Buf, ArrayView<double>, ArrayView<double>, int, int, int>(ChannelStats.PartialGrad);
        _accSum = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, Buf>(ChannelStats.AccumulateSum);
        _reduceRows = _acc.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<double>, ArrayView<double>, int, int, int>(ChannelStats.ReduceRows);
        _bnMean = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, Buf, BatchNormArgs>(K.BatchNorm.Mean);
        _bnFinish = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, Buf, Buf, Buf, Buf, BatchNormArgs>(K.BatchNorm.Finish);
        _bnNormalize = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, Buf, Buf, Buf, int, int>(K.BatchNorm.Normalize);
        _bnEval = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, Buf, Buf, Buf, BatchNormArgs>(K.BatchNorm.Eval);
        _bnGradParams = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, ArrayView<double>, Buf, Buf, BatchNormArgs>(K.BatchNorm.GradParams);
        _bnGradInput = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, Buf, Buf, ArrayView<double>, Buf, BatchNormArgs>(K.BatchNorm.GradInput);
        _convFwd = LoadConv(ConvGemm.Forward);
        _convFwdWide = LoadConv(ConvGemm.ForwardWide);
        _convDx = LoadConv(ConvGemm.InputGrad);
        _convDxWide = LoadConv(ConvGemm.InputGradWide);
        _convDw = LoadConv(ConvGemm.WeightGrad);
        _convDwWide = LoadConv(ConvGemm.WeightGradWide);
        _convDwTWide = LoadConv(ConvGemm.WeightGradTWide);
        _reduceSplits = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, int, int>(ConvGemm.ReduceSplits);
        _graphFwd = _acc.LoadStreamKernel<Buf, Buf, Buf, GraphArgs, int, int>(K.GraphAggregate.Forward);
        _graphDy = _acc.LoadStreamKernel<Buf, Buf, Buf, GraphArgs, int, int>(K.GraphAggregate.InputGrad);
        _graphAdjacency = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, GraphArgs, int>(K.GraphAggregate.PaddedAdjacency);
        _impPartial = _acc.LoadStreamKernel<Buf, Buf, ArrayView<double>, GraphArgs, int, int, int, int>(K.GraphAggregate.ImportancePartial);
        _impReduce = _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, Buf, Buf, int, int>(K.GraphAggregate.ImportanceReduce);
        _relu = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf>(Elementwise.Relu);
        _addInPlace = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf>(Elementwise.AddInPlace);
        _reluBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf>(Elementwise.ReluBackward);
        _resRelu = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, int>(Elementwise.ResidualRelu);
        _resReluBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, Buf, int>(Elementwise.ResidualReluBackward);
        _pool = _acc.LoadStreamKernel<Buf, Buf, int, int, int, int>(Head.Pool);
        _poolBwd = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, int, int, int>(Head.PoolBackward);
        _ce = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, ArrayView<int>, Buf, Buf, int, int>(Head.CrossEntropy);
        _sgd = _acc.LoadAutoGroupedStreamKernel<Index1D, Buf, Buf, Buf, float, float, float>(Sgd.NesterovStep);

        _d0 = _acc.Allocate1D<double>(1024); _d1 = _acc.Allocate1D<double>(1024); _sums = _acc.Allocate1D<double>(1024);
        _r0 = _acc.Allocate1D<double>(1024); _r1 = _acc.Allocate1D<double>(1024);
        _part = _acc.Allocate1D<float>(1024); _loss = _acc.Allocate1D<float>(64); _labels = _acc.Allocate1D<int>(64);
        _adjacency = _acc.Allocate1D<float>(K.GraphAggregate.MaxAdjacency);
        _dummy = _acc.Allocate1D<float>(1);
        _packIn = _acc.Allocate1D<uint>(1); _packW = _acc.Allocate1D<uint>(1);
    }

    private Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs> LoadConv(Action<Buf, Buf, Buf, Buf, ConvArgs> kernel) =>
        _acc.LoadStreamKernel(kernel, ConvGemm.Specialization);

    /// <summary>The tensor-core kernel of the current precision from <paramref name="slots"/>, loaded on first use.</summary>
    private Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs> LoadTc(Action<KernelConfig, Buf, Buf, Buf, Buf, ConvArgs>?[] slots,
        Action<Buf, Buf, Buf, Buf, ConvArgs> bf16, Action<Buf, Buf, Buf, Buf, ConvArgs> tf32)
    {
        bool isBf16 = _convPrecision == GemmPrecision.Bf16;
        return slots[(isBf16 ? 0 : 2) + _tcGroupsPerSM - 1] ??= _acc.LoadStreamKernelLifted(isBf16 ? bf16 : tf32, TensorCoreConv.SpecializationFor(_tcGroupsPerSM));
    }

    private bool TcConvs => _convPrecision != GemmPrecision.Fp32;

    /// <summary>
    /// With bf16 convolutions: run the stride-1 forward and input-gradient products whose summed channels are a multiple of 32 on
    /// packed bf16 operands (<see cref="PackedConv"/>: the input packed channels-last and padded, then
    /// <see cref="Tdsm.Kernels.TensorCoreGemm.KernelLdMatrixShifted"/>) instead of <see cref="TensorCoreConv"/>'s
    /// gathering kernels, and (with <see cref="PackedWeightGrads"/>) the temporal convolutions' weight gradients on
    /// channel-first packed rows. Default on; the same products up to the order of the fp32 sums. The strided convolutions
    /// are not affected. The environment variable TDSM_PACKED_CONVS=0 turns it off for a whole process
    /// (the GPU visit's fallback if these kernels, not yet run on a GPU, fault).
    /// </summary>
    public bool PackedConvs { get; set; } = Environment.GetEnvironmentVariable("TDSM_PACKED_CONVS") != "0";

    /// <summary>
    /// With <see cref="PackedConvs"/>: the weight gradients of the stride-1 temporal convolutions on packed operands
    /// (<see cref="PackedConv.WeightGrad"/>: dy and x packed channel-first, every tap read from x's one copy by
    /// <see cref="Tdsm.Kernels.TensorCoreGemm.KernelLdMatrixTapRows"/>) instead of <see cref="TensorCoreConv"/>'s gathering
    /// kernel. Default on; TDSM_PACKED_WEIGHT_GRADS=0 turns it off for a whole process. Its own switch because its gain
    /// depends on the packed kernel's speed: the packing moves ~0.4 GB per layer of the Paper model.
    /// </summary>
    public bool PackedWeightGrads { get; set; } = Environment.GetEnvironmentVariable("TDSM_PACKED_WEIGHT_GRADS") != "0";

    /// <summary>
    /// With <see cref="PackedConvs"/>: stage the packed products by <c>cp.async</c> through three shared stages
    /// (<see cref="Tdsm.Kernels.TensorCoreGemm.KernelLdMatrixShiftedAsync"/> and <see cref="Tdsm.Kernels.TensorCoreGemm.KernelLdMatrixTapRowsAsync"/>,
    /// the same bits) instead of through registers. Off by default until a GPU visit has measured it
    /// (`pretrain-encoder --bench` prints the step both ways); TDSM_CONV_ASYNC=1 turns it on for a whole process.
    /// </summary>
    public bool AsyncPackedConvs { get; set; } = Environment.GetEnvironmentVariable("TDSM_CONV_ASYNC") == "1";

    /// <summary>Of <see cref="PackedConvLaunches"/>, those on the cp.async kernels (<see cref="AsyncPackedConvs"/>).</summary>
    public long AsyncPackedConvLaunches { get; private set; }

    /// <summary>
    /// With <see cref="PackedConvs"/>, on a Hopper GPU (compute capability 9.0): the packed products on Hopper's warpgroup
    /// MMA (<see cref="Tdsm.Kernels.TensorCoreGemm.KernelWgmmaShifted"/> and <see cref="Tdsm.Kernels.TensorCoreGemm.KernelWgmmaTapRows"/>:
    /// the cp.async staging of <see cref="AsyncPackedConvs"/>, wgmma instead of ldmatrix + mma.sync; within fp32 rounding
    /// of the other kernels, their bits on the simulator). Takes precedence over <see cref="AsyncPackedConvs"/>. On by default on
    /// a Hopper GPU (CUDA, compute capability 9.0), where both H200 visits measured the Paper step faster with it (88 vs 92 and
    /// 87 vs 91 ms) and its CUDA test passed; off elsewhere, the simulator included. TDSM_CONV_WGMMA=1 or 0 decides for a
    /// whole process (<see cref="WgmmaConvSetting"/>).
    /// </summary>
    public bool WgmmaPackedConvs { get; set; }

    /// <summary>The <see cref="WgmmaPackedConvs"/> a TDSM_CONV_WGMMA value gives: "1" on, "0" off, empty or unset
    /// <paramref name="whenUnset"/> (the device's default).</summary>
    /// <exception cref="ArgumentException">Any other value: failing loudly rather than running the other kernels.</exception>
    public static bool WgmmaConvSetting(string? value, bool whenUnset) => value switch
    {
        null or "" => whenUnset,
        "1" => true,
        "0" => false,
        _ => throw new ArgumentException($"TDSM_CONV_WGMMA='{value}': expected 1 (wgmma convolutions) or 0 (the mma.sync kernels)"),
    };

    /// <summary>Of <see cref="PackedConvLaunches"/>, those on the wgmma kernels (<see cref="WgmmaPackedConvs"/>).</summary>
    public long WgmmaPackedConvLaunches { get; private set; }

    /// <summary>True unless this is a CUDA GPU before Hopper (wgmma needs compute capability 9.0; the simulator emulates it).</summary>
    public bool SupportsWgmma => PtxTarget.CanRunSm90a(_acc);

    private void RequireWgmma()
    {
        if (!SupportsWgmma)
            throw new NotSupportedException($"WgmmaPackedConvs (TDSM_CONV_WGMMA=1): wgmma needs a Hopper GPU (compute capability 9.0), this is {_acc.Name}; TDSM_CONV_WGMMA=0 runs the mma.sync kernels");
    }

    /// <summary>Products run on <see cref="PackedConv"/> so far (forward, input gradient and weight gradient each count one).</summary>
    public long PackedConvLaunches { get; private set; }

    private static long Address(ArrayView<uint> view) => view.LoadEffectiveAddressAsPtr().ToInt64();

    private bool UsesPackedConv(int channels, ConvArgs p) => _convPrecision == GemmPrecision.Bf16 && PackedConvs && PackedConv.Supports(channels, p);

    private bool UsesPackedWeightGrad(ConvArgs p) => _convPrecision == GemmPrecision.Bf16 && PackedConvs && PackedWeightGrads && PackedConv.SupportsWeightGrad(p);

    /// <summary>
    /// One stride-1 product on packed operands: packs <paramref name="input"/> (B, c, t, V) channels-last padded by
    /// p.Pad frames and the weight (forward: W'; <paramref name="inputGrad"/>: W'' tap-reversed), then out (B, m, t·V) =
    /// W · input shifted per tap (+ bias per row when given).
    /// </summary>
    private void PackedConvProduct(Buf input, Buf w, Buf bias, Buf output, ConvArgs p, bool inputGrad)
    {
        int c = inputGrad ? p.Cout : p.Cin, m = inputGrad ? p.Cin : p.Cout, t = inputGrad ? p.Tout : p.T;
        long inWords = PackedConv.PackedWords(p.B, c, t, p.V, p.Pad), wWords = (long)m * p.Kt * c / 2;
        if (inWords > int.MaxValue / 4) throw new NotSupportedException($"PackedConv: {inWords} packed words exceed the kernel's 32-bit chunk indexes");
        Grow(ref _packIn, inWords);
        Grow(ref _packW, wWords);
        _packChannelsLast ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<uint>, int, int, int, int>(PackedConv.PackChannelsLast);
        int rows = (t + 2 * p.Pad) * p.V;
        _packChannelsLast(new KernelConfig(new Index3D((rows + PackedConv.PackRows - 1) / PackedConv.PackRows, (c + PackedConv.PackChannels - 1) / PackedConv.PackChannels, p.B),
            new Index3D(PackedConv.PackThreads, 1, 1)), input, _packIn.View, c, t, p.V, p.Pad);
        if (inputGrad)
        {
            _packWeightT ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>, int, int, int>(PackedConv.PackWeightTransposed);
            _packWeightT(checked((int)wWords), w, _packW.View, p.Cin, p.Cout, p.Kt);
        }
        else
        {
            _packWeight ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>, int, int>(PackedConv.PackWeight);
            _packWeight(checked((int)wWords), w, _packW.View, p.Cin, p.Kt);
        }
        long n = (long)t * p.V;
        var args = new Tdsm.Kernels.GemmArgs { M = m, N = checked((int)n), K = p.Kt * c, PairStores = output.LoadEffectiveAddressAsPtr().ToInt64() % 8 == 0 ? 1 : 0 };
        var shift = PackedConv.Shift(c, p.Kt, t, p.V, p.Pad, rowBias: !inputGrad);
        var (gx, gy) = TensorCoreConv.Blocks(m, n);
        var config = new KernelConfig(new Index3D(gx, gy, p.B), ConvGroup);
        LaunchPackedProduct(_shiftedGemm, config, output, inputGrad ? _dummy.View : bias, args, shift);
    }

    /// <summary>
    /// The kernels of one kind of packed product, B described by <typeparamref name="TB"/> (<see cref="TC.ShiftedB"/>,
    /// <see cref="TC.TapRowsB"/>), one per staging (<see cref="AsyncPackedConvs"/>, <see cref="WgmmaPackedConvs"/>), each
    /// loaded at its first launch.
    /// </summary>
    private sealed class PackedProductKernels<TB>(
        Action<ArrayView<uint>, ArrayView<uint>, Buf, Buf, Tdsm.Kernels.GemmArgs, TB> registers,
        Action<ArrayView<uint>, ArrayView<uint>, Buf, Buf, Tdsm.Kernels.GemmArgs, TB, long, long> async,
        Action<ArrayView<uint>, ArrayView<uint>, Buf, Buf, Tdsm.Kernels.GemmArgs, TB, long, long> wgmma) where TB : struct
    {
        public readonly Action<ArrayView<uint>, ArrayView<uint>, Buf, Buf, Tdsm.Kernels.GemmArgs, TB> Registers = registers;
        public readonly Action<ArrayView<uint>, ArrayView<uint>, Buf, Buf, Tdsm.Kernels.GemmArgs, TB, long, long> Async = async, Wgmma = wgmma;
        public Action<KernelConfig, ArrayView<uint>, ArrayView<uint>, Buf, Buf, Tdsm.Kernels.GemmArgs, TB>? LoadedRegisters;
        public Action<KernelConfig, ArrayView<uint>, ArrayView<uint>, Buf, Buf, Tdsm.Kernels.GemmArgs, TB, long, long>? LoadedAsync, LoadedWgmma;
    }

    /// <summary>
    /// out = A (_packW) · B (_packIn, as <paramref name="b"/> describes) on the staging this object is set to (wgmma,
    /// cp.async, or registers), counted in <see cref="PackedConvLaunches"/> and the staging's own counter.
    /// </summary>
    private void LaunchPackedProduct<TB>(PackedProductKernels<TB> kernels, KernelConfig config, Buf output, Buf bias, Tdsm.Kernels.GemmArgs args, TB b) where TB : struct
    {
        var spec = TC.Specialization();
        if (WgmmaPackedConvs)
        {
            RequireWgmma();
            (kernels.LoadedWgmma ??= _acc.LoadStreamKernelLifted(kernels.Wgmma, spec))(config, _packW.View, _packIn.View, output, bias, args, b, Address(_packW.View), Address(_packIn.View));
            WgmmaPackedConvLaunches++;
        }
        else if (AsyncPackedConvs)
        {
            (kernels.LoadedAsync ??= _acc.LoadStreamKernelLifted(kernels.Async, spec))(config, _packW.View, _packIn.View, output, bias, args, b, Address(_packW.View), Address(_packIn.View));
            AsyncPackedConvLaunches++;
        }
        else
        {
            (kernels.LoadedRegisters ??= _acc.LoadStreamKernelLifted(kernels.Registers, spec))(config, _packW.View, _packIn.View, output, bias, args, b);
        }
        PackedConvLaunches++;
    }

    // The weight gradient's split-K partials (_part: splits x ws floats, ws = Cout·Cin·kt) on the kernels that gather x and dy
    // while staging (fp32 SIMT or TensorCoreConv); returns the split count. The (b, t, v) reduction is split over grid z so
    // the grid fills the device.
    private int GatheredWeightGradPartials(Buf x, Buf dy, ConvArgs p, long ws)
    {
        var plan = TcConvs ? TensorCoreConv.PlanWeightGrad(p) : ConvGemm.PlanWeightGrad(p);
        p.KSplit = plan.KSplit;
        Grow(ref _part, plan.Splits * ws);
        var kernel = TcConvs ? LoadTc(_tcDw, TensorCoreConv.WeightGradBf16, TensorCoreConv.WeightGradTf32)
            : plan.Swapped ? _convDwTWide : plan.Tile == ConvTile.Wide ? _convDwWide : _convDw;
        kernel(new KernelConfig(new Index3D(plan.GridX, plan.GridY, plan.Splits), ConvGroup), x, dy, _dummy.View, _part.View, p);
        return plan.Splits;
    }

    /// <summary>
    /// The split-K partials (_part, as <see cref="GatheredWeightGradPartials"/>) of a stride-1 convolution's weight gradient on
    /// packed operands: dy's and x's channel-first rows (<see cref="PackedConv.PackChannelFirst"/>), then
    /// <see cref="Tdsm.Kernels.TensorCoreGemm.KernelLdMatrixTapRows"/>; returns the split count.
    /// </summary>
    private int PackedWeightGradPartials(Buf x, Buf dy, ConvArgs p, long ws)
    {
        var l = PackedConv.WeightGrad(p);
        long aWords = (long)l.Dy.C * l.Dy.RowWords, bWords = (long)l.X.C * l.X.RowWords;
        Grow(ref _packW, aWords);
        Grow(ref _packIn, bWords);
        Grow(ref _part, l.Splits * ws);
        _packChannelFirst ??= _acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>, ChannelFirstRows>(PackedConv.PackChannelFirst);
        _packChannelFirst(checked((int)(aWords / 4)), dy, _packW.View, l.Dy);   // a thread per 16-byte chunk
        _packChannelFirst(checked((int)(bWords / 4)), x, _packIn.View, l.X);
        var config = new KernelConfig(new Index3D(l.GridX, l.GridY, l.Splits), ConvGroup);
        LaunchPackedProduct(_tapRowsGemm, config, _part.View, _dummy.View, l.Args with { PairStores = 1 }, l.Taps);
        return l.Splits;
    }

    private void Grow<T>(ref MemoryBuffer1D<T, Stride1D.Dense> buf, long size) where T : unmanaged
    {
        if (buf.Length >= size) return;
        _acc.Synchronize(); // queued launches may still read the old buffer
        buf.Dispose();
        buf = _acc.Allocate1D<T>(Math.Max(size, 2 * buf.Length));
    }

    private static void Need(Buf v, long n, string op, string name)
    {
        if (v.Length < n) throw new ArgumentException($"ST-GCN GPU {op}: {name} has {v.Length} elements, the op needs {n}");
    }

    private static void Sizes(string op, params int[] sizes)
    {
        foreach (var s in sizes)
            if (s < 1) throw new ArgumentException($"ST-GCN GPU {op}: sizes must be positive, got [{string.Join(", ", sizes)}]");
    }

    // ------------------------------------------------------------------ memory

    /// <inheritdoc/>
    protected override Buf U(Tensor t) => D(t);

    private static Buf D(Tensor t) => t is GpuTensor g ? g.View
        : throw new ArgumentException($"the ST-GCN GPU tier takes device tensors (from its Allocate/Adopt/View), got {t}");

    /// <inheritdoc/>
    public override Tensor Allocate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var buf = _acc.Allocate1D<float>(Math.Max(1, length));
        buf.MemSetToZero();
        var t = new GpuTensor(((Buf)buf.View).SubView(0, length), [length]);
        _owned.Add(t, buf);
        return t;
    }

    /// <inheritdoc/>
    public override Tensor Adopt(float[] host)
    {
        var t = Allocate(host.Length);
        Upload(host, t);
        return t;
    }

    /// <inheritdoc/>
    public override Tensor View(Tensor storage, int offset, int length)
    {
        var v = D(storage);
        if (offset < 0 || length < 0 || (long)offset + length > v.Length)
            throw new ArgumentException($"view [{offset}, {(long)offset + length}) is outside a tensor of {v.Length}");
        return new GpuTensor(v.SubView(offset, length), [length]);
    }

    /// <summary>Frees the device buffer of a tensor from <see cref="Allocate"/> or <see cref="Adopt"/> (after queued launches finish).</summary>
    public override void Free(Tensor t)
    {
        if (!_owned.Remove(t, out var buf)) throw new ArgumentException($"ST-GCN GPU Free: {t} was not allocated by this op set, or was freed already");
        _acc.Synchronize();
        buf.Dispose();
    }

    /// <inheritdoc/>
    public override void Upload(ReadOnlySpan<float> source, Tensor destination)
    {
        if (source.Length != destination.Length) throw new ArgumentException($"upload of {source.Length} values into {destination}");
        D(destination).CopyFromCPU(source);
    }

    /// <inheritdoc/>
    public override void Download(Tensor source, Span<float> destination)
    {
        if (destination.Length != source.Length) throw new ArgumentException($"download of {source} into {destination.Length} values");
        _acc.Synchronize();
        D(source).CopyToCPU(destination);
    }

    /// <inheritdoc/>
    public override void Zero(Tensor t) => D(t).MemSetToZero();

    // ------------------------------------------------------------------ layout

    /// <summary>x (N,C,T,V,M) → y (B, V·C, T).</summary>
    protected override void InputToBnLayout(Buf x, Buf y, int n, int c, int t, int v, int m)
    {
        long s = (long)n * c * t * v * m;
        Sizes("InputToBnLayout", n, c, t, v, m); Need(x, s, "InputToBnLayout", "x"); Need(y, s, "InputToBnLayout", "y");
        _inToBn(checked((int)s), x, y, c, t, v, m);
    }

    /// <summary>Backward of <see cref="InputToBnLayout"/> (dx overwritten).</summary>
    protected override void InputToBnLayoutBackward(Buf dy, Buf dx, int n, int c, int t, int v, int m)
    {
        long s = (long)n * c * t * v * m;
        Sizes("InputToBnLayoutBackward", n, c, t, v, m); Need(dy, s, "InputToBnLayoutBackward", "dy"); Need(dx, s, "InputToBnLayoutBackward", "dx");
        _inToBnBwd(checked((int)s), dy, dx, c, t, v, m);
    }

    /// <summary>x (B, V·C, T) → y (B, C, T, V).</summary>
    protected override void BnToBlockLayout(Buf x, Buf y, int b, int c, int t, int v)
    {
        long s = (long)b * c * t * v;
        Sizes("BnToBlockLayout", b, c, t, v); Need(x, s, "BnToBlockLayout", "x"); Need(y, s, "BnToBlockLayout", "y");
        _bnToBlock(checked((int)s), x, y, c, t, v);
    }

    /// <summary>Backward of <see cref="BnToBlockLayout"/> (dx overwritten).</summary>
    protected override void BnToBlockLayoutBackward(Buf dy, Buf dx, int b, int c, int t, int v)
    {
        long s = (long)b * c * t * v;
        Sizes("BnToBlockLayoutBackward", b, c, t, v); Need(dy, s, "BnToBlockLayoutBackward", "dy"); Need(dx, s, "BnToBlockLayoutBackward", "dx");
        _bnToBlockBwd(checked((int)s), dy, dx, c, t, v);
    }

    // ------------------------------------------------------------------ batch norm

    private void CheckBn(string op, Buf x, Buf y, Buf gamma, Buf beta, int b, int c, int l)
    {
        Sizes(op, b, c, l);
        long s = (long)b * c * l;
        Need(x, s, op, "x"); Need(y, s, op, "y"); Need(gamma, c, op, "gamma"); Need(beta, c, op, "beta");
    }

    /// <summary>_r0 (and _r1) = per-channel totals of the (C, rows) partials in _d0 (and _d1): one group per channel.</summary>
    private void ReduceRows(int rows, int c, bool two) =>
        _reduceRows(new KernelConfig(c, ChannelStats.ReduceThreads), _d0.View, two ? _d1.View : _d0.View, _r0.View, two ? _r1.View : _r0.View, rows, c, two ? 1 : 0);

    /// <summary>Training-mode BatchNorm over the channels of x (B,C,L); see <see cref="K.BatchNorm"/>.</summary>
    protected override void BatchNormTrainForward(Buf x, Buf gamma, Buf beta, Buf y, Buf saveMean, Buf saveRstd, Buf runMean, Buf runVar,
        int b, int c, int l, double eps, double momentum)
    {
        CheckBn("BatchNormTrainForward", x, y, gamma, beta, b, c, l);
        Need(saveMean, c, "BatchNormTrainForward", "saveMean"); Need(saveRstd, c, "BatchNormTrainForward", "saveRstd");
        Need(runMean, c, "BatchNormTrainForward", "runMean"); Need(runVar, c, "BatchNormTrainForward", "runVar");
        int rows = ChannelStats.Rows(b, l);
        var a = new BatchNormArgs { B = b, C = c, L = l, Eps = eps, Momentum = momentum };
        Grow(ref _d0, (long)rows * c); Grow(ref _d1, (long)rows * c); Grow(ref _r0, c); Grow(ref _r1, c);
        _partial(checked(rows * c), x, _dummy.View, _d0.View, _d1.View, c, l, 0, rows);
        ReduceRows(rows, c, two: false);
        _bnMean(c, _r0.View, saveMean, a);
        _partial(checked(rows * c), x, saveMean, _d0.View, _d1.View, c, l, 1, rows);
        ReduceRows(rows, c, two: true);
        _bnFinish(c, _r0.View, _r1.View, saveMean, saveRstd, runMean, runVar, a);
        _bnNormalize(checked(b * c * l), x, gamma, beta, saveMean, saveRstd, y, c, l);
    }

    /// <summary>Eval-mode BatchNorm with the running statistics.</summary>
    protected override void BatchNormEvalForward(Buf x, Buf gamma, Buf beta, Buf y, Buf runMean, Buf runVar, int b, int c, int l, double eps)
    {
        CheckBn("BatchNormEvalForward", x, y, gamma, beta, b, c, l);
        Need(runMean, c, "BatchNormEvalForward", "runMean"); Need(runVar, c, "BatchNormEvalForward", "runVar");
        _bnEval(checked(b * c * l), x, gamma, beta, runMean, runVar, y, new BatchNormArgs { B = b, C = c, L = l, Eps = eps });
    }

    /// <summary>Backward of training-mode BatchNorm: dx overwritten, dGamma/dBeta accumulate.</summary>
    protected override void BatchNormBackward(Buf dy, Buf x, Buf gamma, Buf saveMean, Buf saveRstd, Buf dx, Buf dGamma, Buf dBeta, int b, int c, int l)
    {
        CheckBn("BatchNormBackward", x, dx, gamma, saveMean, b, c, l);
        Need(dy, (long)b * c * l, "BatchNormBackward", "dy"); Need(saveRstd, c, "BatchNormBackward", "saveRstd");
        Need(dGamma, c, "BatchNormBackward", "dGamma"); Need(dBeta, c, "BatchNormBackward", "dBeta");
        int rows = ChannelStats.Rows(b, l);
        var a = new BatchNormArgs { B = b, C = c, L = l };
        Grow(ref _d0, (long)rows * c); Grow(ref _d1, (long)rows * c); Grow(ref _sums, 2L * c); Grow(ref _r0, c); Grow(ref _r1, c);
        _partialGrad(checked(rows * c), dy, x, saveMean, saveRstd, _d0.View, _d1.View, c, l, rows);
        ReduceRows(rows, c, two: true);
        _bnGradParams(c, _r0.View, _r1.View, _sums.View, dGamma, dBeta, a);
        _bnGradInput(checked(b * c * l), dy, x, gamma, saveMean, saveRstd, _sums.View, dx, a);
    }

    // ------------------------------------------------------------------ convolutions

    private static ConvArgs Conv(string op, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        Sizes(op, b, cin, cout, t, v, kt, stride);
        if (kt % 2 == 0) throw new ArgumentException($"ST-GCN GPU {op}: temporal kernel {kt} must be odd");
        int pad = (kt - 1) / 2;
        int tout = (t + 2 * pad - kt) / stride + 1;
        // The conv kernels index inside a tensor with 32-bit integers.
        long most = Math.Max((long)b * Math.Max(cin, cout) * t * v, Math.Max((long)cout * cin * kt, ConvGemm.MaxPartials));
        if (most > int.MaxValue) throw new ArgumentException($"ST-GCN GPU {op}: a tensor of {most} elements is over the conv kernels' 32-bit indexing");
        return new ConvArgs { B = b, Cin = cin, Cout = cout, T = t, Tout = tout, V = v, Kt = kt, Stride = stride, Pad = pad };
    }

    private static readonly Index3D ConvGroup = new(ConvGemm.Threads, 1, 1);

    /// <summary>The launch of a per-sample conv GEMM (M, N) on the block shape that pads it least.</summary>
    private static (KernelConfig Config, bool Wide) ConvLaunch(long m, long n, int samples)
    {
        var tile = ConvGemm.TileFor(m, n);
        var (gx, gy) = ConvGemm.Blocks(tile, m, n);
        return (new KernelConfig(new Index3D(gx, gy, samples), ConvGroup), tile == ConvTile.Wide);
    }

    /// <summary>The launch of a per-sample tensor-core conv GEMM (M, N): square blocks.</summary>
    private static KernelConfig TcLaunch(long m, long n, int samples)
    {
        var (gx, gy) = TensorCoreConv.Blocks(m, n);
        return new KernelConfig(new Index3D(gx, gy, samples), ConvGroup);
    }

    /// <summary>1x1 conv with temporal stride: x (B,Cin,T,V), w (Cout,Cin), bias (Cout) → y (B,Cout,Tout,V).</summary>
    protected override void Conv1x1Forward(Buf x, Buf w, Buf bias, Buf y, int b, int cin, int cout, int t, int v, int stride) =>
        ConvForward("Conv1x1Forward", x, w, bias, y, Conv("Conv1x1Forward", b, cin, cout, t, v, 1, stride));

    /// <summary>Backward of <see cref="Conv1x1Forward"/>: dx overwritten unless it is empty; dW, dBias accumulate.</summary>
    protected override void Conv1x1Backward(Buf dy, Buf x, Buf w, Buf dx, Buf dW, Buf dBias, int b, int cin, int cout, int t, int v, int stride) =>
        ConvBackward("Conv1x1Backward", dy, x, w, dx, dW, dBias, Conv("Conv1x1Backward", b, cin, cout, t, v, 1, stride));

    /// <summary>Temporal conv (kt x 1, stride, pad (kt-1)/2): x (B,Cin,T,V), w (Cout,Cin,kt), bias (Cout) → y (B,Cout,Tout,V).</summary>
    protected override void TemporalConvForward(Buf x, Buf w, Buf bias, Buf y, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        ConvForward("TemporalConvForward", x, w, bias, y, Conv("TemporalConvForward", b, cin, cout, t, v, kt, stride));

    /// <summary>Backward of <see cref="TemporalConvForward"/>: dx overwritten; dW, dBias accumulate.</summary>
    protected override void TemporalConvBackward(Buf dy, Buf x, Buf w, Buf dx, Buf dW, Buf dBias, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        ConvBackward("TemporalConvBackward", dy, x, w, dx, dW, dBias, Conv("TemporalConvBackward", b, cin, cout, t, v, kt, stride));

    private void ConvForward(string op, Buf x, Buf w, Buf bias, Buf y, ConvArgs p)
    {
        Need(x, (long)p.B * p.Cin * p.T * p.V, op, "x"); Need(w, (long)p.Cout * p.Cin * p.Kt, op, "w");
        Need(bias, p.Cout, op, "bias"); Need(y, (long)p.B * p.Cout * p.Tout * p.V, op, "y");
        if (UsesPackedConv(p.Cin, p)) { PackedConvProduct(x, w, bias, y, p, inputGrad: false); return; }
        if (TcConvs) { LoadTc(_tcFwd, TensorCoreConv.ForwardBf16, TensorCoreConv.ForwardTf32)(TcLaunch(p.Cout, (long)p.Tout * p.V, p.B), x, w, bias, y, p); return; }
        var (config, wide) = ConvLaunch(p.Cout, (long)p.Tout * p.V, p.B);
        (wide ? _convFwdWide : _convFwd)(config, x, w, bias, y, p);
    }

    private void ConvBackward(string op, Buf dy, Buf x, Buf w, Buf dx, Buf dW, Buf dBias, ConvArgs p)
    {
        long ys = (long)p.B * p.Cout * p.Tout * p.V, ws = (long)p.Cout * p.Cin * p.Kt;
        Need(dy, ys, op, "dy"); Need(x, (long)p.B * p.Cin * p.T * p.V, op, "x"); Need(w, ws, op, "w");
        Need(dW, ws, op, "dW"); Need(dBias, p.Cout, op, "dBias");
        if (dx.Length > 0)
        {
            Need(dx, (long)p.B * p.Cin * p.T * p.V, op, "dx");
            // Grid z = (sample, output phase); the widest phase has ⌈T / stride⌉ frames.
            long phaseColumns = (long)((p.T + p.Stride - 1) / p.Stride) * p.V;
            if (UsesPackedConv(p.Cout, p)) PackedConvProduct(dy, w, _dummy.View, dx, p, inputGrad: true);
            else if (TcConvs) LoadTc(_tcDx, TensorCoreConv.InputGradBf16, TensorCoreConv.InputGradTf32)(TcLaunch(p.Cin, phaseColumns, checked(p.B * p.Stride)), dy, w, _dummy.View, dx, p);
            else
            {
                var (config, wide) = ConvLaunch(p.Cin, phaseColumns, checked(p.B * p.Stride));
                (wide ? _convDxWide : _convDx)(config, dy, w, _dummy.View, dx, p);
            }
        }
        // dW += the partials, added in split order (deterministic).
        int splits = UsesPackedWeightGrad(p) ? PackedWeightGradPartials(x, dy, p, ws) : GatheredWeightGradPartials(x, dy, p, ws);
        _reduceSplits(checked((int)ws), _part.View, dW, splits, checked((int)ws));
        int rows = ChannelStats.Rows(p.B, p.Tout * p.V);
        Grow(ref _d0, (long)rows * p.Cout);
        _partial(checked(rows * p.Cout), dy, _dummy.View, _d0.View, _d0.View, p.Cout, p.Tout * p.V, 0, rows);
        Grow(ref _r0, p.Cout);
        ReduceRows(rows, p.Cout, two: false);
        _accSum(p.Cout, _r0.View, dBias);
    }

    // ------------------------------------------------------------------ graph

    private static GraphArgs Graph(string op, Buf y, Buf a, Buf imp, Buf o, int b, int k, int c, int t, int v)
    {
        Sizes(op, b, k, c, t, v);
        if (!K.GraphAggregate.Fits(k, v))
            throw new NotSupportedException($"{op}: the GPU graph kernels hold K·Vp·Vp <= {K.GraphAggregate.MaxAdjacency} adjacency entries in shared memory (Vp = V rounded up to 4); got K {k}, V {v} ({(long)k * K.GraphAggregate.Padded(v) * K.GraphAggregate.Padded(v)})");
        Need(y, (long)b * k * c * t * v, op, "y"); Need(a, (long)k * v * v, op, "A"); Need(imp, (long)k * v * v, op, "imp");
        Need(o, (long)b * c * t * v, op, "o");
        return new GraphArgs { B = b, K = k, C = c, T = t, V = v };
    }

    // A' = A ⊙ imp padded for the tiled kernels, transposed for the input gradient (K.GraphAggregate.PaddedAdjacency), into a
    // buffer of this instance's: computed per call (A and imp change with every optimiser step), ~2,400 threads.
    private Buf PaddedAdjacency(Buf a, Buf imp, GraphArgs p, bool transposed)
    {
        int n = K.GraphAggregate.PaddedAdjacencyLength(p.K, p.V);
        Grow(ref _adjacency, n);
        var padded = _adjacency.View.SubView(0, n);
        _graphAdjacency(n, a, imp, padded, p, transposed ? 1 : 0);
        return padded;
    }

    /// <summary>Rows per tile and tiles per sample of the tiled graph kernels.</summary>
    private static (int Rows, int Tiles) GraphTiles(GraphArgs p)
    {
        int rows = K.GraphAggregate.TileRows(p.K, p.V);
        return (rows, (p.C * p.T + rows - 1) / rows);
    }

    /// <summary>o (B,C,T,V) = Σ_k Σ_v y (B,K,C,T,V) · (A ⊙ imp) (K,V,V).</summary>
    protected override void GraphAggregateForward(Buf y, Buf a, Buf imp, Buf o, int b, int k, int c, int t, int v)
    {
        var p = Graph("GraphAggregateForward", y, a, imp, o, b, k, c, t, v);
        var (rows, tiles) = GraphTiles(p);
        _graphFwd(new KernelConfig(checked(b * tiles), K.GraphAggregate.Threads), y, PaddedAdjacency(a, imp, p, transposed: false), o, p, rows, tiles);
    }

    /// <summary>Backward: dy overwritten, dImp accumulates A ⊙ Σ y·dO (per-sample splits of the rows, then an ordered sum).</summary>
    protected override void GraphAggregateBackward(Buf dO, Buf y, Buf a, Buf imp, Buf dy, Buf dImp, int b, int k, int c, int t, int v)
    {
        var p = Graph("GraphAggregateBackward", y, a, imp, dO, b, k, c, t, v);
        Need(dy, (long)b * k * c * t * v, "GraphAggregateBackward", "dy"); Need(dImp, (long)k * v * v, "GraphAggregateBackward", "dImp");
        var (rows, tiles) = GraphTiles(p);
        _graphDy(new KernelConfig(checked(b * tiles), K.GraphAggregate.Threads), dO, PaddedAdjacency(a, imp, p, transposed: true), dy, p, rows, tiles);
        // A fixed number of partial rows (not one per SM), so the bits are the same on every card.
        int splitsWanted = Math.Clamp((K.GraphAggregate.TargetPartials + b - 1) / b, 1, tiles);
        int tilesPerSplit = (tiles + splitsWanted - 1) / splitsWanted, splits = (tiles + tilesPerSplit - 1) / tilesPerSplit;
        int kvv = k * v * v, partials = checked(b * splits);
        Grow(ref _d1, (long)partials * kvv);
        _impPartial(new KernelConfig(partials, K.GraphAggregate.Threads), y, dO, _d1.View, p, rows, tiles, tilesPerSplit, splits);
        _impReduce(kvv, _d1.View, a, dImp, partials, kvv);
    }

    // ------------------------------------------------------------------ elementwise

    /// <summary>y = max(x, 0).</summary>
    protected override void ReluForward(Buf x, Buf y) { Need(y, x.Length, "ReluForward", "y"); if (x.Length > 0) _relu(checked((int)x.Length), x, y); }

    /// <summary>dx = dy where y &gt; 0, else 0.</summary>
    protected override void ReluBackward(Buf dy, Buf y, Buf dx)
    {
        Need(y, dy.Length, "ReluBackward", "y"); Need(dx, dy.Length, "ReluBackward", "dx");
        if (dy.Length > 0) _reluBwd(checked((int)dy.Length), dy, y, dx);
    }

    /// <summary>y = max(a + r, 0); r may be empty (no residual).</summary>
    protected override void ResidualReluForward(Buf a, Buf r, Buf y)
    {
        Need(y, a.Length, "ResidualReluForward", "y");
        if (r.Length > 0) Need(r, a.Length, "ResidualReluForward", "r");
        if (a.Length > 0) _resRelu(checked((int)a.Length), a, r.Length > 0 ? r : _dummy.View, y, r.Length > 0 ? 1 : 0);
    }

    /// <summary>da = dy where y &gt; 0 (overwritten); dr (if not empty) the same.</summary>
    protected override void ResidualReluBackward(Buf dy, Buf y, Buf da, Buf dr)
    {
        Need(y, dy.Length, "ResidualReluBackward", "y"); Need(da, dy.Length, "ResidualReluBackward", "da");
        if (dr.Length > 0) Need(dr, dy.Length, "ResidualReluBackward", "dr");
        if (dy.Length > 0) _resReluBwd(checked((int)dy.Length), dy, y, da, dr.Length > 0 ? dr : _dummy.View, dr.Length > 0 ? 1 : 0);
    }

    /// <summary>dst += src (same length).</summary>
    protected override void AddInPlace(Buf src, Buf dst)
    {
        Need(dst, src.Length, "AddInPlace", "dst");
        if (src.Length > 0) _addInPlace(checked((int)src.Length), src, dst);
    }

    // ------------------------------------------------------------------ head

    /// <summary>f (N,C) = mean over persons of the mean over L of x (N·M, C, L).</summary>
    protected override void PoolForward(Buf x, Buf f, int n, int m, int c, int l)
    {
        Sizes("PoolForward", n, m, c, l); Need(x, (long)n * m * c * l, "PoolForward", "x"); Need(f, (long)n * c, "PoolForward", "f");
        int outputs = checked(n * c);
        if (outputs > 0) _pool(new KernelConfig((outputs + Head.PoolWarps - 1) / Head.PoolWarps, 32 * Head.PoolWarps), x, f, outputs, m, c, l);
    }

    /// <summary>dx (N·M, C, L) = df / (M·L) (overwritten).</summary>
    protected override void PoolBackward(Buf df, Buf dx, int n, int m, int c, int l)
    {
        Sizes("PoolBackward", n, m, c, l); Need(df, (long)n * c, "PoolBackward", "df"); Need(dx, (long)n * m * c * l, "PoolBackward", "dx");
        _poolBwd(checked(n * m * c * l), df, dx, m, c, l);
    }

    /// <summary>Mean softmax cross-entropy of logits (N,K); writes dLogits; returns the loss (synchronises).</summary>
    protected override double CrossEntropy(Buf logits, ReadOnlySpan<int> labels, Buf dLogits, int n, int k)
    {
        Sizes("CrossEntropy", n, k); Need(logits, (long)n * k, "CrossEntropy", "logits"); Need(dLogits, (long)n * k, "CrossEntropy", "dLogits");
        if (labels.Length < n) throw new ArgumentException($"ST-GCN GPU CrossEntropy: {labels.Length} labels for {n} samples");
        for (int i = 0; i < n; i++)
            if ((uint)labels[i] >= (uint)k) throw new ArgumentOutOfRangeException(nameof(labels), $"label {labels[i]} of sample {i} is outside 0..{k - 1}");
        Grow(ref _labels, n); Grow(ref _loss, n);
        ((ArrayView<int>)_labels.View).SubView(0, n).CopyFromCPU(labels[..n]);
        _ce(n, logits, _labels.View, dLogits, _loss.View, n, k);
        var rows = new float[n];
        _acc.Synchronize();
        ((Buf)_loss.View).SubView(0, n).CopyToCPU(rows);
        double s = 0;
        foreach (var r in rows) s += r;
        return s / n;
    }

    /// <summary>SGD Nesterov step over p, g, buf (same length).</summary>
    protected override void SgdNesterovStep(Buf p, Buf g, Buf buf, double lr, double momentum, double weightDecay)
    {
        Need(g, p.Length, "SgdNesterovStep", "g"); Need(buf, p.Length, "SgdNesterovStep", "buf");
        if (p.Length > 0) _sgd(checked((int)p.Length), p, g, buf, (float)lr, (float)momentum, (float)weightDecay);
    }

    /// <summary>Frees every tensor still allocated and the scratch (after waiting for queued launches).</summary>
    public void Dispose()
    {
        _acc.Synchronize();
        foreach (var b in _owned.Values) b.Dispose();
        _owned.Clear();
        _d0.Dispose(); _d1.Dispose(); _sums.Dispose(); _r0.Dispose(); _r1.Dispose(); _part.Dispose(); _loss.Dispose(); _labels.Dispose(); _dummy.Dispose();
        _packIn.Dispose(); _packW.Dispose(); _adjacency.Dispose();
    }
}
