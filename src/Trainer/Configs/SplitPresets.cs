namespace Tdsm.Trainer.Configs;

/// <summary>
/// The named splits. Paper settings (file splits under <c>data/label_splits</c>):
/// SynSE: ntu60-u5 (55/5), ntu60-u12 (48/12), ntu120-u10 (110/10), ntu120-u24 (96/24);
/// PURLS: ntu60-u20 (40/20), ntu60-u30 (30/30), ntu120-u40 (80/40), ntu120-u60 (60/60).
/// SMIE random splits (<c>smie_random_splits.json</c>): smie-ntu60-1..3 (55/5), smie-ntu120-1..3 (110/10),
/// smie-pku51-1..3 (46/5). Synthetic: synth-u8, synth-u12.
/// </summary>
public static class SplitPresets
{
    /// <summary>Benchmark protocol of each file split: which paper introduced it.</summary>
    public static readonly IReadOnlyDictionary<string, string> Protocol = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["ntu60-u5"] = "SynSE", ["ntu60-u12"] = "SynSE", ["ntu120-u10"] = "SynSE", ["ntu120-u24"] = "SynSE",
        ["ntu60-u20"] = "PURLS", ["ntu60-u30"] = "PURLS", ["ntu120-u40"] = "PURLS", ["ntu120-u60"] = "PURLS",
    };

    /// <summary>Every preset name, paper settings first.</summary>
    public static IReadOnlyList<string> Names =>
    [
        .. Protocol.Keys,
        .. new[] { "ntu60", "ntu120", "pku51" }.SelectMany(d => Enumerable.Range(1, 3).Select(i => $"smie-{d}-{i}")),
        "synth-u8", "synth-u12",
    ];

    /// <summary>The split named <paramref name="name"/>, with paths under <paramref name="dataRoot"/> (the shared <c>data</c> folder).</summary>
    /// <exception cref="ConfigException">Unknown name (lists the known ones).</exception>
    public static SplitSpec Get(string name, string dataRoot)
    {
        string splits = Path.Combine(dataRoot, "label_splits");
        if (Protocol.ContainsKey(name))
        {
            var parts = name.Split("-u");
            string dataset = parts[0];
            int unseen = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            int classes = SplitSpec.DatasetClasses[dataset];
            string folder = Path.Combine(splits, dataset);
            return new SplitSpec(name, dataset, classes, SplitKind.Files, Path.Combine(folder, $"ru{unseen}.npy"), Path.Combine(folder, $"rs{classes - unseen}.npy"));
        }
        if (name.StartsWith("smie-", StringComparison.Ordinal))
        {
            var parts = name.Split('-');
            if (parts.Length == 3 && SplitSpec.DatasetClasses.ContainsKey(parts[1]) && parts[1] != "synth" && int.TryParse(parts[2], out int i) && i is >= 1 and <= 3)
            {
                int offset = parts[1] switch { "ntu60" => 0, "ntu120" => 3, _ => 6 };
                return new SplitSpec(name, parts[1], SplitSpec.DatasetClasses[parts[1]], SplitKind.Smie, Path.Combine(splits, "smie_random_splits.json"), Key: $"split_{offset + i}");
            }
        }
        if (name is "synth-u8" or "synth-u12")
            return new SplitSpec(name, "synth", SplitSpec.DatasetClasses["synth"], SplitKind.Synthetic, Key: name[7..]);
        throw new ConfigException(name, 0, $"unknown split preset '{name}'; known: {string.Join(", ", Names)}");
    }
}
