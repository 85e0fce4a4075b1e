using Tdsm.Tensors;

namespace Tdsm.StGcn;

/// <summary>
/// ST-GCN (spec section 6) over one contiguous parameter buffer, with an explicit backward that
/// replays the saved activations in reverse. Written once over <see cref="IStGcnOps"/> handles, it runs
/// unchanged on the reference, CPU and GPU tiers: parameters, gradients, running statistics, the
/// adjacency, SGD momentum and every activation live where the tier computes, so per step only the
/// input clip and labels go in and the loss comes back. Input x is (N, C, T, V, M); persons become
/// separate samples B = N*M after data_bn; the feature z_x (N, C_last) is the pooled last block
/// averaged over persons; logits (N, NumClass).
/// The host arrays <see cref="Parameters"/>, <see cref="Gradients"/>, <see cref="Buffers"/> are the
/// model's state itself on a host tier (the tier adopts them without copying); on a device they are
/// a copy: <see cref="SyncToHost"/> refreshes them, <see cref="UploadFromHost"/> pushes edits back.
/// The tier owns the memory (a device tier frees it when disposed).
/// </summary>
public sealed class StGcnModel
{
    /// <summary>Architecture.</summary>
    public StGcnConfig Config { get; }

    /// <summary>Names, offsets and shapes of <see cref="Parameters"/>, <see cref="Gradients"/> and <see cref="Buffers"/>.</summary>
    public StGcnLayout Layout { get; }

    /// <summary>All trainable parameters, one allocation (views in <see cref="Layout"/>); on a device tier the host copy.</summary>
    public float[] Parameters { get; }

    /// <summary>Gradients, same layout as <see cref="Parameters"/>; <see cref="Backward"/> accumulates into it (on a device tier: the host copy).</summary>
    public float[] Gradients { get; }

    /// <summary>BatchNorm running statistics (running_mean / running_var views in <see cref="Layout"/>); on a device tier the host copy.</summary>
    public float[] Buffers { get; }

    /// <summary>The partitioned adjacency (K, V, V) as float32 (the registered buffer A).</summary>
    public float[] A { get; }

    /// <summary>The op tier this model runs on.</summary>
    public IStGcnOps Ops { get; }

    /// <summary>The tier name of <see cref="Ops"/>.</summary>
    public string Name => Ops.Name;

    // The state as the tier's handles, and a view per named parameter / gradient / buffer.
    private readonly Tensor _p, _g, _r, _a;
    private readonly Dictionary<string, Tensor> _pv = new(StringComparer.Ordinal), _gv = new(StringComparer.Ordinal), _rv = new(StringComparer.Ordinal);
    private Acts? _acts;
    private float[] _logits = [], _features = [];
    private bool _logitsFresh, _featuresFresh;

