using System.Globalization;
using Tdsm.Evaluation;
using Tdsm.Model;
using Tdsm.Training;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Tdsm.Trainer.Configs;

/// <summary>
/// Reads a <see cref="RunConfig"/> from YAML. Accepts the official TDSM yaml keys (KAIST-VICLab/TDSM
/// <c>config/*.yaml</c> and its <c>main.py</c> arguments; '-' and '_' are the same) and our own keys.
/// Every unknown key is an error naming the file and line; official keys that do not apply here
/// (<c>num_worker</c>, <c>gpu</c>, ...) are accepted and listed on <c>notes</c>. Values that would
/// silently change the method (<c>optimizer</c> other than AdamW, <c>d_weight</c> ≠ 1, ...) are errors.
/// Relative paths are tried beside the yaml, one folder up (the official configs live in <c>config/</c>),
/// the working directory and, for <c>label_splits/...</c>, the shared data root.
/// </summary>
public static class RunConfigLoader
{
    private sealed class State(RunConfig b, string file, string dir, string dataRoot)
    {
        public readonly string File = file, Dir = dir, DataRoot = dataRoot;
        public DataSource Data = b.Data;
        public string? DataPath = b.DataPath;
        public string Text = b.TextFeatures;
        public SplitSpec Split = b.Split;
        public string? SplitName, Dataset, UnseenPath, SeenPath;
        public int? UnseenCount;
        public int SplitLine;
        public DiTConfig Dit = b.Dit;
        public TrainConfig Train = b.Train;
        public int NumNoise = b.NumNoise;
        public List<ulong>? Seeds;
        public ulong? Seed;
        public int NumSeeds = b.Seeds.Count;
        public ulong BaseSeed = b.Seeds.Count > 0 ? b.Seeds[0] : 0;
        public string OutputDir = b.OutputDir;
        public BaselineConfig Baseline = b.Baseline;
        public GzslConfig Gzsl = b.Gzsl;
        public readonly List<(string Key, int Line)> Unknown = [];
        public readonly List<string> Notes = [];
    }

    private delegate void Setter(State s, YamlNode value, int line);

    // Official keys that have no meaning for this implementation; accepted and reported.
    private static readonly string[] Ignored =
        ["num_worker", "gpu", "phase", "feeder", "val_feeder_args", "test_feeder_args", "save_epoch", "eval_epoch", "val_epoch",
         "test_batch_size", "num_epoch", "model", "model_args", "config"];

