using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

/// <summary>
/// ST-GCN (spec section 6) over one contiguous parameter buffer, with an explicit backward that
/// replays the saved activations in reverse. Ops come from a tier (<see cref="IStGcnOps"/>).
/// Input x is (N, C, T, V, M); persons become separate samples B = N*M after data_bn; the
/// feature z_x (N, C_last) is the pooled last block averaged over persons; logits (N, NumClass).
/// </summary>
public sealed class StGcnModel : IStGcnRunner
{
    /// <summary>Architecture.</summary>
    public StGcnConfig Config { get; }

    /// <summary>Names, offsets and shapes of <see cref="Parameters"/>, <see cref="Gradients"/> and <see cref="Buffers"/>.</summary>
    public StGcnLayout Layout { get; }

    /// <summary>All trainable parameters, one allocation (views in <see cref="Layout"/>).</summary>
    public float[] Parameters { get; }

    /// <summary>Gradients, same layout as <see cref="Parameters"/>; <see cref="Backward"/> accumulates into it.</summary>
    public float[] Gradients { get; }

    /// <summary>BatchNorm running statistics (running_mean / running_var views in <see cref="Layout"/>).</summary>
    public float[] Buffers { get; }

    /// <summary>The partitioned adjacency (K, V, V) as float32 (the registered buffer A).</summary>
    public float[] A { get; }

    /// <summary>The op tier this model runs on; may be swapped between steps.</summary>
    public IStGcnOps Ops { get; set; }

    private Acts? _acts;

