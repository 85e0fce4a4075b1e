using Tdsm.Evaluation;
using Tdsm.Model;
using Tdsm.Training;

namespace Tdsm.Trainer.Configs;

/// <summary>Where the skeleton side comes from.</summary>
public enum DataSource
{
    /// <summary>The generated 48-class synthetic dataset (skeletons through our encoder).</summary>
    Synthetic,

    /// <summary>A SynSE / SA-DVAE feature folder (train.npy, ztest.npy, ...).</summary>
    Features,

    /// <summary>Raw NTU skeletons, through the preprocessing and our encoder.</summary>
    Skeletons,
}

/// <summary>How the GZSL calibration factor γ is chosen (see <see cref="GzslCalibration"/>).</summary>
public enum GzslCalibrationMode
{
    /// <summary>Keep a target fraction of held-out seen samples predicted as seen.</summary>
    SeenFraction,

    /// <summary>Maximise H on a pseudo-unseen validation split (needs a second training run).</summary>
    PseudoUnseen,
}

/// <summary>GZSL settings: off by default; <see cref="ValidationFraction"/> of the seen training features is held out for choosing γ.</summary>
public sealed record GzslConfig(bool Enabled = false, GzslCalibrationMode Calibration = GzslCalibrationMode.SeenFraction,
    double KeepSeen = 0.9, double ValidationFraction = 0.1);

/// <summary>
/// One run: data, text features, split, DiT, training loop, seeds, baseline, GZSL and output folder.
/// Loaded from YAML by <see cref="RunConfigLoader"/> (our keys and the official TDSM yaml keys) or
/// built from the named presets. <see cref="TextFeatures"/> is <c>"builtin"</c> (MiniLM prompts) or a file;
/// the orchestration sets <c>Dit.CondSize</c> from the text features' width. The whole training runs
/// once per entry of <see cref="Seeds"/>; <c>Train.Seed</c> and <c>Baseline.Seed</c> hold the first.
/// </summary>
public sealed record RunConfig(
    DataSource Data, string? DataPath, string TextFeatures, SplitSpec Split, DiTConfig Dit, TrainConfig Train,
    int NumNoise, IReadOnlyList<ulong> Seeds, string OutputDir, BaselineConfig Baseline, GzslConfig Gzsl)
{
    /// <summary>The value of <see cref="TextFeatures"/> meaning "encode the class prompts with the built-in MiniLM".</summary>
    public const string BuiltinText = "builtin";

    /// <summary>Names accepted by <see cref="Preset"/>: "default" and the eight paper settings.</summary>
    public static IReadOnlyList<string> PresetNames => ["default", .. SplitPresets.Protocol.Keys];

    /// <summary>
    /// The synthetic CPU run: 48-class synthetic data, split synth-u8, MiniLM text, the Small DiT,
    /// 2,000 iterations of batch 128 (the pipeline may shorten it to meet its time budget), one seed.
    /// </summary>
    public static RunConfig Default(string dataRoot) => new(
        DataSource.Synthetic, null, BuiltinText, SplitPresets.Get("synth-u8", dataRoot), DiTConfig.Small,
        TrainConfig.Official with { Iterations = 2_000, Batch = 128, Lr = 1e-4, CheckpointEvery = 1_000, LogEvery = 50 },
        3, [0UL], Path.Combine("runs", "default"), BaselineConfig.Default, new GzslConfig());

    /// <summary>
    /// A paper setting (one of the eight split names, e.g. "ntu60-u5"): SynSE-layout features
    /// (the folder comes from --features), the paper DiT (cond 2048 for CLIP-sized text features),
    /// the official loop (50k iterations, batch 256, lr 1e-4, 100 warm-up), 3 noises, seed 2025
    /// (the official configs' seed).
    /// </summary>
    public static RunConfig Paper(string split, string dataRoot)
    {
        if (!SplitPresets.Protocol.ContainsKey(split))
            throw new ConfigException(split, 0, $"'{split}' is not a paper setting; known: {string.Join(", ", SplitPresets.Protocol.Keys)}");
        return new RunConfig(DataSource.Features, null, BuiltinText, SplitPresets.Get(split, dataRoot), DiTConfig.Paper,
            TrainConfig.Official with { Seed = 2025 }, 3, [2025UL], Path.Combine("runs", split), BaselineConfig.Default with { Seed = 2025 }, new GzslConfig());
    }

    /// <summary>"default" or a paper setting name.</summary>
    public static RunConfig Preset(string name, string dataRoot) => name == "default" ? Default(dataRoot) : Paper(name, dataRoot);

    /// <summary>The config as a JSON-friendly tree (for report.json).</summary>
    public IReadOnlyDictionary<string, object?> ToDictionary() => new Dictionary<string, object?>
    {
        ["data"] = Data.ToString().ToLowerInvariant(), ["data_path"] = DataPath, ["text_features"] = TextFeatures,
        ["split"] = new Dictionary<string, object?> { ["name"] = Split.Name, ["dataset"] = Split.Dataset, ["classes"] = Split.ClassCount, ["kind"] = Split.Kind.ToString(), ["unseen_label_path"] = Split.UnseenPath, ["seen_label_path"] = Split.SeenPath, ["key"] = Split.Key },
        ["dit"] = System.Text.Json.JsonDocument.Parse(Dit.ToJson()).RootElement.Clone(),
        ["train"] = System.Text.Json.JsonDocument.Parse(Train.ToJson()).RootElement.Clone(),
        ["num_noise"] = NumNoise, ["seeds"] = Seeds, ["work_dir"] = OutputDir,
        ["baseline"] = new Dictionary<string, object?> { ["epochs"] = Baseline.Epochs, ["batch_size"] = Baseline.Batch, ["learning_rate"] = Baseline.Lr, ["weight_decay"] = Baseline.WeightDecay, ["temperature"] = Baseline.Temperature, ["learn_temperature"] = Baseline.LearnTemperature, ["seed"] = Baseline.Seed },
        ["gzsl"] = new Dictionary<string, object?> { ["enabled"] = Gzsl.Enabled, ["calibration"] = Gzsl.Calibration.ToString(), ["keep_seen"] = Gzsl.KeepSeen, ["validation_fraction"] = Gzsl.ValidationFraction },
    };

    /// <summary>Checks the data and text-feature paths exist (call after command-line overrides).</summary>
    /// <exception cref="ConfigException">Names the missing path.</exception>
    public void CheckPaths(string source)
    {
        if (Data != DataSource.Synthetic && (DataPath is null || !Directory.Exists(DataPath)))
            throw new ConfigException(source, 0, DataPath is null ? $"data source {Data} needs a folder (--{Data.ToString().ToLowerInvariant()} DIR)" : $"{Data.ToString().ToLowerInvariant()} folder not found: {DataPath}");
        if (TextFeatures != BuiltinText && !File.Exists(TextFeatures))
            throw new ConfigException(source, 0, $"text features file not found: {TextFeatures}");
    }
}