    private static readonly Dictionary<string, Setter> Keys = new(StringComparer.Ordinal)
    {
        // ---- official TDSM keys ----
        ["seed"] = (s, v, l) => s.Seed = U64(s, v, l, "seed"),
        ["work_dir"] = (s, v, l) => s.OutputDir = Str(s, v, l, "work_dir"),
        ["optimizer"] = (s, v, l) => Require(s, v, l, "optimizer", "adamw"),
        ["lr_scheduler"] = (s, v, l) => Require(s, v, l, "lr_scheduler", "cosine"),
        ["prediction_type"] = (s, v, l) => Require(s, v, l, "prediction_type", "epsilon", "eplison"),
        ["learning_rate"] = (s, v, l) => s.Train = s.Train with { Lr = Dbl(s, v, l, "learning_rate") },
        ["weight_decay"] = (s, v, l) => s.Train = s.Train with { WeightDecay = Dbl(s, v, l, "weight_decay") },
        ["num_iter"] = (s, v, l) => s.Train = s.Train with { Iterations = Int(s, v, l, "num_iter") },
        ["num_warmup"] = (s, v, l) => s.Train = s.Train with { Warmup = Int(s, v, l, "num_warmup") },
        ["batch_size"] = (s, v, l) => s.Train = s.Train with { Batch = Int(s, v, l, "batch_size") },
        ["log_iter"] = (s, v, l) => s.Train = s.Train with { LogEvery = Int(s, v, l, "log_iter") },
        ["save_iter"] = (s, v, l) => s.Train = s.Train with { CheckpointEvery = Int(s, v, l, "save_iter") },
        ["margin"] = (s, v, l) => s.Train = s.Train with { Margin = Dbl(s, v, l, "margin") },
        ["t_weight"] = (s, v, l) => s.Train = s.Train with { Lambda = Dbl(s, v, l, "t_weight") },
        ["d_weight"] = (s, v, l) =>
        {
            // The loss is diffusion + λ·triplet; only the relative weight (t_weight) is a setting.
            if (Dbl(s, v, l, "d_weight") != 1.0) throw new ConfigException(s.File, l, $"d_weight must be 1.0 (scale t_weight instead), got {Scalar(s, v, l, "d_weight")}");
        },
        ["unseen_label"] = (s, v, l) => { s.UnseenCount = Int(s, v, l, "unseen_label"); },
        ["unseen_label_path"] = (s, v, l) => { s.UnseenPath = SplitFile(s, v, l, "unseen_label_path"); s.SplitLine = l; },
        ["num_noise"] = (s, v, l) => s.NumNoise = Int(s, v, l, "num_noise"),
        ["in_channels"] = (s, v, l) => s.Dit = s.Dit with { InChannels = Int(s, v, l, "in_channels") },
        ["hidden_size"] = (s, v, l) => s.Dit = s.Dit with { Hidden = Int(s, v, l, "hidden_size") },
        ["depth"] = (s, v, l) => s.Dit = s.Dit with { Depth = Int(s, v, l, "depth") },
        ["num_heads"] = (s, v, l) => s.Dit = s.Dit with { Heads = Int(s, v, l, "num_heads") },
        ["num_steps"] = (s, v, l) => s.Dit = s.Dit with { Steps = Int(s, v, l, "num_steps") },
        ["idx_inference_step"] = (s, v, l) => s.Dit = s.Dit with { TTest = Int(s, v, l, "idx_inference_step") },
        ["train_feeder_args"] = (s, v, l) =>
        {
            foreach (var (k, val, line) in Mapping(s, v, l, "train_feeder_args"))
            {
                if (k == "path") { s.Data = DataSource.Features; s.DataPath = Folder(s, Str(s, val, line, "train_feeder_args.path")); }
                else if (k == "split") Require(s, val, line, "train_feeder_args.split", "train");
                else s.Unknown.Add(($"train_feeder_args.{k}", line));
            }
        },
        // ---- our keys ----
        ["preset"] = (_, _, _) => { }, // applied before every other key
        ["split"] = (s, v, l) => { s.SplitName = Str(s, v, l, "split"); s.SplitLine = l; },
        ["dataset"] = (s, v, l) =>
        {
            s.Dataset = Str(s, v, l, "dataset");
            if (!SplitSpec.DatasetClasses.ContainsKey(s.Dataset))
                throw new ConfigException(s.File, l, $"unknown dataset '{s.Dataset}'; known: {string.Join(", ", SplitSpec.DatasetClasses.Keys)}");
        },
        ["seen_label_path"] = (s, v, l) => s.SeenPath = SplitFile(s, v, l, "seen_label_path"),
        ["data"] = (s, v, l) =>
        {
            var d = Str(s, v, l, "data");
            s.Data = Enum.TryParse<DataSource>(d, ignoreCase: true, out var src) ? src
                : throw new ConfigException(s.File, l, $"data must be synthetic, features or skeletons, got '{d}'");
        },
        ["features_dir"] = (s, v, l) => { s.Data = DataSource.Features; s.DataPath = Folder(s, Str(s, v, l, "features_dir")); },
        ["skeletons_dir"] = (s, v, l) => { s.Data = DataSource.Skeletons; s.DataPath = Folder(s, Str(s, v, l, "skeletons_dir")); },
        ["text_features"] = (s, v, l) =>
        {
            var t = Str(s, v, l, "text_features");
            if (t == RunConfig.BuiltinText) { s.Text = t; return; }
            s.Text = FindFile(s, t) ?? throw new ConfigException(s.File, l, $"text_features file not found: '{t}' (looked beside {s.File}, one folder up and in {Environment.CurrentDirectory})");
        },
        ["dit_preset"] = (s, v, l) =>
        {
            var p = Str(s, v, l, "dit_preset");
            s.Dit = p switch
            {
                "small" => DiTConfig.Small, "paper" => DiTConfig.Paper, "paper-minilm" => DiTConfig.PaperMiniLM,
                _ => throw new ConfigException(s.File, l, $"unknown dit_preset '{p}'; known: small, paper, paper-minilm"),
            };
        },
        ["cond_size"] = (s, v, l) => s.Dit = s.Dit with { CondSize = Int(s, v, l, "cond_size") },
        ["mlp_ratio"] = (s, v, l) => s.Dit = s.Dit with { MlpRatio = Dbl(s, v, l, "mlp_ratio") },
        ["seeds"] = (s, v, l) =>
        {
            if (v is not YamlSequenceNode seq || seq.Children.Count == 0) throw new ConfigException(s.File, l, "seeds expects a non-empty list of integers, e.g. [0, 1, 2]");
            s.Seeds = [.. seq.Children.Select(c => U64(s, c, (int)c.Start.Line, "seeds"))];
        },
        ["num_seeds"] = (s, v, l) => s.NumSeeds = Int(s, v, l, "num_seeds"),
        ["checkpoint_every"] = (s, v, l) => s.Train = s.Train with { CheckpointEvery = Int(s, v, l, "checkpoint_every") },
        ["baseline"] = (s, v, l) =>
        {
            foreach (var (k, val, line) in Mapping(s, v, l, "baseline"))
                s.Baseline = k switch
                {
                    "epochs" => s.Baseline with { Epochs = Int(s, val, line, "baseline.epochs") },
                    "batch_size" => s.Baseline with { Batch = Int(s, val, line, "baseline.batch_size") },
                    "learning_rate" => s.Baseline with { Lr = Dbl(s, val, line, "baseline.learning_rate") },
                    "weight_decay" => s.Baseline with { WeightDecay = Dbl(s, val, line, "baseline.weight_decay") },
                    "temperature" => s.Baseline with { Temperature = Dbl(s, val, line, "baseline.temperature") },
                    "learn_temperature" => s.Baseline with { LearnTemperature = Bool(s, val, line, "baseline.learn_temperature") },
                    _ => Unknown(s, $"baseline.{k}", line, s.Baseline),
                };
        },
        ["gzsl"] = (s, v, l) =>
        {
            if (v is YamlScalarNode) { s.Gzsl = s.Gzsl with { Enabled = Bool(s, v, l, "gzsl") }; return; }
            s.Gzsl = s.Gzsl with { Enabled = true };
            foreach (var (k, val, line) in Mapping(s, v, l, "gzsl"))
                s.Gzsl = k switch
                {
                    "enabled" => s.Gzsl with { Enabled = Bool(s, val, line, "gzsl.enabled") },
                    "calibration" => s.Gzsl with
                    {
                        Calibration = Str(s, val, line, "gzsl.calibration") switch
                        {
                            "seen_fraction" => GzslCalibrationMode.SeenFraction, "pseudo_unseen" => GzslCalibrationMode.PseudoUnseen,
                            var other => throw new ConfigException(s.File, line, $"gzsl.calibration must be seen_fraction or pseudo_unseen, got '{other}'"),
                        },
                    },
                    "keep_seen" => s.Gzsl with { KeepSeen = Dbl(s, val, line, "gzsl.keep_seen") },
                    "validation_fraction" => s.Gzsl with { ValidationFraction = Dbl(s, val, line, "gzsl.validation_fraction") },
                    _ => Unknown(s, $"gzsl.{k}", line, s.Gzsl),
                };
        },
    };

