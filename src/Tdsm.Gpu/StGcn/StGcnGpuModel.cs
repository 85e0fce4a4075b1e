using ILGPU;
using ILGPU.Runtime;
using Tdsm.StGcn;
using Buf = ILGPU.ArrayView<float>;

namespace Tdsm.Gpu.StGcn;

/// <summary>
/// A device-resident ST-GCN: the host <see cref="StGcnModel"/>'s parameters, gradients, running
/// statistics, adjacency, optimiser state and every activation live on the device, and the forward
/// and backward are the host model's op sequence (same order, same saved activations) on
/// <see cref="StGcnGpuOps"/>. Per step only the input clip and labels go up and the loss comes
/// back; <see cref="Logits"/>/<see cref="Features"/> download on demand and <see cref="SyncToHost"/>
/// copies the state into <see cref="Model"/> (for checkpoints and parity).
/// </summary>
public sealed class StGcnGpuModel : IStGcnRunner, IDisposable
{
    private readonly StGcnGpuOps _ops;
    private readonly Accelerator _acc;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _p, _g, _r, _a;
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _actBuffers = [];
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _sgdBuffers = [];
    private Acts? _acts;
    private float[] _logits = [], _features = [];
    private bool _logitsFresh, _featuresFresh;

    /// <summary>The host copy (config, layout; the state after <see cref="SyncToHost"/>).</summary>
    public StGcnModel Model { get; }

    /// <summary>"gpu" on CUDA, "gpu-sim" on the simulator.</summary>
    public string Name => _ops.Name;

    /// <summary>Copies <paramref name="host"/>'s parameters, gradients, running statistics and adjacency to <paramref name="device"/>.</summary>
    public StGcnGpuModel(StGcnModel host, GpuDevice device)
    {
        Model = host;
        _acc = device.Accelerator;
        _ops = new StGcnGpuOps(device);
        _p = _acc.Allocate1D(host.Parameters);
        _g = _acc.Allocate1D(host.Gradients);
        _r = _acc.Allocate1D(host.Buffers);
        _a = _acc.Allocate1D(host.A);
    }

    /// <summary>Re-uploads the host model's parameters and running statistics (after editing them on the host).</summary>
    public void UploadFromHost()
    {
        _acc.Synchronize();
        _p.View.CopyFromCPU(Model.Parameters);
        _r.View.CopyFromCPU(Model.Buffers);
    }

    /// <inheritdoc/>
    public void SyncToHost()
    {
        _acc.Synchronize();
        _p.View.CopyToCPU(Model.Parameters);
        _g.View.CopyToCPU(Model.Gradients);
        _r.View.CopyToCPU(Model.Buffers);
    }

    private Buf P(string name) => View(_p, Model.Layout[name]);
    private Buf G(string name) => View(_g, Model.Layout[name]);
    private Buf R(string name) => View(_r, Model.Layout[name]);
    private static Buf View(MemoryBuffer1D<float, Stride1D.Dense> b, TensorView v) => ((Buf)b.View).SubView(v.Offset, v.Length);
    private static Buf S(Buf b, long len) => b.SubView(0, len);

    // ---------------------------------------------------------------- activations (as StGcnModel)

    private sealed class BlockActs
    {
        public required Buf Gcn, Agg, Bn1, Relu1, Conv, Bn2, Out, Bn1Mean, Bn1Rstd, Bn2Mean, Bn2Rstd;
        public Buf ResConv, ResBn, ResMean, ResRstd;
        public int Tin, Tout;
    }

    private sealed class Acts
    {
        public int N, T, M;
        public required Buf X, XBn, XBnOut, DataMean, DataRstd, X0, Feat, Logits, DLogits;
        public required BlockActs[] Blocks;
        public required Buf S1, S2, S3, S4, S5, DIn, DOut, DFeat;
    }

    private Buf Alloc(long n)
    {
        var b = _acc.Allocate1D<float>(Math.Max(1, n));
        _actBuffers.Add(b);
        return ((Buf)b.View).SubView(0, n);
    }