    /// <summary>A model with PyTorch's default initialisation (conv weights and biases U(+-1/sqrt(fan_in)),
    /// BN weight 1 bias 0, running mean 0 var 1, edge importance 1), seeded (the same seed gives the same
    /// values on every tier: they are drawn on the host).</summary>
    public StGcnModel(StGcnConfig config, IStGcnOps ops, int seed = 0)
    {
        config.Validate();
        if (config.V != 25) throw new ArgumentException($"ST-GCN config: V = {config.V}, but the only graph built in is the NTU 25-joint graph");
        Config = config; Ops = ops;
        Layout = new StGcnLayout(config);
        Parameters = new float[Layout.ParameterCount];
        Gradients = new float[Layout.ParameterCount];
        Buffers = new float[Layout.BufferCount];
        A = Graph.Ntu().AsFloat32();
        var rng = new Random(seed);
        foreach (var p in Layout.Parameters)
        {
            var s = p.Of(Parameters).AsSpan();
            if (p.Name.StartsWith("edge_importance", StringComparison.Ordinal) || (IsBn(p.Name) && p.Name.EndsWith(".weight", StringComparison.Ordinal))) s.Fill(1f);
            else if (IsBn(p.Name)) s.Clear();
            else
            {
                // Conv weight (Cout, Cin, kh, kw): fan_in = Cin*kh*kw; its bias uses the same fan_in.
                var w = Layout[p.Name.EndsWith(".bias", StringComparison.Ordinal) ? p.Name[..^5] + ".weight" : p.Name];
                int fanIn = w.Length / w.Shape[0];
                double bound = 1.0 / Math.Sqrt(fanIn);
                for (int i = 0; i < s.Length; i++) s[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
            }
        }
        foreach (var bv in Layout.Buffers)
            bv.Of(Buffers).AsSpan().Fill(bv.Name.EndsWith("running_var", StringComparison.Ordinal) ? 1f : 0f);

        _p = ops.Adopt(Parameters); _g = ops.Adopt(Gradients); _r = ops.Adopt(Buffers); _a = ops.Adopt(A);
        foreach (var p in Layout.Parameters) { _pv[p.Name] = ops.View(_p, p.Offset, p.Length); _gv[p.Name] = ops.View(_g, p.Offset, p.Length); }
        foreach (var bv in Layout.Buffers) _rv[bv.Name] = ops.View(_r, bv.Offset, bv.Length);
    }

    private static bool IsBn(string name) => name.StartsWith("data_bn", StringComparison.Ordinal)
        || name.Contains(".tcn.0.", StringComparison.Ordinal) || name.Contains(".tcn.3.", StringComparison.Ordinal) || name.Contains(".res.1.", StringComparison.Ordinal);

    /// <summary>Logits (N, NumClass) of the last <see cref="Forward"/> (downloaded on first access).</summary>
    public ReadOnlySpan<float> Logits
    {
        get
        {
            if (_acts is null) return default;
            if (!_logitsFresh) { Ops.Download(_acts.Logits, _logits); _logitsFresh = true; }
            return _logits;
        }
    }

    /// <summary>Features z_x (N, FeatureDim) of the last <see cref="Forward"/> (downloaded on first access).</summary>
    public ReadOnlySpan<float> Features
    {
        get
        {
            if (_acts is null) return default;
            if (!_featuresFresh) { Ops.Download(_acts.Feat, _features); _featuresFresh = true; }
            return _features;
        }
    }

    private Tensor P(string name) => _pv.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"ST-GCN has no parameter named '{name}'");
    private Tensor G(string name) => _gv.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"ST-GCN has no parameter named '{name}'");
    private Tensor R(string name) => _rv.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"ST-GCN has no buffer named '{name}'");

    // The first len elements of a (scratch) tensor.
    private Tensor S(Tensor t, long len) => len == t.Length ? t : Ops.View(t, 0, checked((int)len));

    // ---------------------------------------------------------------- activations

    private sealed class BlockActs
    {
        public required Tensor Gcn, Agg, Bn1, Relu1, Conv, Bn2, Out, Bn1Mean, Bn1Rstd, Bn2Mean, Bn2Rstd;
        public Tensor? ResConv, ResBn, ResMean, ResRstd;
        public int Tin, Tout;
    }

    private sealed class Acts
    {
        public int N, T, M;
        public required Tensor X, XBn, XBnOut, DataMean, DataRstd, X0, Feat, Logits, DLogits;
        public required BlockActs[] Blocks;
        // Backward scratch, each sized for the largest block.
        public required Tensor S1, S2, S3, S4, S5, DIn, DOut, DFeat;
        // Everything above, to release when the batch shape changes.
        public required List<Tensor> Owned;
    }

    private Acts Ensure(int n, int t, int m)
    {
        if (_acts is { } a && a.N == n && a.T == t && a.M == m) return a;
        if (_acts is not null)
        {
            foreach (var old in _acts.Owned) Ops.Free(old);
            _acts = null;
        }
        var owned = new List<Tensor>();
        Tensor Alloc(long len)
        {
            var x = Ops.Allocate(checked((int)len));
            owned.Add(x);
            return x;
        }
        var cfg = Config;
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
                ResConv = l.HasResidualConv ? Alloc(outer) : null, ResBn = l.HasResidualConv ? Alloc(outer) : null,
                ResMean = l.HasResidualConv ? Alloc(l.Cout) : null, ResRstd = l.HasResidualConv ? Alloc(l.Cout) : null,
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
            Owned = owned,
        };
        _logits = new float[n * cfg.NumClass];
        _features = new float[n * cfg.FeatureDim];
        return _acts;
    }

    // ---------------------------------------------------------------- forward

    /// <summary>
    /// Forward pass on x (N, C, T, V, M). Training mode uses batch statistics and updates the running
    /// stats; eval mode uses the running stats. With <paramref name="labels"/> (N, class ids 0..NumClass-1)
    /// returns the mean cross-entropy (and prepares <see cref="Backward"/>), else NaN.
    /// </summary>
    public double Forward(ReadOnlySpan<float> x, ReadOnlySpan<int> labels, int n, int t, int m, bool training)
    {
        var cfg = Config;
        int c = cfg.InChannels, v = cfg.V, b = n * m;
        if (n < 1 || t < 1 || m < 1) throw new ArgumentException($"ST-GCN forward: bad sizes N={n} T={t} M={m}");
        long xs = (long)n * c * t * v * m;
        if (x.Length != xs) throw new ArgumentException($"ST-GCN forward: x holds {x.Length} values, expected N*C*T*V*M = {n}*{c}*{t}*{v}*{m} = {xs}");
        if (!labels.IsEmpty && labels.Length != n) throw new ArgumentException($"ST-GCN forward: {labels.Length} labels for {n} samples");
        var a = Ensure(n, t, m);
        var ops = Ops;
        _logitsFresh = _featuresFresh = false;
        ops.Upload(x, a.X);

        // data_bn over (B, V*C, T), then (B, C, T, V)
        ops.InputToBnLayout(a.X, a.XBn, n, c, t, v, m);
        Bn(training, a.XBn, "data_bn", a.XBnOut, a.DataMean, a.DataRstd, b, v * c, t);
        ops.BnToBlockLayout(a.XBnOut, a.X0, b, c, t, v);

        Tensor input = a.X0;
        for (int i = 0; i < cfg.Layers.Count; i++)
        {
            var l = cfg.Layers[i];
            var ba = a.Blocks[i];
            string p = $"blocks.{i}.";
            int tin = ba.Tin, tout = ba.Tout;
            // gcn: 1x1 conv to K*cout channels (B,K,Cout,T,V), then aggregate over the partitioned graph
            ops.Conv1x1Forward(input, P(p + "gcn.weight"), P(p + "gcn.bias"), ba.Gcn, b, l.Cin, StGcnConfig.K * l.Cout, tin, v, 1);
            ops.GraphAggregateForward(ba.Gcn, _a, P($"edge_importance.{i}"), ba.Agg, b, StGcnConfig.K, l.Cout, tin, v);
            // tcn: BN, ReLU, conv kt x 1 (stride), BN
            Bn(training, ba.Agg, p + "tcn.0", ba.Bn1, ba.Bn1Mean, ba.Bn1Rstd, b, l.Cout, tin * v);
            ops.ReluForward(ba.Bn1, ba.Relu1);
            ops.TemporalConvForward(ba.Relu1, P(p + "tcn.2.weight"), P(p + "tcn.2.bias"), ba.Conv, b, l.Cout, l.Cout, tin, v, cfg.Kt, l.Stride);
            Bn(training, ba.Conv, p + "tcn.3", ba.Bn2, ba.Bn2Mean, ba.Bn2Rstd, b, l.Cout, tout * v);
            // residual join: none / identity / conv1x1(stride) + BN, then ReLU
            Tensor? res = null;
            if (l.HasResidualConv)
            {
                ops.Conv1x1Forward(input, P(p + "res.0.weight"), P(p + "res.0.bias"), ba.ResConv!, b, l.Cin, l.Cout, tin, v, l.Stride);
                Bn(training, ba.ResConv!, p + "res.1", ba.ResBn!, ba.ResMean!, ba.ResRstd!, b, l.Cout, tout * v);
                res = ba.ResBn;
            }
            else if (l.Residual) res = input;
            ops.ResidualReluForward(ba.Bn2, res, ba.Out);
            input = ba.Out;
        }

        // head: pool over (T, V) and persons, classifier fcn as a 1x1 conv on (N, C, 1, 1)
        var last = a.Blocks[^1];
        ops.PoolForward(last.Out, a.Feat, n, m, cfg.FeatureDim, last.Tout * v);
        ops.Conv1x1Forward(a.Feat, P("fcn.weight"), P("fcn.bias"), a.Logits, n, cfg.FeatureDim, cfg.NumClass, 1, 1, 1);
        if (labels.IsEmpty) return double.NaN;
        return ops.CrossEntropy(a.Logits, labels, a.DLogits, n, cfg.NumClass);
    }

    // BatchNorm of x (B,C,L) with the parameters and running statistics called `name`.
    private void Bn(bool training, Tensor x, string name, Tensor y, Tensor mean, Tensor rstd, int b, int c, int l)
    {
        if (training)
            Ops.BatchNormTrainForward(x, P(name + ".weight"), P(name + ".bias"), y, mean, rstd, R(name + ".running_mean"), R(name + ".running_var"),
                b, c, l, Config.BnEps, Config.BnMomentum);
        else
            Ops.BatchNormEvalForward(x, P(name + ".weight"), P(name + ".bias"), y, R(name + ".running_mean"), R(name + ".running_var"), b, c, l, Config.BnEps);
    }

    // ---------------------------------------------------------------- backward

    /// <summary>Backward of the last training-mode <see cref="Forward"/> with labels: accumulates d loss / d parameters
    /// into the gradients (zero them first with <see cref="ZeroGradients"/>).</summary>
    public void Backward()
    {
        var a = _acts ?? throw new InvalidOperationException("Backward called before Forward");
        var cfg = Config;
        var ops = Ops;
        int n = a.N, m = a.M, b = n * m, v = cfg.V, c = cfg.InChannels, t = a.T;

        // head
        ops.Conv1x1Backward(a.DLogits, a.Feat, P("fcn.weight"), a.DFeat, G("fcn.weight"), G("fcn.bias"), n, cfg.FeatureDim, cfg.NumClass, 1, 1, 1);
        var last = a.Blocks[^1];
        long lastSize = (long)b * cfg.FeatureDim * last.Tout * v;
        ops.PoolBackward(a.DFeat, S(a.DOut, lastSize), n, m, cfg.FeatureDim, last.Tout * v);

        Tensor dOut = a.DOut, dIn = a.DIn;
        for (int i = cfg.Layers.Count - 1; i >= 0; i--)
        {
            var l = cfg.Layers[i];
            var ba = a.Blocks[i];
            string p = $"blocks.{i}.";
            int tin = ba.Tin, tout = ba.Tout;
            long outSize = (long)b * l.Cout * tout * v, innerSize = (long)b * l.Cout * tin * v, inSize = (long)b * l.Cin * tin * v;
            Tensor input = i == 0 ? a.X0 : a.Blocks[i - 1].Out;

            // residual join: S1 = d(tcn BN2 out), S2 = d(residual branch)
            ops.ResidualReluBackward(S(dOut, outSize), ba.Out, S(a.S1, outSize), l.Residual ? S(a.S2, outSize) : null);
            // tcn backward: BN2 -> conv -> ReLU -> BN1
            ops.BatchNormBackward(S(a.S1, outSize), ba.Conv, P(p + "tcn.3.weight"), ba.Bn2Mean, ba.Bn2Rstd, S(a.S3, outSize),
                G(p + "tcn.3.weight"), G(p + "tcn.3.bias"), b, l.Cout, tout * v);
            ops.TemporalConvBackward(S(a.S3, outSize), ba.Relu1, P(p + "tcn.2.weight"), S(a.S4, innerSize), G(p + "tcn.2.weight"), G(p + "tcn.2.bias"),
                b, l.Cout, l.Cout, tin, v, cfg.Kt, l.Stride);
            ops.ReluBackward(S(a.S4, innerSize), ba.Relu1, S(a.S3, innerSize));
            ops.BatchNormBackward(S(a.S3, innerSize), ba.Agg, P(p + "tcn.0.weight"), ba.Bn1Mean, ba.Bn1Rstd, S(a.S4, innerSize),
                G(p + "tcn.0.weight"), G(p + "tcn.0.bias"), b, l.Cout, tin * v);
            // gcn backward: aggregation (edge importance grad) -> 1x1 conv (input grad into dIn)
            ops.GraphAggregateBackward(S(a.S4, innerSize), ba.Gcn, _a, P($"edge_importance.{i}"), S(a.S5, StGcnConfig.K * innerSize),
                G($"edge_importance.{i}"), b, StGcnConfig.K, l.Cout, tin, v);
            ops.Conv1x1Backward(S(a.S5, StGcnConfig.K * innerSize), input, P(p + "gcn.weight"), S(dIn, inSize),
                G(p + "gcn.weight"), G(p + "gcn.bias"), b, l.Cin, StGcnConfig.K * l.Cout, tin, v, 1);
            // residual branch gradient joins dIn
            if (l.HasResidualConv)
            {
                ops.BatchNormBackward(S(a.S2, outSize), ba.ResConv!, P(p + "res.1.weight"), ba.ResMean!, ba.ResRstd!, S(a.S1, outSize),
                    G(p + "res.1.weight"), G(p + "res.1.bias"), b, l.Cout, tout * v);
                ops.Conv1x1Backward(S(a.S1, outSize), input, P(p + "res.0.weight"), S(a.S3, inSize),
                    G(p + "res.0.weight"), G(p + "res.0.bias"), b, l.Cin, l.Cout, tin, v, l.Stride);
                ops.AddInPlace(S(a.S3, inSize), S(dIn, inSize));
            }
            else if (l.Residual) ops.AddInPlace(S(a.S2, inSize), S(dIn, inSize));
            (dOut, dIn) = (dIn, dOut);
        }

        // data_bn backward: (B,C,T,V) -> (B,V*C,T) -> BN (the input gradient itself is not needed)
        long xs = (long)b * c * t * v;
        ops.BnToBlockLayoutBackward(S(dOut, xs), S(a.S1, xs), b, c, t, v);
        ops.BatchNormBackward(S(a.S1, xs), a.XBn, P("data_bn.weight"), a.DataMean, a.DataRstd, S(a.S2, xs),
            G("data_bn.weight"), G("data_bn.bias"), b, v * c, t);
    }

    // ---------------------------------------------------------------- optimiser and state

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGradients() => Ops.Zero(_g);

    /// <summary>A fresh SGD-Nesterov optimiser (zero momentum, held by the tier) over the parameters and
    /// gradients; call it with the learning rate for one step.</summary>
    public Action<double> CreateSgd(double momentum, double weightDecay)
    {
        var buf = Ops.Allocate(Layout.ParameterCount);
        return lr => Ops.SgdNesterovStep(_p, _g, buf, lr, momentum, weightDecay);
    }

    /// <summary>Copies the tier's parameters, gradients and running statistics into <see cref="Parameters"/>,
    /// <see cref="Gradients"/> and <see cref="Buffers"/> (on a host tier they are the same memory).</summary>
    public void SyncToHost()
    {
        Ops.Download(_p, Parameters);
        Ops.Download(_g, Gradients);
        Ops.Download(_r, Buffers);
    }

    /// <summary>Copies <see cref="Parameters"/> and <see cref="Buffers"/> into the tier's state (after editing or
    /// loading them on the host; on a host tier they are the same memory).</summary>
    public void UploadFromHost()
    {
        Ops.Upload(Parameters, _p);
        Ops.Upload(Buffers, _r);
    }
}
