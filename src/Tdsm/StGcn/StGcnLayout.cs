namespace Tdsm.StGcn;

/// <summary>One named tensor inside a contiguous buffer: official PyTorch name, offset, shape.</summary>
public sealed record TensorView(string Name, int Offset, int[] Shape)
{
    /// <summary>Number of elements.</summary>
    public int Length => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>This view's slice of <paramref name="buffer"/>.</summary>
    public ArraySegment<float> Of(float[] buffer) => new(buffer, Offset, Length);
}

/// <summary>
/// Where every parameter (and every BatchNorm running statistic) of an ST-GCN lives in its one
/// contiguous buffer, under the official names: <c>data_bn.*</c>, <c>blocks.i.gcn.*</c>,
/// <c>blocks.i.tcn.{0,2,3}.*</c>, <c>blocks.i.res.{0,1}.*</c>, <c>edge_importance.i</c>, <c>fcn.*</c>.
/// Gradients use the parameter layout, so SGD is one loop and a checkpoint one write.
/// </summary>
public sealed class StGcnLayout
{
    private readonly Dictionary<string, TensorView> _byName = new(StringComparer.Ordinal);

    /// <summary>Trainable parameters in order.</summary>
    public IReadOnlyList<TensorView> Parameters { get; }

    /// <summary>BatchNorm running statistics (running_mean, running_var) in order.</summary>
    public IReadOnlyList<TensorView> Buffers { get; }

    /// <summary>Total trainable parameter count (the length of the parameter and gradient buffers).</summary>
    public int ParameterCount { get; }

    /// <summary>Length of the running-statistics buffer.</summary>
    public int BufferCount { get; }

    /// <summary>Builds the layout of <paramref name="cfg"/>.</summary>
    public StGcnLayout(StGcnConfig cfg)
    {
        cfg.Validate();
        var ps = new List<TensorView>();
        var bs = new List<TensorView>();
        int po = 0, bo = 0;
        void P(string name, params int[] shape) { var t = new TensorView(name, po, shape); ps.Add(t); po += t.Length; }
        void Bn(string name, int c)
        {
            P(name + ".weight", c); P(name + ".bias", c);
            var m = new TensorView(name + ".running_mean", bo, [c]); bo += c;
            var v = new TensorView(name + ".running_var", bo, [c]); bo += c;
            bs.Add(m); bs.Add(v);
        }
        Bn("data_bn", cfg.InChannels * cfg.V);
        for (int i = 0; i < cfg.Layers.Count; i++)
        {
            var l = cfg.Layers[i];
            string b = $"blocks.{i}.";
            P(b + "gcn.weight", StGcnConfig.K * l.Cout, l.Cin, 1, 1); P(b + "gcn.bias", StGcnConfig.K * l.Cout);
            Bn(b + "tcn.0", l.Cout);
            P(b + "tcn.2.weight", l.Cout, l.Cout, cfg.Kt, 1); P(b + "tcn.2.bias", l.Cout);
            Bn(b + "tcn.3", l.Cout);
            if (l.HasResidualConv)
            {
                P(b + "res.0.weight", l.Cout, l.Cin, 1, 1); P(b + "res.0.bias", l.Cout);
                Bn(b + "res.1", l.Cout);
            }
        }
        for (int i = 0; i < cfg.Layers.Count; i++) P($"edge_importance.{i}", StGcnConfig.K, cfg.V, cfg.V);
        P("fcn.weight", cfg.NumClass, cfg.FeatureDim, 1, 1); P("fcn.bias", cfg.NumClass);
        Parameters = ps; Buffers = bs; ParameterCount = po; BufferCount = bo;
        foreach (var t in ps.Concat(bs)) _byName.Add(t.Name, t);
    }

    /// <summary>The view called <paramref name="name"/> (parameter or buffer).</summary>
    public TensorView this[string name] => _byName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"ST-GCN has no parameter or buffer named '{name}'");

    /// <summary>True when <paramref name="name"/> is a parameter or buffer of this model.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);
}