    private Acts Ensure(int n, int t, int m)
    {
        if (_acts is { } a && a.N == n && a.T == t && a.M == m) return a;
        _acc.Synchronize();
        foreach (var old in _actBuffers) old.Dispose();
        _actBuffers.Clear();
        var cfg = Model.Config;
        int b = n * m, v = cfg.V, c = cfg.InChannels;
        var blocks = new BlockActs[cfg.Layers.Count];
        int tin = t;
        long maxAct = (long)b * c * t * v, maxGcn = 0;
        for (int i = 0; i < blocks.Length; i++)
        {
            var l = cfg.Layers[i];
            int tout = cfg.TemporalOut(tin, l.Stride);
            long inner = (long)b * l.Cout * tin * v, outer = (long)b * l.Cout * tout * v;
            blocks[i] = new BlockActs
            {
                Gcn = Alloc(StGcnConfig.K * inner), Agg = Alloc(inner), Bn1 = Alloc(inner), Relu1 = Alloc(inner),
                Conv = Alloc(outer), Bn2 = Alloc(outer), Out = Alloc(outer),
                Bn1Mean = Alloc(l.Cout), Bn1Rstd = Alloc(l.Cout), Bn2Mean = Alloc(l.Cout), Bn2Rstd = Alloc(l.Cout),
                ResConv = l.HasResidualConv ? Alloc(outer) : default, ResBn = l.HasResidualConv ? Alloc(outer) : default,
                ResMean = l.HasResidualConv ? Alloc(l.Cout) : default, ResRstd = l.HasResidualConv ? Alloc(l.Cout) : default,
                Tin = tin, Tout = tout,
            };
            maxAct = Math.Max(maxAct, Math.Max(inner, (long)b * l.Cin * tin * v));
            maxGcn = Math.Max(maxGcn, StGcnConfig.K * inner);
            tin = tout;
        }
        long xs = (long)b * c * t * v;
        _acts = new Acts
        {
            N = n, T = t, M = m,
            X = Alloc(xs), XBn = Alloc(xs), XBnOut = Alloc(xs), X0 = Alloc(xs),
            DataMean = Alloc(c * v), DataRstd = Alloc(c * v),
            Feat = Alloc(n * cfg.FeatureDim), Logits = Alloc(n * cfg.NumClass), DLogits = Alloc(n * cfg.NumClass),
            Blocks = blocks,
            S1 = Alloc(maxAct), S2 = Alloc(maxAct), S3 = Alloc(maxAct), S4 = Alloc(maxAct), S5 = Alloc(maxGcn),
            DIn = Alloc(maxAct), DOut = Alloc(maxAct), DFeat = Alloc(n * cfg.FeatureDim),
        };
        _logits = new float[n * cfg.NumClass];
        _features = new float[n * cfg.FeatureDim];
        return _acts;
    }

    /// <summary>Logits (N, NumClass) of the last forward (downloaded on first access).</summary>
    public ReadOnlySpan<float> Logits
    {
        get
        {
            if (_acts is null) return default;
            if (!_logitsFresh) { _acc.Synchronize(); _acts.Logits.CopyToCPU(_logits); _logitsFresh = true; }
            return _logits;
        }
    }

    /// <summary>Features z_x (N, FeatureDim) of the last forward (downloaded on first access).</summary>
    public ReadOnlySpan<float> Features
    {
        get
        {
            if (_acts is null) return default;
            if (!_featuresFresh) { _acc.Synchronize(); _acts.Feat.CopyToCPU(_features); _featuresFresh = true; }
            return _features;
        }
    }

    // ---------------------------------------------------------------- forward

