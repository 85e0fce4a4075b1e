using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tdsm.StGcn;

/// <summary>One ST-GCN block: gcn (cin -> cout), tcn (kt x 1, stride), residual branch.</summary>
/// <param name="Cin">Input channels.</param>
/// <param name="Cout">Output channels.</param>
/// <param name="Stride">Temporal stride of the tcn (and of the residual conv).</param>
/// <param name="Residual">False: no residual (first block). True: identity when Cin == Cout and
/// Stride == 1, else Conv1x1(stride) + BN.</param>
public sealed record BlockSpec(int Cin, int Cout, int Stride, bool Residual)
{
    /// <summary>True when the residual branch is Conv1x1 + BN (res.0, res.1 exist).</summary>
    public bool HasResidualConv => Residual && !(Cin == Cout && Stride == 1);
}

/// <summary>
/// ST-GCN configuration (spec section 6). Presets: <see cref="Paper"/> (the 10 ST-GCN layers,
/// feature 256) and <see cref="Small"/> (4 narrow blocks for CPU demos, feature 128).
/// <see cref="FromJson"/> reads the fixture's metadata "config".
/// </summary>
public sealed record StGcnConfig(int InChannels, int NumClass, IReadOnlyList<BlockSpec> Layers,
    int V = 25, int Kt = 9, double BnEps = 1e-5, double BnMomentum = 0.1)
{
    /// <summary>Partitions of the spatial graph (root, centripetal, centrifugal).</summary>
    public const int K = 3;

    /// <summary>The ST-GCN paper's encoder: 3->64, 64x3, 64->128 s2, 128x2, 128->256 s2, 256x2 (feature 256).
    /// 3.10 M parameters with 60 classes; 1041 GFLOP per forward at N=32, T=300, M=2.</summary>
    public static StGcnConfig Paper(int numClass) => new(3, numClass,
    [
        new(3, 64, 1, false), new(64, 64, 1, true), new(64, 64, 1, true), new(64, 64, 1, true),
        new(64, 128, 2, true), new(128, 128, 1, true), new(128, 128, 1, true),
        new(128, 256, 2, true), new(256, 256, 1, true), new(256, 256, 1, true),
    ]);

    /// <summary>A narrow, shallow encoder for CPU demos: 3->16, 16->32 s2, 32->64 s2, 64->128 s2 (feature 128).
    /// 256 k parameters with 55 classes; 9.7 GFLOP per forward at N=32, T=64, M=2 (45.9 at T=300).</summary>
    public static StGcnConfig Small(int numClass) => new(3, numClass,
    [
        new(3, 16, 1, false), new(16, 32, 2, true), new(32, 64, 2, true), new(64, 128, 2, true),
    ]);

    /// <summary>Width of the pooled feature z_x (the last block's output channels).</summary>
    public int FeatureDim => Layers[^1].Cout;

    /// <summary>Number of frames after block <paramref name="i"/> given <paramref name="t"/> input frames.</summary>
    public int FramesAfter(int i, int t)
    {
        for (int j = 0; j <= i; j++) t = TemporalOut(t, Layers[j].Stride);
        return t;
    }

    /// <summary>Output length of the kt x 1 temporal conv with padding (kt-1)/2.</summary>
    public int TemporalOut(int t, int stride) => (t + 2 * ((Kt - 1) / 2) - Kt) / stride + 1;

    /// <summary>Checks the layer chain (each block's Cin equals the previous Cout).</summary>
    public void Validate()
    {
        if (InChannels < 1 || NumClass < 1 || V < 1 || Kt < 1 || Kt % 2 == 0)
            throw new ArgumentException($"ST-GCN config: bad sizes in_channels={InChannels} num_class={NumClass} V={V} kt={Kt} (kt must be odd)");
        if (V != Graph.NtuJoints) throw new ArgumentException($"ST-GCN config: V={V}, but the graph is NTU RGB+D's {Graph.NtuJoints} joints");
        if (!(BnEps > 0 && BnEps < 1) || !(BnMomentum >= 0 && BnMomentum <= 1))
            throw new ArgumentException($"ST-GCN config: needs 0 < bn_eps < 1 and 0 <= bn_momentum <= 1, got {BnEps} and {BnMomentum}");
        if (Layers.Count == 0) throw new ArgumentException("ST-GCN config: empty layer list");
        int c = InChannels;
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            if (l.Cin != c) throw new ArgumentException($"ST-GCN config: layer {i} has cin {l.Cin}, expected {c} (previous cout)");
            if (l.Cout < 1 || l.Stride < 1) throw new ArgumentException($"ST-GCN config: layer {i} has cout {l.Cout}, stride {l.Stride}");
            c = l.Cout;
        }
    }

    // Nonzeros of the NTU partitioned adjacency (73 of 3*25*25): the graph aggregation's useful work.
    private static readonly Lazy<int> NtuNonZeros = new(() => Graph.Ntu().A.Count(a => a != 0));

    /// <summary>Multiply-adds x2 of one forward pass on N samples of T frames with M persons
    /// (convolutions, graph aggregation over the adjacency's nonzeros, classifier; BN/ReLU/pool not counted).</summary>
    public double ForwardFlops(int n, int t, int m)
    {
        double b = (double)n * m, flops = 0;
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            int tout = TemporalOut(t, l.Stride);
            flops += 2 * b * t * V * (double)K * l.Cout * l.Cin;            // gcn 1x1 conv
            flops += 2 * b * t * (double)l.Cout * NtuNonZeros.Value;         // graph aggregation (sparse)
            flops += 2 * b * tout * V * (double)l.Cout * l.Cout * Kt;       // tcn
            if (l.HasResidualConv) flops += 2 * b * tout * V * (double)l.Cout * l.Cin;
            t = tout;
        }
        return flops + 2.0 * n * FeatureDim * NumClass;
    }

    /// <summary>The config as the fixture's metadata JSON (same keys).</summary>
    public string ToJson()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{{\"in_channels\": {InChannels}, \"num_class\": {NumClass}, \"layers\": [");
        sb.AppendJoin(", ", Layers.Select(l => $"[{l.Cin}, {l.Cout}, {l.Stride}, {(l.Residual ? "true" : "false")}]"));
        sb.Append(CultureInfo.InvariantCulture, $"], \"V\": {V}, \"kt\": {Kt}, \"bn_eps\": {BnEps:R}, \"bn_momentum\": {BnMomentum:R}}}");
        return sb.ToString();
    }

    /// <summary>Parses the metadata JSON (keys in_channels, num_class, layers [[cin,cout,stride,residual],...],
    /// V, kt, bn_eps, bn_momentum; the last four optional). <paramref name="source"/> names the file in errors.</summary>
    public static StGcnConfig FromJson(string json, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            int Int(string key) => r.TryGetProperty(key, out var p) ? p.GetInt32()
                : throw new FormatException($"{source}: config has no '{key}'");
            var layers = new List<BlockSpec>();
            if (!r.TryGetProperty("layers", out var ls) || ls.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{source}: config has no 'layers' array");
            int idx = 0;
            foreach (var l in ls.EnumerateArray())
            {
                if (l.ValueKind != JsonValueKind.Array || l.GetArrayLength() != 4)
                    throw new FormatException($"{source}: config layers[{idx}] should be [cin, cout, stride, residual], got {l.GetRawText()}");
                var e = l.EnumerateArray().ToArray();
                layers.Add(new BlockSpec(e[0].GetInt32(), e[1].GetInt32(), e[2].GetInt32(), e[3].GetBoolean()));
                idx++;
            }
            var cfg = new StGcnConfig(Int("in_channels"), Int("num_class"), layers,
                r.TryGetProperty("V", out var v) ? v.GetInt32() : 25,
                r.TryGetProperty("kt", out var kt) ? kt.GetInt32() : 9,
                r.TryGetProperty("bn_eps", out var eps) ? eps.GetDouble() : 1e-5,
                r.TryGetProperty("bn_momentum", out var mom) ? mom.GetDouble() : 0.1);
            cfg.Validate();
            return cfg;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException or OverflowException)
        {
            throw new FormatException($"{source}: bad ST-GCN config JSON: {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public bool Equals(StGcnConfig? other) => other is not null && InChannels == other.InChannels && NumClass == other.NumClass
        && Layers.SequenceEqual(other.Layers) && V == other.V && Kt == other.Kt && BnEps == other.BnEps && BnMomentum == other.BnMomentum;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(InChannels, NumClass, Layers.Count, V, Kt);
}
