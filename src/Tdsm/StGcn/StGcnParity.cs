using System.Globalization;
using Tdsm.Formats;
using Tdsm.Parity;

namespace Tdsm.StGcn;

/// <summary>One compared tensor: relative error ||a-b||/||b|| against its tolerance. <paramref name="Note"/> is set when
/// the denominator was floored (a reference that is an exact zero up to float64 round-off).</summary>
public sealed record ParityRow(string Name, double RelError, double Tolerance, string Note = "")
{
    /// <summary>True when the error is within tolerance (NaN fails).</summary>
    public bool Pass => RelError <= Tolerance;
}

/// <summary>Result of <see cref="StGcnParity.RunTensors(SafeTensorsFile, string)"/>: one row per compared tensor.</summary>
public sealed record StGcnParityReport(string Fixture, string Backend, StGcnConfig Config, IReadOnlyList<ParityRow> Rows)
{
    /// <summary>True when every row passes.</summary>
    public bool Pass => Rows.All(r => r.Pass);

    /// <summary>Prints a table and a verdict line.</summary>
    public void Write(TextWriter w)
    {
        w.WriteLine($"stgcn parity: {Path.GetFileName(Fixture)} on '{Backend}' ({Config.Layers.Count} blocks, feature {Config.FeatureDim}, {Config.NumClass} classes)");
        foreach (var r in Rows)
            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {(r.Pass ? "ok  " : "FAIL")} {r.Name,-42} rel {r.RelError:E2}  tol {r.Tolerance:E0}{(r.Note.Length > 0 ? "  (" + r.Note + ")" : "")}"));
        int bad = Rows.Count(r => !r.Pass);
        w.WriteLine(bad == 0 ? $"stgcn parity: PASS ({Rows.Count} tensors)" : $"stgcn parity: FAIL ({bad} of {Rows.Count} tensors out of tolerance)");
    }
}

/// <summary>
/// Whole-model check against stgcn_small.safetensors (or any file of that layout): loads the
/// config (layer list, sizes) from metadata, the weights and running stats from param.*, runs the
/// training-mode forward + backward on in.x / in.y and the eval-mode forward, and compares
/// out.logits, out.features, out.loss, every grad.*, after.running.*, out.eval_logits, out.eval_features.
/// Tolerances: forward (and running stats) 1e-5, gradients 1e-4, graph.A 1e-6.
/// The gradient of a conv bias that feeds a training-mode BatchNorm (tcn.2.bias, res.0.bias) is
/// exactly zero; the fixture holds float64 round-off (~1e-17), so for any gradient tensor whose
/// reference norm is below 1e-3 x the largest gradient-tensor norm, the error is divided by that
/// floor instead (the row says so).
/// </summary>
public static class StGcnParity
{
    /// <summary>Forward outputs and running statistics.</summary>
    public const double ForwardTolerance = 1e-5;

    /// <summary>Parameter gradients.</summary>
    public const double GradientTolerance = 1e-4;

    /// <summary>The op tier called <paramref name="backend"/>: "reference" or "cpu".</summary>
    public static IStGcnOps Backend(string backend) => backend switch
    {
        "reference" => new StGcnReferenceOps(),
        "cpu" => new StGcnCpuOps(),
        _ => throw new ArgumentException($"unknown ST-GCN backend '{backend}' (expected reference or cpu)", nameof(backend)),
    };

    /// <summary>True when <paramref name="f"/> looks like an ST-GCN fixture (data_bn weights and an input clip).</summary>
    public static bool IsStGcnFixture(SafeTensorsFile f) => f.Contains("param.data_bn.weight") && f.Contains("in.x");

    /// <summary>The parity check of <paramref name="fixturePath"/> on <paramref name="backend"/>, grouped for the
    /// parity command: graph.A, out.logits, out.features, out.loss, grad (every parameter), after.running
    /// (every running statistic), out.eval_logits, out.eval_features; each with its worst tensor.</summary>
    /// <exception cref="TensorFormatException">The file lacks a tensor or its shapes disagree with the config.</exception>
    public static ParityReport Run(string fixturePath, string backend) => Run(SafeTensorsFile.Read(fixturePath), backend);

    /// <inheritdoc cref="Run(string, string)"/>
    public static ParityReport Run(SafeTensorsFile fixture, string backend) => Run(fixture, Backend(backend));