    /// <inheritdoc/>
    public double Forward(ReadOnlySpan<float> x, ReadOnlySpan<int> labels, int n, int t, int m, bool training)
    {
        var cfg = Model.Config;
        int c = cfg.InChannels, v = cfg.V, b = n * m;
        if (n < 1 || t < 1 || m < 1) throw new ArgumentException($"ST-GCN forward: bad sizes N={n} T={t} M={m}");
        long xs = (long)n * c * t * v * m;
        if (x.Length != xs) throw new ArgumentException($"ST-GCN forward: x holds {x.Length} values, expected N*C*T*V*M = {n}*{c}*{t}*{v}*{m} = {xs}");
        if (!labels.IsEmpty && labels.Length != n) throw new ArgumentException($"ST-GCN forward: {labels.Length} labels for {n} samples");
        var a = Ensure(n, t, m);
        var ops = _ops;
        _logitsFresh = _featuresFresh = false;
        a.X.CopyFromCPU(x);

        ops.InputToBnLayout(a.X, a.XBn, n, c, t, v, m);
        if (training)
            ops.BatchNormTrainForward(a.XBn, P("data_bn.weight"), P("data_bn.bias"), a.XBnOut, a.DataMean, a.DataRstd,
                R("data_bn.running_mean"), R("data_bn.running_var"), b, v * c, t, cfg.BnEps, cfg.BnMomentum);
        else
            ops.BatchNormEvalForward(a.XBn, P("data_bn.weight"), P("data_bn.bias"), a.XBnOut, R("data_bn.running_mean"), R("data_bn.running_var"), b, v * c, t, cfg.BnEps);
        ops.BnToBlockLayout(a.XBnOut, a.X0, b, c, t, v);

        Buf input = a.X0;
        for (int i = 0; i < cfg.Layers.Count; i++)
        {
            var l = cfg.Layers[i];
            var ba = a.Blocks[i];
            string p = $"blocks.{i}.";
            int tin = ba.Tin, tout = ba.Tout;
            long inSize = (long)b * l.Cin * tin * v;
            ops.Conv1x1Forward(S(input, inSize), P(p + "gcn.weight"), P(p + "gcn.bias"), ba.Gcn, b, l.Cin, StGcnConfig.K * l.Cout, tin, v, 1);
            ops.GraphAggregateForward(ba.Gcn, _a.View, P($"edge_importance.{i}"), ba.Agg, b, StGcnConfig.K, l.Cout, tin, v);
            Bn(training, ba.Agg, p + "tcn.0", ba.Bn1, ba.Bn1Mean, ba.Bn1Rstd, b, l.Cout, tin * v);
            ops.ReluForward(ba.Bn1, ba.Relu1);
            ops.TemporalConvForward(ba.Relu1, P(p + "tcn.2.weight"), P(p + "tcn.2.bias"), ba.Conv, b, l.Cout, l.Cout, tin, v, cfg.Kt, l.Stride);
            Bn(training, ba.Conv, p + "tcn.3", ba.Bn2, ba.Bn2Mean, ba.Bn2Rstd, b, l.Cout, tout * v);
            Buf res = default;
            if (l.HasResidualConv)
            {
                ops.Conv1x1Forward(S(input, inSize), P(p + "res.0.weight"), P(p + "res.0.bias"), ba.ResConv, b, l.Cin, l.Cout, tin, v, l.Stride);
                Bn(training, ba.ResConv, p + "res.1", ba.ResBn, ba.ResMean, ba.ResRstd, b, l.Cout, tout * v);
                res = ba.ResBn;
            }
            else if (l.Residual) res = S(input, inSize);
            ops.ResidualReluForward(ba.Bn2, res, ba.Out);
            input = ba.Out;
        }

        var last = a.Blocks[^1];
        ops.PoolForward(last.Out, a.Feat, n, m, cfg.FeatureDim, last.Tout * v);
        ops.Conv1x1Forward(a.Feat, P("fcn.weight"), P("fcn.bias"), a.Logits, n, cfg.FeatureDim, cfg.NumClass, 1, 1, 1);
        if (labels.IsEmpty) return double.NaN;
        return ops.CrossEntropy(a.Logits, labels, a.DLogits, n, cfg.NumClass);
    }

    private void Bn(bool training, Buf x, string name, Buf y, Buf mean, Buf rstd, int b, int c, int l)
    {
        var cfg = Model.Config;
        if (training)
            _ops.BatchNormTrainForward(x, P(name + ".weight"), P(name + ".bias"), y, mean, rstd, R(name + ".running_mean"), R(name + ".running_var"),
                b, c, l, cfg.BnEps, cfg.BnMomentum);
        else
            _ops.BatchNormEvalForward(x, P(name + ".weight"), P(name + ".bias"), y, R(name + ".running_mean"), R(name + ".running_var"), b, c, l, cfg.BnEps);
    }

    // ---------------------------------------------------------------- backward