    /// <summary>Every top-level key accepted.</summary>
    public static IReadOnlyList<string> KnownKeys => [.. Keys.Keys.Concat(Ignored).Order(StringComparer.Ordinal)];

    /// <summary>Loads a yaml file.</summary>
    /// <param name="path">The yaml file.</param>
    /// <param name="dataRoot">The shared data folder (for split presets and official <c>./data/label_splits/...</c> paths).</param>
    /// <param name="notes">Receives one line per accepted-but-unused official key.</param>
    /// <exception cref="ConfigException">Missing file, bad YAML, unknown key, bad value, missing or inconsistent split (file and line named).</exception>
    public static RunConfig Load(string path, string dataRoot, TextWriter? notes = null)
    {
        if (!File.Exists(path)) throw new ConfigException(path, 0, "config file not found");
        return Parse(File.ReadAllText(path), path, dataRoot, notes);
    }

    /// <summary>Parses yaml text; <paramref name="file"/> names it in errors and anchors relative paths.</summary>
    public static RunConfig Parse(string yaml, string file, string dataRoot, TextWriter? notes = null)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e) { throw new ConfigException(file, (int)e.Start.Line, $"not valid YAML: {e.Message}", e); }
        if (stream.Documents.Count == 0) throw new ConfigException(file, 0, "empty config");
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new ConfigException(file, (int)stream.Documents[0].RootNode.Start.Line, "a config is a mapping of key: value");

        var entries = Mapping(null, root, 1, "config", file).ToList();
        var basis = RunConfig.Default(dataRoot);
        var preset = entries.FirstOrDefault(e => e.Key == "preset");
        if (preset.Value is not null)
        {
            var name = preset.Value is YamlScalarNode { Value: { } v } ? v : "";
            try { basis = RunConfig.Preset(name, dataRoot); }
            catch (ConfigException e) { throw new ConfigException(file, preset.Line, $"unknown preset '{name}'; known: {string.Join(", ", RunConfig.PresetNames)}", e); }
        }
        var s = new State(basis, file, Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".", dataRoot);
        foreach (var (key, value, line) in entries)
        {
            if (Keys.TryGetValue(key, out var set)) set(s, value, line);
            else if (Ignored.Contains(key)) s.Notes.Add($"{file}:{line}: '{key}' is an official TDSM setting with no effect here; ignored");
            else s.Unknown.Add((key, line));
        }
        if (s.Unknown.Count > 0)
            throw new ConfigException(file, s.Unknown[0].Line,
                $"unknown key{(s.Unknown.Count > 1 ? "s" : "")} {string.Join(", ", s.Unknown.Select(u => $"'{u.Key}' (line {u.Line})"))}; known keys: {string.Join(", ", KnownKeys)}");
        foreach (var n in s.Notes) notes?.WriteLine(n);
        return Build(s);
    }

    private static RunConfig Build(State s)
    {
        var split = s.Split;
        if (s.UnseenPath is not null)
        {
            string dataset = s.Dataset ?? InferDataset(s.UnseenPath)
                ?? throw new ConfigException(s.File, s.SplitLine, $"cannot tell the dataset of '{s.UnseenPath}' (no ntu60/ntu120/pku51 folder in its path); add 'dataset: ntu60' or similar");
            int classes = SplitSpec.DatasetClasses[dataset];
            int[] unseen;
            try { unseen = Tdsm.Data.LabelSplit.ReadIds(s.UnseenPath); }
            catch (Tdsm.Formats.TensorFormatException e) { throw new ConfigException(s.File, s.SplitLine, e.Message, e); }
            string? seenPath = s.SeenPath;
            var sibling = Path.Combine(Path.GetDirectoryName(s.UnseenPath) ?? ".", $"rs{classes - unseen.Length}.npy");
            if (seenPath is null && File.Exists(sibling)) seenPath = sibling;
            split = new SplitSpec(Path.GetFileNameWithoutExtension(s.UnseenPath), dataset, classes, SplitKind.Files, s.UnseenPath, seenPath);
        }
        else if (s.SplitName is not null)
        {
            try { split = SplitPresets.Get(s.SplitName, s.DataRoot); }
            catch (ConfigException e) { throw new ConfigException(s.File, s.SplitLine, e.Problem, e); }
        }
        Tdsm.Data.LabelSplit resolved;
        try { resolved = split.Resolve(); }
        catch (ConfigException e) { throw new ConfigException(s.File, s.SplitLine, $"split {split.Name}: {e.Message}", e); }
        if (s.UnseenCount is int u && u != resolved.Unseen.Length)
            throw new ConfigException(s.File, s.SplitLine, $"unseen_label says {u} unseen classes but {split.UnseenPath ?? split.Name} holds {resolved.Unseen.Length}");

        var seeds = s.Seeds;
        ulong first = s.Seed ?? s.BaseSeed;
        if (seeds is null)
        {
            if (s.NumSeeds <= 0) throw new ConfigException(s.File, 0, $"num_seeds must be positive, got {s.NumSeeds}");
            seeds = [.. Enumerable.Range(0, s.NumSeeds).Select(i => first + (ulong)i)];
        }
        if (s.NumNoise <= 0) throw new ConfigException(s.File, 0, $"num_noise must be positive, got {s.NumNoise}");
        var g = s.Gzsl;
        if (!(g.KeepSeen > 0 && g.KeepSeen <= 1) || !(g.ValidationFraction > 0 && g.ValidationFraction < 1))
            throw new ConfigException(s.File, 0, $"gzsl.keep_seen must be in (0, 1] and gzsl.validation_fraction in (0, 1), got {g.KeepSeen} and {g.ValidationFraction}");
        try
        {
            var train = (s.Train with { Seed = seeds[0] }).Validated();
            return new RunConfig(s.Data, s.DataPath, s.Text, split, s.Dit.Validated(), train, s.NumNoise, seeds,
                s.OutputDir, s.Baseline.Validated() with { Seed = seeds[0] }, g);
        }
        catch (ArgumentException e) { throw new ConfigException(s.File, 0, e.Message, e); }
    }

    private static string? InferDataset(string path)
    {
        var parts = path.Replace('\\', '/').Split('/');
        return parts.Reverse().FirstOrDefault(p => p is "ntu60" or "ntu120" or "pku51");
    }

    // ---- value readers: each names the key and line on a bad value ----

    private static IEnumerable<(string Key, YamlNode Value, int Line)> Mapping(State? s, YamlNode v, int line, string key, string? file = null)
    {
        if (v is not YamlMappingNode m) throw new ConfigException(s?.File ?? file ?? "", line, $"'{key}' expects a mapping of key: value");
        foreach (var (k, val) in m.Children)
        {
            var name = k is YamlScalarNode { Value: { } n } ? n.Replace('-', '_') : throw new ConfigException(s?.File ?? file ?? "", (int)k.Start.Line, "keys must be plain names");
            yield return (name, val, (int)k.Start.Line);
        }
    }

    private static T Unknown<T>(State s, string key, int line, T keep) { s.Unknown.Add((key, line)); return keep; }

    private static string Scalar(State s, YamlNode v, int line, string key) =>
        v is YamlScalarNode { Value: { } text } ? text : throw new ConfigException(s.File, line, $"'{key}' expects a single value");

    private static string Str(State s, YamlNode v, int line, string key)
    {
        var t = Scalar(s, v, line, key);
        return t.Length > 0 ? t : throw new ConfigException(s.File, line, $"'{key}' is empty");
    }

    private static int Int(State s, YamlNode v, int line, string key) =>
        int.TryParse(Scalar(s, v, line, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) ? x
            : throw new ConfigException(s.File, line, $"'{key}' expects an integer, got '{Scalar(s, v, line, key)}'");

    private static ulong U64(State s, YamlNode v, int line, string key) =>
        ulong.TryParse(Scalar(s, v, line, key), NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong x) ? x
            : throw new ConfigException(s.File, line, $"'{key}' expects a non-negative integer, got '{Scalar(s, v, line, key)}'");

    private static double Dbl(State s, YamlNode v, int line, string key) =>
        double.TryParse(Scalar(s, v, line, key), NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x) ? x
            : throw new ConfigException(s.File, line, $"'{key}' expects a number, got '{Scalar(s, v, line, key)}'");

    private static bool Bool(State s, YamlNode v, int line, string key) => Scalar(s, v, line, key).ToLowerInvariant() switch
    {
        "true" or "yes" or "1" => true,
        "false" or "no" or "0" => false,
        var t => throw new ConfigException(s.File, line, $"'{key}' expects true or false, got '{t}'"),
    };

    private static void Require(State s, YamlNode v, int line, string key, params string[] allowed)
    {
        var t = Str(s, v, line, key);
        if (!allowed.Contains(t.ToLowerInvariant()))
            throw new ConfigException(s.File, line, $"'{key}' must be {allowed[0]} (the only one implemented), got '{t}'");
    }

    private static string[] Candidates(State s, string value) =>
        Path.IsPathRooted(value) ? [value]
            : [Path.Combine(s.Dir, value), Path.Combine(Path.GetDirectoryName(s.Dir) ?? s.Dir, value), Path.GetFullPath(value)];

    private static string? FindFile(State s, string value) => Candidates(s, value).Select(Path.GetFullPath).FirstOrDefault(File.Exists);

    private static string Folder(State s, string value) =>
        Candidates(s, value.TrimEnd('/', '\\')).Select(Path.GetFullPath).FirstOrDefault(Directory.Exists) ?? Path.GetFullPath(Path.Combine(s.Dir, value.TrimEnd('/', '\\')));

    // A split file; official configs name it as ./data/label_splits/<dataset>/ruN.npy, which the shared data root also holds.
    private static string SplitFile(State s, YamlNode v, int line, string key)
    {
        var value = Str(s, v, line, key);
        var found = FindFile(s, value);
        if (found is not null) return found;
        var norm = value.Replace('\\', '/');
        int at = norm.IndexOf("label_splits/", StringComparison.Ordinal);
        if (at >= 0)
        {
            var shared = Path.Combine(s.DataRoot, norm[at..]);
            if (File.Exists(shared)) return Path.GetFullPath(shared);
        }
        throw new ConfigException(s.File, line, $"{key} file not found: '{value}' (looked beside the config, one folder up, in {Environment.CurrentDirectory} and under {s.DataRoot})");
    }
}