    /// <summary>The grouped check with the model on <paramref name="ops"/> (any tier, e.g. a device's).</summary>
    public static ParityReport Run(SafeTensorsFile fixture, IStGcnOps ops)
    {
        var detail = RunTensors(fixture, ops);
        var report = new ParityReport(fixture.Path, detail.Backend);
        static string Group(string name) => name switch
        {
            "graph.A" or "param.A" => "graph.A",
            _ when name.StartsWith("grad.", StringComparison.Ordinal) => "grad",
            _ when name.StartsWith("after.running.", StringComparison.Ordinal) => "after.running",
            _ => name,
        };
        foreach (var g in detail.Rows.GroupBy(r => Group(r.Name)))
            report.Add(g.Key, g.Max(r => r.Tolerance), g.Select(r => (r.Name, r.RelError)));
        foreach (var r in detail.Rows.Where(r => r.Note.Length > 0)) report.Note($"{r.Name}: {r.Note}");
        return report;
    }

    /// <summary>The same check with one row per tensor (what <see cref="Run(SafeTensorsFile, string)"/> groups).</summary>
    public static StGcnParityReport RunTensors(SafeTensorsFile f, string backend) => RunTensors(f, Backend(backend));

    /// <summary>The per-tensor check with the model on <paramref name="ops"/> (any tier, e.g. a device's).</summary>
    public static StGcnParityReport RunTensors(SafeTensorsFile f, IStGcnOps ops)
    {
        string fixturePath = f.Path;
        var cfg = StGcnCheckpoint.ReadConfig(f);
        var model = new StGcnModel(cfg, ops);
        StGcnCheckpoint.LoadInto(model, f, "param.");
        var xs = f["in.x"];
        if (xs.Shape.Length != 5 || xs.Shape[1] != cfg.InChannels || xs.Shape[3] != cfg.V)
            throw new TensorFormatException(fixturePath, $"in.x has shape [{string.Join(",", xs.Shape)}], expected (N, {cfg.InChannels}, T, {cfg.V}, M)");
        int n = xs.Shape[0], t = xs.Shape[2], m = xs.Shape[4];
        var x = xs.ToFloat32();
        var y = f["in.y"].ToInt32();
        var rows = new List<ParityRow>();
        double[] Want(string name, int count)
        {
            if (!f.Contains(name)) throw new TensorFormatException(fixturePath, $"missing tensor '{name}'");
            var want = f[name].ToFloat64();
            if (want.Length != count) throw new TensorFormatException(fixturePath, $"tensor '{name}' has {want.Length} values, the model produced {count}");
            return want;
        }
        void Cmp(string name, ReadOnlySpan<float> got, double tol) => rows.Add(new ParityRow(name, RelError(got, Want(name, got.Length)), tol));
        static double RelError(ReadOnlySpan<float> got, double[] want) => ParityReport.RelativeError(Widen(got), want);

        foreach (var an in new[] { "graph.A", "param.A" })
            if (f.Contains(an)) Cmp(an, model.A, 1e-6);

        model.ZeroGradients();
        double loss = model.Forward(x, y, n, t, m, training: true);
        Cmp("out.logits", model.Logits, ForwardTolerance);
        Cmp("out.features", model.Features, ForwardTolerance);
        Cmp("out.loss", [(float)loss], ForwardTolerance);
        model.Backward();
        model.SyncToHost();
        var grads = model.Layout.Parameters.Select(p => (Name: "grad." + p.Name, Got: p.Of(model.Gradients), Want: Want("grad." + p.Name, p.Length))).ToList();
        double floor = 1e-3 * grads.Max(g => Norm(g.Want));
        foreach (var (name, got, want) in grads)
        {
            double wn = Norm(want);
            if (wn >= floor) rows.Add(new ParityRow(name, RelError(got, want), GradientTolerance));
            else rows.Add(new ParityRow(name, Diff(got, want) / floor, GradientTolerance,
                string.Create(CultureInfo.InvariantCulture, $"||ref|| = {wn:E1}, an exact zero; divided by floor {floor:E1}")));
        }
        foreach (var name in f.Names.Where(s => s.StartsWith("grad.", StringComparison.Ordinal)))
            if (!model.Layout.Contains(name[5..])) throw new TensorFormatException(fixturePath, $"'{name}' names no parameter of the model built from the config");
        foreach (var bv in model.Layout.Buffers) Cmp("after.running." + bv.Name, bv.Of(model.Buffers), ForwardTolerance);

        model.Forward(x, default, n, t, m, training: false);
        Cmp("out.eval_logits", model.Logits, ForwardTolerance);
        Cmp("out.eval_features", model.Features, ForwardTolerance);
        return new StGcnParityReport(fixturePath, model.Name, cfg, rows);
    }

    private static double[] Widen(ReadOnlySpan<float> a)
    {
        var d = new double[a.Length];
        for (int i = 0; i < a.Length; i++) d[i] = a[i];
        return d;
    }

    private static double Norm(ReadOnlySpan<double> b)
    {
        double s = 0;
        foreach (var v in b) s += v * v;
        return Math.Sqrt(s);
    }

    private static double Diff(ReadOnlySpan<float> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; s += d * d; }
        return Math.Sqrt(s);
    }
}