    /// <inheritdoc/>
    public void Backward()
    {
        var a = _acts ?? throw new InvalidOperationException("Backward called before Forward");
        var cfg = Model.Config;
        var ops = _ops;
        int n = a.N, m = a.M, b = n * m, v = cfg.V, c = cfg.InChannels, t = a.T;

        ops.Conv1x1Backward(a.DLogits, a.Feat, P("fcn.weight"), a.DFeat, G("fcn.weight"), G("fcn.bias"), n, cfg.FeatureDim, cfg.NumClass, 1, 1, 1);
        var last = a.Blocks[^1];
        long lastSize = (long)b * cfg.FeatureDim * last.Tout * v;
        ops.PoolBackward(a.DFeat, S(a.DOut, lastSize), n, m, cfg.FeatureDim, last.Tout * v);

        Buf dOut = a.DOut, dIn = a.DIn;
        for (int i = cfg.Layers.Count - 1; i >= 0; i--)
        {
            var l = cfg.Layers[i];
            var ba = a.Blocks[i];
            string p = $"blocks.{i}.";
            int tin = ba.Tin, tout = ba.Tout;
            long outSize = (long)b * l.Cout * tout * v, innerSize = (long)b * l.Cout * tin * v, inSize = (long)b * l.Cin * tin * v;
            Buf input = i == 0 ? a.X0 : a.Blocks[i - 1].Out;

            ops.ResidualReluBackward(S(dOut, outSize), ba.Out, S(a.S1, outSize), l.Residual ? S(a.S2, outSize) : default);
            ops.BatchNormBackward(S(a.S1, outSize), ba.Conv, P(p + "tcn.3.weight"), ba.Bn2Mean, ba.Bn2Rstd, S(a.S3, outSize),
                G(p + "tcn.3.weight"), G(p + "tcn.3.bias"), b, l.Cout, tout * v);
            ops.TemporalConvBackward(S(a.S3, outSize), ba.Relu1, P(p + "tcn.2.weight"), S(a.S4, innerSize), G(p + "tcn.2.weight"), G(p + "tcn.2.bias"),
                b, l.Cout, l.Cout, tin, v, cfg.Kt, l.Stride);
            ops.ReluBackward(S(a.S4, innerSize), ba.Relu1, S(a.S3, innerSize));
            ops.BatchNormBackward(S(a.S3, innerSize), ba.Agg, P(p + "tcn.0.weight"), ba.Bn1Mean, ba.Bn1Rstd, S(a.S4, innerSize),
                G(p + "tcn.0.weight"), G(p + "tcn.0.bias"), b, l.Cout, tin * v);
            ops.GraphAggregateBackward(S(a.S4, innerSize), ba.Gcn, _a.View, P($"edge_importance.{i}"), S(a.S5, StGcnConfig.K * innerSize),
                G($"edge_importance.{i}"), b, StGcnConfig.K, l.Cout, tin, v);
            ops.Conv1x1Backward(S(a.S5, StGcnConfig.K * innerSize), S(input, inSize), P(p + "gcn.weight"), S(dIn, inSize),
                G(p + "gcn.weight"), G(p + "gcn.bias"), b, l.Cin, StGcnConfig.K * l.Cout, tin, v, 1);
            if (l.HasResidualConv)
            {
                ops.BatchNormBackward(S(a.S2, outSize), ba.ResConv, P(p + "res.1.weight"), ba.ResMean, ba.ResRstd, S(a.S1, outSize),
                    G(p + "res.1.weight"), G(p + "res.1.bias"), b, l.Cout, tout * v);
                ops.Conv1x1Backward(S(a.S1, outSize), S(input, inSize), P(p + "res.0.weight"), S(a.S3, inSize),
                    G(p + "res.0.weight"), G(p + "res.0.bias"), b, l.Cin, l.Cout, tin, v, l.Stride);
                ops.AddInPlace(S(a.S3, inSize), S(dIn, inSize));
            }
            else if (l.Residual) ops.AddInPlace(S(a.S2, inSize), S(dIn, inSize));
            (dOut, dIn) = (dIn, dOut);
        }

        long xs = (long)b * c * t * v;
        ops.BnToBlockLayoutBackward(S(dOut, xs), S(a.S1, xs), b, c, t, v);
        ops.BatchNormBackward(S(a.S1, xs), a.XBn, P("data_bn.weight"), a.DataMean, a.DataRstd, S(a.S2, xs),
            G("data_bn.weight"), G("data_bn.bias"), b, v * c, t);
    }

    /// <inheritdoc/>
    public void ZeroGradients() => _g.MemSetToZero();

    /// <summary>SGD Nesterov on the device over all parameters; the momentum buffer lives on the device.</summary>
    public Action<double> CreateSgd(double momentum, double weightDecay)
    {
        var buf = _acc.Allocate1D<float>(_p.Length);
        buf.MemSetToZero();
        _sgdBuffers.Add(buf);
        return lr => _ops.SgdNesterovStep(_p.View, _g.View, buf.View, lr, momentum, weightDecay);
    }

    /// <summary>Frees every device buffer (after queued launches finish).</summary>
    public void Dispose()
    {
        _acc.Synchronize();
        foreach (var b in _actBuffers) b.Dispose();
        foreach (var b in _sgdBuffers) b.Dispose();
        _actBuffers.Clear(); _sgdBuffers.Clear();
        _p.Dispose(); _g.Dispose(); _r.Dispose(); _a.Dispose();
        _ops.Dispose();
    }
}