    /// <summary>A model with PyTorch's default initialisation (conv weights and biases U(+-1/sqrt(fan_in)),
    /// BN weight 1 bias 0, running mean 0 var 1, edge importance 1), seeded.</summary>
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
    }

    private static bool IsBn(string name) => name.StartsWith("data_bn", StringComparison.Ordinal)
        || name.Contains(".tcn.0.", StringComparison.Ordinal) || name.Contains(".tcn.3.", StringComparison.Ordinal) || name.Contains(".res.1.", StringComparison.Ordinal);

    /// <summary>Logits (N, NumClass) of the last <see cref="Forward"/>.</summary>
    public ReadOnlySpan<float> Logits => _acts is null ? default : _acts.Logits;

    /// <summary>Features z_x (N, FeatureDim) of the last <see cref="Forward"/>.</summary>
    public ReadOnlySpan<float> Features => _acts is null ? default : _acts.Feat;

    private Seg P(string name) => Layout[name].Of(Parameters);
    private Seg G(string name) => Layout[name].Of(Gradients);
    private Seg R(string name) => Layout[name].Of(Buffers);

    // ---------------------------------------------------------------- activations

    private sealed class BlockActs
    {
        public required float[] Gcn, Agg, Bn1, Relu1, Conv, Bn2, Out, Bn1Mean, Bn1Rstd, Bn2Mean, Bn2Rstd;
        public float[]? ResConv, ResBn, ResMean, ResRstd;
        public int Tin, Tout;
    }

    private sealed class Acts
    {
        public int N, T, M;
        public required float[] X, XBn, XBnOut, DataMean, DataRstd, X0, Feat, Logits, DLogits;
        public required BlockActs[] Blocks;
        // Backward scratch, each sized for the largest block.
        public required float[] S1, S2, S3, S4, S5, DIn, DOut, DFeat;
    }

    private Acts Ensure(int n, int t, int m)
    {
        if (_acts is { } a && a.N == n && a.T == t && a.M == m) return a;
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
                Gcn = new float[StGcnConfig.K * inner], Agg = new float[inner], Bn1 = new float[inner], Relu1 = new float[inner],
                Conv = new float[outer], Bn2 = new float[outer], Out = new float[outer],
                Bn1Mean = new float[l.Cout], Bn1Rstd = new float[l.Cout], Bn2Mean = new float[l.Cout], Bn2Rstd = new float[l.Cout],
                ResConv = l.HasResidualConv ? new float[outer] : null, ResBn = l.HasResidualConv ? new float[outer] : null,
                ResMean = l.HasResidualConv ? new float[l.Cout] : null, ResRstd = l.HasResidualConv ? new float[l.Cout] : null,
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
            X = new float[xs], XBn = new float[xs], XBnOut = new float[xs], X0 = new float[xs],
            DataMean = new float[c * v], DataRstd = new float[c * v],
            Feat = new float[n * cfg.FeatureDim], Logits = new float[n * cfg.NumClass], DLogits = new float[n * cfg.NumClass],
            Blocks = blocks,
            S1 = new float[maxAct], S2 = new float[maxAct], S3 = new float[maxAct], S4 = new float[maxAct], S5 = new float[maxGcn],
            DIn = new float[maxAct], DOut = new float[maxAct], DFeat = new float[n * cfg.FeatureDim],
        };
        return _acts;
    }

    private static Seg S(float[] a, long len) => new(a, 0, checked((int)len));

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
        long xs = (long)n * c * t * v * m;
        if (n < 1 || t < 1 || m < 1) throw new ArgumentException($"ST-GCN forward: bad sizes N={n} T={t} M={m}");
        if (x.Length != xs) throw new ArgumentException($"ST-GCN forward: x holds {x.Length} values, expected N*C*T*V*M = {n}*{c}*{t}*{v}*{m} = {xs}");
        if (!labels.IsEmpty && labels.Length != n) throw new ArgumentException($"ST-GCN forward: {labels.Length} labels for {n} samples");
        var a = Ensure(n, t, m);
        var ops = Ops;
        x.CopyTo(a.X);

        // data_bn over (B, V*C, T), then (B, C, T, V)
        ops.InputToBnLayout(a.X, a.XBn, n, c, t, v, m);
        if (training)
            ops.BatchNormTrainForward(a.XBn, P("data_bn.weight"), P("data_bn.bias"), a.XBnOut, a.DataMean, a.DataRstd,
                R("data_bn.running_mean"), R("data_bn.running_var"), b, v * c, t, cfg.BnEps, cfg.BnMomentum);
        else
            ops.BatchNormEvalForward(a.XBn, P("data_bn.weight"), P("data_bn.bias"), a.XBnOut, R("data_bn.running_mean"), R("data_bn.running_var"), b, v * c, t, cfg.BnEps);
        ops.BnToBlockLayout(a.XBnOut, a.X0, b, c, t, v);

        float[] input = a.X0;
        for (int i = 0; i < cfg.Layers.Count; i++)
        {
            var l = cfg.Layers[i];
            var ba = a.Blocks[i];
            string p = $"blocks.{i}.";
            int tin = ba.Tin, tout = ba.Tout;
            long inSize = (long)b * l.Cin * tin * v;
            // gcn: 1x1 conv to K*cout channels (B,K,Cout,T,V), then aggregate over the partitioned graph
            ops.Conv1x1Forward(S(input, inSize), P(p + "gcn.weight"), P(p + "gcn.bias"), ba.Gcn, b, l.Cin, StGcnConfig.K * l.Cout, tin, v, 1);
            ops.GraphAggregateForward(ba.Gcn, A, P($"edge_importance.{i}"), ba.Agg, b, StGcnConfig.K, l.Cout, tin, v);
            // tcn: BN, ReLU, conv kt x 1 (stride), BN
            Bn(ops, training, ba.Agg, p + "tcn.0", ba.Bn1, ba.Bn1Mean, ba.Bn1Rstd, b, l.Cout, tin * v);
            ops.ReluForward(ba.Bn1, ba.Relu1);
            ops.TemporalConvForward(ba.Relu1, P(p + "tcn.2.weight"), P(p + "tcn.2.bias"), ba.Conv, b, l.Cout, l.Cout, tin, v, cfg.Kt, l.Stride);
            Bn(ops, training, ba.Conv, p + "tcn.3", ba.Bn2, ba.Bn2Mean, ba.Bn2Rstd, b, l.Cout, tout * v);
            // residual join: none / identity / conv1x1(stride) + BN, then ReLU
            Seg res = default;
            if (l.HasResidualConv)
            {
                ops.Conv1x1Forward(S(input, inSize), P(p + "res.0.weight"), P(p + "res.0.bias"), ba.ResConv!, b, l.Cin, l.Cout, tin, v, l.Stride);
                Bn(ops, training, ba.ResConv!, p + "res.1", ba.ResBn!, ba.ResMean!, ba.ResRstd!, b, l.Cout, tout * v);
                res = ba.ResBn!;
            }
            else if (l.Residual) res = S(input, inSize);
            ops.ResidualReluForward(ba.Bn2, res.Array is null ? Seg.Empty : res, ba.Out);
            input = ba.Out;
        }

        // head: pool over (T, V) and persons, classifier fcn as a 1x1 conv on (N, C, 1, 1)
        var last = a.Blocks[^1];
        ops.PoolForward(last.Out, a.Feat, n, m, cfg.FeatureDim, last.Tout * v);
        ops.Conv1x1Forward(a.Feat, P("fcn.weight"), P("fcn.bias"), a.Logits, n, cfg.FeatureDim, cfg.NumClass, 1, 1, 1);
        if (labels.IsEmpty) return double.NaN;
        return ops.CrossEntropy(a.Logits, labels, a.DLogits, n, cfg.NumClass);
    }

    private void Bn(IStGcnOps ops, bool training, float[] x, string name, float[] y, float[] mean, float[] rstd, int b, int c, int l)
    {
        if (training)
            ops.BatchNormTrainForward(x, P(name + ".weight"), P(name + ".bias"), y, mean, rstd, R(name + ".running_mean"), R(name + ".running_var"),
                b, c, l, Config.BnEps, Config.BnMomentum);
        else
            ops.BatchNormEvalForward(x, P(name + ".weight"), P(name + ".bias"), y, R(name + ".running_mean"), R(name + ".running_var"), b, c, l, Config.BnEps);
    }

    // ---------------------------------------------------------------- backward

    /// <summary>Backward of the last training-mode <see cref="Forward"/> with labels: accumulates d loss / d parameters
    /// into <see cref="Gradients"/> (zero them first with <see cref="ZeroGradients"/>).</summary>
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

        float[] dOut = a.DOut, dIn = a.DIn;
        for (int i = cfg.Layers.Count - 1; i >= 0; i--)
        {
            var l = cfg.Layers[i];
            var ba = a.Blocks[i];
            string p = $"blocks.{i}.";
            int tin = ba.Tin, tout = ba.Tout;
            long outSize = (long)b * l.Cout * tout * v, innerSize = (long)b * l.Cout * tin * v, inSize = (long)b * l.Cin * tin * v;
            float[] input = i == 0 ? a.X0 : a.Blocks[i - 1].Out;

            // residual join: S1 = d(tcn BN2 out), S2 = d(residual branch)
            ops.ResidualReluBackward(S(dOut, outSize), ba.Out, S(a.S1, outSize), l.Residual ? S(a.S2, outSize) : Seg.Empty);
            // tcn backward: BN2 -> conv -> ReLU -> BN1
            ops.BatchNormBackward(S(a.S1, outSize), ba.Conv, P(p + "tcn.3.weight"), ba.Bn2Mean, ba.Bn2Rstd, S(a.S3, outSize),
                G(p + "tcn.3.weight"), G(p + "tcn.3.bias"), b, l.Cout, tout * v);
            ops.TemporalConvBackward(S(a.S3, outSize), ba.Relu1, P(p + "tcn.2.weight"), S(a.S4, innerSize), G(p + "tcn.2.weight"), G(p + "tcn.2.bias"),
                b, l.Cout, l.Cout, tin, v, cfg.Kt, l.Stride);
            ops.ReluBackward(S(a.S4, innerSize), ba.Relu1, S(a.S3, innerSize));
            ops.BatchNormBackward(S(a.S3, innerSize), ba.Agg, P(p + "tcn.0.weight"), ba.Bn1Mean, ba.Bn1Rstd, S(a.S4, innerSize),
                G(p + "tcn.0.weight"), G(p + "tcn.0.bias"), b, l.Cout, tin * v);
            // gcn backward: aggregation (edge importance grad) -> 1x1 conv (input grad into dIn)
            ops.GraphAggregateBackward(S(a.S4, innerSize), ba.Gcn, A, P($"edge_importance.{i}"), S(a.S5, StGcnConfig.K * innerSize),
                G($"edge_importance.{i}"), b, StGcnConfig.K, l.Cout, tin, v);
            ops.Conv1x1Backward(S(a.S5, StGcnConfig.K * innerSize), S(input, inSize), P(p + "gcn.weight"), S(dIn, inSize),
                G(p + "gcn.weight"), G(p + "gcn.bias"), b, l.Cin, StGcnConfig.K * l.Cout, tin, v, 1);
            // residual branch gradient joins dIn
            if (l.HasResidualConv)
            {
                ops.BatchNormBackward(S(a.S2, outSize), ba.ResConv!, P(p + "res.1.weight"), ba.ResMean!, ba.ResRstd!, S(a.S1, outSize),
                    G(p + "res.1.weight"), G(p + "res.1.bias"), b, l.Cout, tout * v);
                ops.Conv1x1Backward(S(a.S1, outSize), S(input, inSize), P(p + "res.0.weight"), S(a.S3, inSize),
                    G(p + "res.0.weight"), G(p + "res.0.bias"), b, l.Cin, l.Cout, tin, v, l.Stride);
                Add(a.S3, dIn, inSize);
            }
            else if (l.Residual) Add(a.S2, dIn, inSize);
            (dOut, dIn) = (dIn, dOut);
        }

        // data_bn backward: (B,C,T,V) -> (B,V*C,T) -> BN (the input gradient itself is not needed)
        long xs = (long)b * c * t * v;
        ops.BnToBlockLayoutBackward(S(dOut, xs), S(a.S1, xs), b, c, t, v);
        ops.BatchNormBackward(S(a.S1, xs), a.XBn, P("data_bn.weight"), a.DataMean, a.DataRstd, S(a.S2, xs),
            G("data_bn.weight"), G("data_bn.bias"), b, v * c, t);
    }

    private static void Add(float[] src, float[] dst, long len)
    {
        var s = src.AsSpan(0, checked((int)len));
        var d = dst.AsSpan(0, checked((int)len));
        Tdsm.Cpu.Gemm.Axpy(1f, s, d);
    }

    /// <summary>Sets every gradient to zero.</summary>
    public void ZeroGradients() => Array.Clear(Gradients);

    /// <summary>The tier name of <see cref="Ops"/>.</summary>
    public string Name => Ops.Name;

    /// <summary>This model (it runs on the host).</summary>
    StGcnModel IStGcnRunner.Model => this;

    /// <summary>A host <see cref="SgdNesterov"/> over <see cref="Parameters"/> and <see cref="Gradients"/>.</summary>
    public Action<double> CreateSgd(double momentum, double weightDecay)
    {
        var sgd = new SgdNesterov(Parameters.Length, momentum, weightDecay);
        return lr => sgd.Step(Parameters, Gradients, lr);
    }

    /// <summary>Nothing to do: the state is already on the host.</summary>
    public void SyncToHost() { }
}
