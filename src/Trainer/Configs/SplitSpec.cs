using Tdsm.Data;

namespace Tdsm.Trainer.Configs;

/// <summary>Where a split's class ids come from.</summary>
public enum SplitKind
{
    /// <summary><c>ru{U}.npy</c> (+ <c>rs{S}.npy</c> when present, else the complement).</summary>
    Files,

    /// <summary>One entry of SMIE's <c>smie_random_splits.json</c> (unseen ids; seen = the complement).</summary>
    Smie,

    /// <summary>A built-in split of the 48-class synthetic dataset (<see cref="SyntheticActions.Splits"/>).</summary>
    Synthetic,
}

/// <summary>
/// A zero-shot split as named in a config: dataset (class count), and where the ids live.
/// <see cref="Resolve"/> reads and validates it (ids in range, no repeats, seen ∩ unseen = ∅, together every class).
/// </summary>
/// <param name="Name">Preset name or a description.</param>
/// <param name="Dataset">ntu60, ntu120, pku51 or synth.</param>
/// <param name="ClassCount">Classes of the dataset.</param>
/// <param name="Kind">Where the ids come from.</param>
/// <param name="UnseenPath">Files: the ru file; Smie: the json.</param>
/// <param name="SeenPath">Files: the rs file (null: the complement of unseen).</param>
/// <param name="Key">Smie: the json key; Synthetic: the unseen count as text.</param>
public sealed record SplitSpec(string Name, string Dataset, int ClassCount, SplitKind Kind, string? UnseenPath = null, string? SeenPath = null, string? Key = null)
{
    /// <summary>Classes per dataset name.</summary>
    public static readonly IReadOnlyDictionary<string, int> DatasetClasses = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["ntu60"] = 60, ["ntu120"] = 120, ["pku51"] = 51, ["synth"] = SyntheticActions.Count,
    };

    /// <summary>Reads the ids and validates them.</summary>
    /// <exception cref="ConfigException">A file is missing or malformed, or the split is inconsistent; names the file.</exception>
    public LabelSplit Resolve()
    {
        switch (Kind)
        {
            case SplitKind.Files:
            {
                var unseenPath = UnseenPath ?? throw new ConfigException(Name, 0, "split has no unseen_label_path");
                var unseen = ReadIds(unseenPath);
                var split = SeenPath is null ? Complement(unseen, unseenPath) : new LabelSplit(ReadIds(SeenPath), unseen);
                Check(split, SeenPath is null ? unseenPath : $"{unseenPath} + {SeenPath}");
                return split;
            }
            case SplitKind.Smie:
            {
                var path = UnseenPath ?? throw new ConfigException(Name, 0, "SMIE split has no json path");
                if (!File.Exists(path)) throw new ConfigException(path, 0, "file not found (SMIE random splits json)");
                Dictionary<string, int[]> all;
                try { all = LabelSplit.ReadSmieSplits(path); }
                catch (DataFormatException e) { throw new ConfigException(path, 0, e.Message, e); }
                if (Key is null || !all.TryGetValue(Key, out var unseen))
                    throw new ConfigException(path, 0, $"no split '{Key}' (has {string.Join(", ", all.Keys)})");
                return Complement(unseen, $"{path} [{Key}]");
            }
            case SplitKind.Synthetic:
            {
                int u = int.TryParse(Key, out int v) ? v : -1;
                if (!SyntheticActions.Splits.TryGetValue(u, out var split))
                    throw new ConfigException(Name, 0, $"the synthetic dataset has splits with {string.Join(" or ", SyntheticActions.Splits.Keys)} unseen classes, not '{Key}'");
                return split;
            }
            default: throw new InvalidOperationException($"unknown split kind {Kind}");
        }
    }

    private LabelSplit Complement(int[] unseen, string source)
    {
        try { return LabelSplit.FromUnseen(unseen, ClassCount, source); }
        catch (DataFormatException e) { throw new ConfigException(source, 0, e.Message, e); }
    }

    private void Check(LabelSplit split, string source)
    {
        var overlap = split.Seen.Intersect(split.Unseen).Order().ToArray();
        if (overlap.Length > 0)
            throw new ConfigException(source, 0, $"seen and unseen classes overlap: {string.Join(", ", overlap)} (a zero-shot split needs disjoint sets)");
        try { split.Validate(ClassCount, source); }
        catch (DataFormatException e) { throw new ConfigException(source, 0, $"{e.Message} ({Dataset})", e); }
    }

    private static int[] ReadIds(string path)
    {
        if (!File.Exists(path)) throw new ConfigException(path, 0, "split file not found");
        try { return LabelSplit.ReadIds(path); }
        catch (Tdsm.Formats.TensorFormatException e) { throw new ConfigException(path, 0, e.Message, e); }
    }
}
