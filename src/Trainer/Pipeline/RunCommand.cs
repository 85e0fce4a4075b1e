using System.Diagnostics;
using System.Globalization;
using Tdsm.Data;
using Tdsm.Evaluation;
using Tdsm.Formats;
using Tdsm.Gpu;
using Tdsm.Model;
using Tdsm.StGcn;
using Tdsm.Text;
using Tdsm.Trainer.Configs;
using Tdsm.Trainer.Reporting;

namespace Tdsm.Trainer.Pipeline;

/// <summary>
/// `run` (also what `dotnet run --project src/Trainer` does with no arguments): the whole pipeline.
/// Synthetic data → class-prompt text features (MiniLM) → the Small ST-GCN trained on the seen
/// classes → frozen features → TDSM training → zero-shot evaluation on the unseen classes → the
/// direct-alignment baseline → report.json / report.md / plots / checkpoints in the run folder.
/// With --features (a SynSE folder) the encoder stages are skipped.
/// </summary>
public sealed class RunCommand : ICommand
{
    public string Name => "run";
    public string Summary => "the whole pipeline (default with no arguments): data, text, encoder, TDSM, zero-shot, baseline, report";
    public string Help => """
        usage: run [--preset default|ntu60-u5|ntu60-u12|ntu120-u10|ntu120-u24|ntu60-u20|ntu60-u30|ntu120-u40|ntu120-u60]
                   [--config FILE.yaml] [--features DIR] [--text-features FILE] [--out DIR]
                   [--seeds N] [--backend auto|cpu|gpu] [--iterations N] [--batch B] [--gzsl]
                   [--gzsl-calibration seen-fraction|pseudo-unseen]
                   [--skeletons DIR] [--encoder small|paper] [--model paper|paper-minilm|small|tiny]
                   [--samples-per-class N] [--frames T] [--encoder-epochs E]

        With no arguments (the default run): generates (or reuses) the synthetic 48-class NTU-format
        dataset under data/, encodes its class prompts with the built-in MiniLM, trains the Small
        ST-GCN on the 40 seen classes of split synth-u8 (40 sequences per class, T = 32, 10 epochs),
        extracts 128-d features, trains the Tiny TDSM DiT (hidden 64, depth 2) with the paper's loop
        (800 iterations of batch 64, lr 1e-3), scores the 8 unseen classes zero-shot (3 fixed noises,
        t = 25), trains and scores the direct-alignment baseline, and writes runs/default/:
        report.json, report.md, loss_curves.png, per_class_accuracy.png, confusion_matrix.png,
        baseline_confusion_matrix.png, encoder.safetensors, text_features.safetensors, features/
        (SynSE layout), tdsm/ (model.safetensors + optimizer.safetensors) and bundle/ (what
        Tdsm.Inference.ActionRecognizer.Load reads: model, encoder, MiniLM, class features).

          --preset NAME        default, or a paper setting (SynSE 55/5 = ntu60-u5, 48/12 = ntu60-u12,
                               110/10 = ntu120-u10, 96/24 = ntu120-u24; PURLS 40/20 = ntu60-u20,
                               30/30 = ntu60-u30, 80/40 = ntu120-u40, 60/60 = ntu120-u60); paper
                               settings need --features
          --config FILE.yaml   our run config or an official TDSM yaml (unknown keys are errors)
          --features DIR       SynSE / SA-DVAE feature folder (train.npy, ztest.npy, [gtest.npy], labels)
          --skeletons DIR      a folder of raw NTU .skeleton files: preprocessed (resumably) into
                               RUN/skeletons/ with the cross-subject split, the official missing-skeleton
                               samples skipped; the encoder trains on the seen classes of the training
                               subjects and features come from the test subjects (use with a paper preset,
                               e.g. --preset ntu60-u5 --skeletons /data/nturgbd_skeletons_s001_to_s017)
          --model NAME         DiT size (C_in and cond always come from the data): paper (768x12),
                               paper-minilm, small (128x4), tiny (64x2, the default run's)
          --encoder NAME       ST-GCN for skeleton runs: small (CPU minutes) or paper (10 layers, 256-d;
                               the default on the GPU)
          --frames T           frames per sequence (synthetic: 32; raw NTU: padded to T, e.g. 300)
          --text-features FILE (C, 36, D) class text features; default: encode the class prompts with MiniLM
          --seeds N            train and evaluate N times (seeds s, s+1, ...) and report mean ± std
          --gzsl               also evaluate generalised ZSL with calibrated stacking (γ from seen
                               validation samples only)
          --gzsl-calibration M seen-fraction (default: γ keeps 90 % of held-out seen samples predicted
                               seen) or pseudo-unseen (hold out some seen classes, retrain, pick the γ
                               that maximises H on them; one extra TDSM training); implies --gzsl
          --backend NAME       auto (gpu when a CUDA device exists, else cpu), cpu, gpu
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string dataRoot = Path.Combine(AppContext.BaseDirectory, "assets");
        string? configPath = args.Get("--config");
        string preset = args.Get("--preset") ?? "default";
        var cfg = configPath is not null ? RunConfigLoader.Load(configPath, dataRoot, stdout) : RunConfig.Preset(preset, dataRoot);
        if (args.Get("--features") is string f) cfg = cfg with { Data = DataSource.Features, DataPath = f };
        if (args.Get("--skeletons") is string sk) cfg = cfg with { Data = DataSource.Skeletons, DataPath = sk };
        if (args.Get("--text-features") is string tf) cfg = cfg with { TextFeatures = tf };
        if (args.Get("--out") is string o) cfg = cfg with { OutputDir = o };
        int seeds = args.GetInt("--seeds", cfg.Seeds.Count);
        if (seeds < 1) throw new CommandLineException($"--seeds must be at least 1, got {seeds}");
        if (seeds != cfg.Seeds.Count) cfg = cfg with { Seeds = Enumerable.Range(0, seeds).Select(i => cfg.Seeds[0] + (ulong)i).ToArray() };
        cfg = cfg with { Train = cfg.Train with { Iterations = args.GetInt("--iterations", cfg.Train.Iterations), Batch = args.GetInt("--batch", cfg.Train.Batch) } };
        if (args.Flag("--gzsl")) cfg = cfg with { Gzsl = cfg.Gzsl with { Enabled = true } };
        if (args.Get("--gzsl-calibration") is string cal)
            cfg = cfg with
            {
                Gzsl = cfg.Gzsl with
                {
                    Enabled = true,
                    Calibration = cal switch
                    {
                        "seen-fraction" => GzslCalibrationMode.SeenFraction,
                        "pseudo-unseen" => GzslCalibrationMode.PseudoUnseen,
                        _ => throw new CommandLineException($"--gzsl-calibration expects seen-fraction or pseudo-unseen, got '{cal}'"),
                    },
                },
            };
        string backend = args.Get("--backend") ?? "auto";
        string? encoderArg = args.Get("--encoder");
        // Raw NTU sequences are padded to 300 frames as in the GCN literature; synthetic ones are 32 long.
        int frames = args.GetInt("--frames", cfg.Data == DataSource.Skeletons ? 300 : SyntheticSettings.Default.Frames);
        var synth = new SyntheticSettings(args.GetInt("--samples-per-class", SyntheticSettings.Default.SamplesPerClass),
            frames, args.GetInt("--encoder-epochs", SyntheticSettings.Default.EncoderEpochs));
        if (args.Get("--model") is string model)
            cfg = cfg with { Dit = model == "tiny" ? DiTConfig.Tiny : TrainCommand.ModelPreset(model) };
        args.EnsureAllUsed();
        // Refused before any stage runs (and before an existing run folder is touched).
        if (synth.SamplesPerClass <= 0 || synth.Frames <= 0 || synth.EncoderEpochs <= 0)
            throw new CommandLineException($"--samples-per-class, --frames and --encoder-epochs must be positive, got {synth.SamplesPerClass}, {synth.Frames} and {synth.EncoderEpochs}");
        cfg.Train.Validated();
        cfg.CheckPaths(configPath ?? "--preset " + preset);
        if (backend == "auto") backend = GpuDevice.CudaAvailable() ? "gpu" : "cpu";
        Backends.Check(backend);
        // The paper's 10-layer ST-GCN on a GPU; the Small one (minutes on a CPU) otherwise.
        string encoder = encoderArg ?? (Backends.IsCuda(backend) ? "paper" : "small");
        if (encoder is not ("small" or "paper")) throw new CommandLineException($"--encoder expects small or paper, got '{encoder}'");
        return new Pipeline(cfg, synth, backend, encoder, stdout).Execute();
    }
}

/// <summary>The synthetic default's data and encoder sizes (chosen so the default run fits 10 minutes on 2 cores).</summary>
public sealed record SyntheticSettings(int SamplesPerClass, int Frames, int EncoderEpochs)
{
    public static SyntheticSettings Default => new(40, 32, 10);
}

/// <summary>One execution of a <see cref="RunConfig"/>; stages are timed and logged.</summary>
internal sealed class Pipeline(RunConfig cfg, SyntheticSettings synth, string backend, string encoder, TextWriter log)
{
    private readonly List<StageTime> _stages = [];
    private readonly List<string> _notes = [];

    private T Stage<T>(string name, Func<T> body)
    {
        log.WriteLine($"== {name}");
        var sw = Stopwatch.StartNew();
        var r = body();
        _stages.Add(new StageTime(name, sw.Elapsed.TotalSeconds));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   {name}: {sw.Elapsed.TotalSeconds:F1} s"));
        return r;
    }

    public int Execute()
    {
        var total = Stopwatch.StartNew();
        string runDir = cfg.OutputDir;
        Directory.CreateDirectory(runDir);
        var split = cfg.Split.Resolve();
        log.WriteLine($"run: {cfg.Split.Name} ({split.Seen.Length} seen / {split.Unseen.Length} unseen classes), backend {backend}, seeds {string.Join(",", cfg.Seeds)} -> {runDir}");

        SynseFeatures feats;
        IReadOnlyList<string> names;
        ClassTexts? texts = null;
        if (cfg.Data == DataSource.Synthetic)
        {
            var ds = Stage("synthetic data", () => LoadOrMakeSynthetic());
            texts = ds.Texts;
            names = ds.Texts.Labels;
            feats = Stage("encoder (ST-GCN on seen classes) + features", () => TrainEncoderAndExtract(ds, split, runDir));
        }
        else if (cfg.Data == DataSource.Features)
        {
            feats = Stage("load features", () => SynseFeatures.Load(cfg.DataPath!));
            names = ClassNames(cfg.Split.Dataset, out texts);
        }
        else
        {
            names = ClassNames(cfg.Split.Dataset, out texts);
            feats = Stage("NTU skeletons: preprocessing, encoder (ST-GCN on seen classes) + features", () => FromSkeletons(cfg.DataPath!, split, runDir));
        }

        var text = Stage("text features", () => LoadOrEncodeText(texts, names, runDir));
        if (text.Count != split.Seen.Length + split.Unseen.Length)
            throw new DataFormatException($"text features hold {text.Count} classes but split {cfg.Split.Name} has {split.Seen.Length + split.Unseen.Length}");
        feats.Validate(split, cfg.DataPath ?? Path.Combine(runDir, "features"));

        var dit = cfg.Dit with { InChannels = feats.Train.Dim, CondSize = text.Width };
        var results = new List<SeedResult>();
        Reporting.RunReport? first = null;
        ConfusionMatrix? tdsmConf = null, baseConf = null;
        IReadOnlyList<Tdsm.Training.LossPoint> curve = [];
        // One backend per seed: the GPU tier frees device memory only when its op set is released, and every
        // seed builds a new model, trainer and scorers.
        foreach (var seed in cfg.Seeds)
        {
            var ops = Backends.Create(backend);
            try
            {
                var train = cfg.Train with { Seed = seed };
                var trainSet = feats.Train;
                LabeledFeatures? validation = null;
                if (cfg.Gzsl.Enabled)
                    (trainSet, validation) = SeenValidation.HoldOut(feats.Train, cfg.Gzsl.ValidationFraction, seed);
                string tdsmDir = cfg.Seeds.Count == 1 ? Path.Combine(runDir, "tdsm") : Path.Combine(runDir, $"tdsm-seed{seed}");
                var r = Stage($"TDSM train + zero-shot (seed {seed})", () => TdsmStage.Run(ops, dit, train, trainSet, feats.ZTest, text, split, tdsmDir, log));
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   TDSM zero-shot top-1: {r.Top1:P2} (chance {1.0 / split.Unseen.Length:P2})"));

                var baseline = Stage($"baseline (seed {seed})", () => DirectAlignmentBaseline.Train(trainSet.Features, trainSet.Labels, split.Seen,
                    DirectAlignmentBaseline.GlobalRows(text, split.Seen), text.Width, cfg.Baseline with { Seed = seed }));
                var basePred = baseline.Predict(feats.ZTest.Features, split.Unseen, DirectAlignmentBaseline.GlobalRows(text, split.Unseen));
                double baseTop1 = Metrics.Top1(basePred, feats.ZTest.Labels);
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   baseline zero-shot top-1: {baseTop1:P2}"));

                GzslResult? gz = null, bgz = null;
                if (cfg.Gzsl.Enabled)
                    (gz, bgz) = Stage($"GZSL (seed {seed})", () => Gzsl(ops, r, baseline, trainSet, validation!, feats, text, split, dit, train));
                results.Add(new SeedResult(seed, r.Top1, baseTop1, gz, bgz));
                if (first is null)
                {
                    tdsmConf = Metrics.Confusion(r.Predictions, r.Truth, split.Unseen);
                    baseConf = Metrics.Confusion(basePred, feats.ZTest.Labels, split.Unseen);
                    curve = r.Curve;
                    first = new Reporting.RunReport(r.Top1, baseTop1, split.Unseen.Length, seed, ops.Name, _stages, new Dictionary<string, object?>());
                }
            }
            finally { Backends.Release(ops); }
        }

        if (cfg.Data == DataSource.Synthetic) Stage("bundle", () => WriteBundle(runDir, cfg.Seeds.Count == 1 ? "tdsm" : $"tdsm-seed{cfg.Seeds[0]}"));
        double totalSeconds = total.Elapsed.TotalSeconds;
        var report = first! with
        {
            Title = $"TDSM — {cfg.Split.Name}",
            Configs = new Dictionary<string, object?>
            {
                ["run"] = cfg.ToDictionary(),
                ["dit_effective"] = System.Text.Json.JsonDocument.Parse(dit.ToJson()).RootElement.Clone(),
                ["synthetic"] = cfg.Data == DataSource.Synthetic ? new Dictionary<string, object?>
                {
                    ["samples_per_class"] = synth.SamplesPerClass, ["frames"] = synth.Frames, ["encoder"] = "StGcnConfig.Small",
                    ["encoder_epochs"] = synth.EncoderEpochs, ["seen_test_fraction"] = 0.2,
                } : null,
            },
            UnseenClasses = split.Unseen,
            Seeds = results.Count > 1 ? results : null,
            Gzsl = results[0].Gzsl,
            BaselineGzsl = results[0].BaselineGzsl,
            Notes = _notes,
        };
        var written = ReportWriter.Write(runDir, report, curve, tdsmConf, baseConf, names);
        PrintSummary(report, results, split, totalSeconds);
        log.WriteLine($"wrote {string.Join(", ", written.Select(Path.GetFileName))} to {runDir}");
        return 0;
    }

    // The embedded library's bundle (README "Embedding"): the first seed's DiT, the encoder, MiniLM
    // and the classes' text features, so ActionRecognizer.Load(runs/default/bundle) works at once.
    private int WriteBundle(string runDir, string tdsmDir)
    {
        string[] args =
        [
            "--out", Path.Combine(runDir, "bundle"), "--model", Path.Combine(runDir, tdsmDir, Tdsm.Training.Checkpoint.ModelFile),
            "--encoder", Path.Combine(runDir, "encoder.safetensors"), "--classes", Path.Combine(runDir, "text_features.safetensors"),
        ];
        int code = new BundleCommand().Run(new CommandArgs("bundle", args), log, log);
        if (code != 0) throw new InvalidOperationException("writing the inference bundle failed (see above)");
        return code;
    }

    private SkeletonDataset LoadOrMakeSynthetic()
    {
        var sc = SynthConfig.Short with { Seed = 1, SamplesPerClass = synth.SamplesPerClass, Frames = synth.Frames };
        string dir = Path.Combine("data", $"synthetic-s{sc.Seed}-n{sc.SamplesPerClass}-t{sc.Frames}");
        if (!File.Exists(Path.Combine(dir, SyntheticDataset.MetaFile)))
        {
            var bar = new ProgressBar(log, "synth        ");
            SyntheticDataset.Write(dir, sc, (d, t) => bar.Report(d, t, "sequences"));
            bar.Done();
        }
        else log.WriteLine($"   reusing {dir}");
        return SkeletonDataset.Load(dir);
    }

    private SynseFeatures TrainEncoderAndExtract(SkeletonDataset ds, LabelSplit split, string runDir)
    {
        // Seen classes: every 5th sample of each class is held out as the seen test set (encoder
        // accuracy, GZSL); unseen classes are never shown to the encoder.
        int classes = ds.Texts.Count;
        var seen = split.Seen.ToHashSet();
        var trainIdx = new List<int>(); var seenTestIdx = new List<int>(); var unseenIdx = new List<int>();
        for (int i = 0; i < ds.Count; i++)
        {
            if (!seen.Contains(ds.Labels[i])) unseenIdx.Add(i);
            else if (i / classes % 5 == 4) seenTestIdx.Add(i);
            else trainIdx.Add(i);
        }
        var all = new ArraySamples(ds.X, ds.SampleSize);
        int[] testIdx = [.. seenTestIdx, .. unseenIdx];
        return EncodeAndExtract(new IndexedSamples(all, [.. trainIdx]), trainIdx.Select(i => ds.Labels[i]).ToArray(),
            new IndexedSamples(all, testIdx), testIdx.Select(i => ds.Labels[i]).ToArray(), split, ds.Frames, 2, runDir, "small");
    }

    // Raw NTU .skeleton folder → (resumable) preprocessing → the encoder on the seen classes of the
    // cross-subject training part → features (train: seen training samples; ztest / gtest: the
    // cross-subject test part). Arrays are read from disk by sample, so NTU-scale data fits.
    private SynseFeatures FromSkeletons(string rawDir, LabelSplit split, string runDir)
    {
        bool ntu120 = cfg.Split.Dataset == "ntu120";
        string conv = Path.Combine(runDir, "skeletons");
        var lists = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "assets", "ntu_raw"), "*missing_skeletons.txt");
        var bar = new ProgressBar(log, "ntu-preprocess");
        var r = NtuFolderConverter.Convert(rawDir, conv, new NtuConvertOptions(NtuBenchmark.CrossSubject, ntu120, synth.Frames, MissingLists: lists),
            (d, t) => bar.Report(d, t, "files"));
        bar.Done();
        log.WriteLine($"   cross-subject: {r.Train} training and {r.Val} test sequences, {r.SkippedMissing} skipped (missing skeletons), {r.ChunksReused} chunks reused");
        using var train = PretrainEncoderCommand.OpenSet(Path.Combine(conv, "train_data.npy"), Path.Combine(conv, "train_label.npy"), out var trainY, out int t, out int m);
        using var test = PretrainEncoderCommand.OpenSet(Path.Combine(conv, "val_data.npy"), Path.Combine(conv, "val_label.npy"), out var testY, out _, out _);
        return EncodeAndExtract(train, trainY, test, testY, split, t, m, runDir, encoder);
    }

    private SynseFeatures EncodeAndExtract(ISampleSource train, int[] trainY, ISampleSource test, int[] testY, LabelSplit split, int t, int m,
        string runDir, string encoderPreset)
    {
        var map = new SeenClassMap(split.Seen);
        var trSeen = Enumerable.Range(0, trainY.Length).Where(i => map.IsSeen(trainY[i])).ToArray();
        var teSeen = Enumerable.Range(0, testY.Length).Where(i => map.IsSeen(testY[i])).ToArray();
        var teUnseen = Enumerable.Range(0, testY.Length).Where(i => !map.IsSeen(testY[i])).ToArray();
        var trainSet = new IndexedSamples(train, trSeen);
        var trY = trSeen.Select(i => trainY[i]).ToArray();
        var encCfg = encoderPreset == "paper" ? StGcnConfig.Paper(split.Seen.Length) : StGcnConfig.Small(split.Seen.Length);
        // On the GPU backend the encoder trains device-resident too (same kernels as `pretrain-encoder --backend gpu`).
        using var device = Backends.IsCuda(backend) ? GpuDevice.OpenCuda() : null;
        using var gpuOps = device is null ? null : new Tdsm.Gpu.StGcn.StGcnGpuOps(device);
        var model = new StGcnModel(encCfg, (IStGcnOps?)gpuOps ?? new StGcnCpuOps(), (int)cfg.Seeds[0]);
        var opts = new StGcnTrainOptions { Epochs = synth.EncoderEpochs, BatchSize = 32, Seed = (int)cfg.Seeds[0] };
        log.WriteLine($"   {trY.Length} seen training sequences (T={t}), {teSeen.Length} seen test, {teUnseen.Length} unseen; {encoderPreset} ST-GCN, {opts.Epochs} epochs");
        var bar = new ProgressBar(log, "train ST-GCN ");
        StGcnTraining.Train(model, trainSet, trY.Select(map.ToLocal).ToArray(), t, m, opts, null,
            (step, totalSteps, loss) => bar.Report(step, totalSteps, string.Create(CultureInfo.InvariantCulture, $"epoch loss {loss:F4}")));
        bar.Done();
        StGcnCheckpoint.Save(Path.Combine(runDir, "encoder.safetensors"), model, Enumerable.Range(0, map.Count).Select(map.ToOriginal).ToArray());
        var seenTest = new IndexedSamples(test, teSeen);
        var stY = teSeen.Select(i => testY[i]).ToArray();
        var pred = StGcnTraining.Predict(model, seenTest, t, m).Select(map.ToOriginal).ToArray();
        double acc = Metrics.Top1(pred, stY);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   encoder seen-class test accuracy: {acc:P2} ({stY.Length} sequences)"));
        _notes.Add(string.Create(CultureInfo.InvariantCulture, $"ST-GCN encoder ({encoderPreset}) seen-class test accuracy: {acc:P2} on {stY.Length} held-out seen sequences"));

        LabeledFeatures Extract(ISampleSource x, int[] y) => new(StGcnTraining.ExtractFeatures(model, x, t, m), model.Config.FeatureDim, y);
        var trainF = Extract(trainSet, trY);
        var unY = teUnseen.Select(i => testY[i]).ToArray();
        var ztest = Extract(new IndexedSamples(test, teUnseen), unY);
        var seenTestF = Extract(seenTest, stY);
        var gtest = new LabeledFeatures([.. seenTestF.Features, .. ztest.Features], ztest.Dim, [.. stY, .. unY]);
        var feats = new SynseFeatures(trainF, ztest, gtest);
        feats.Save(Path.Combine(runDir, "features"));
        return feats;
    }

    private IReadOnlyList<string> ClassNames(string dataset, out ClassTexts? texts)
    {
        string lists = Path.Combine(AppContext.BaseDirectory, "assets", "class_lists");
        texts = dataset switch
        {
            "ntu60" or "ntu120" => ClassTexts.Load(Path.Combine(lists, dataset + ".csv"), Path.Combine(lists, dataset + "_llm.txt")),
            _ => null,
        };
        if (texts is not null) return texts.Labels;
        if (cfg.TextFeatures == RunConfig.BuiltinText) throw new CommandLineException($"no class prompts ship for dataset '{dataset}': pass --text-features");
        return [];
    }

    private ClassTextFeatures LoadOrEncodeText(ClassTexts? texts, IReadOnlyList<string> names, string runDir)
    {
        if (cfg.TextFeatures != RunConfig.BuiltinText) return ClassTextFeatures.Load(cfg.TextFeatures);
        string path = Path.Combine(runDir, "text_features.safetensors");
        var (weights, tokenizer) = MiniLm.LoadOrConvert(MiniLmPackage.DllPath(), MiniLm.DefaultCacheDir());
        var encoder = new ClassPromptEncoder(weights, tokenizer);
        var features = encoder.EncodeClasses(names, texts!.Labels, texts.Descriptions);
        features.Save(path);
        log.WriteLine($"   MiniLM: {features.Count} classes x (36, {features.Width}) -> {path}");
        return features;
    }

    private (GzslResult Tdsm, GzslResult Baseline) Gzsl(Tdsm.Ops.IOps ops, TdsmStageResult r, DirectAlignmentBaseline baseline,
        LabeledFeatures trainSet, LabeledFeatures validation, SynseFeatures feats, ClassTextFeatures text, LabelSplit split, DiTConfig dit, Tdsm.Training.TrainConfig train)
    {
        if (feats.GTest is null) throw new DataFormatException("GZSL needs gtest.npy / g_label.npy in the feature folder");
        int[] all = [.. split.Seen, .. split.Unseen];
        var seen = split.Seen.ToHashSet();
        var allText = DirectAlignmentBaseline.GlobalRows(text, all);
        double gamma, bgamma;
        if (cfg.Gzsl.Calibration == GzslCalibrationMode.PseudoUnseen)
            (gamma, bgamma) = PseudoUnseenCalibration.Gammas(ops, dit, train, cfg.Baseline with { Seed = train.Seed }, trainSet, validation, text, split, log);
        else
        {
            var valScores = TdsmStage.Score(ops, r.Model, validation, text, all, r.TestNoise, log, "gzsl val     ").Scores;
            gamma = GzslCalibration.BySeenFraction(valScores, all, seen, ScoreOrder.LowerIsBetter, cfg.Gzsl.KeepSeen);
            bgamma = GzslCalibration.BySeenFraction(baseline.Score(validation.Features, allText), all, seen, ScoreOrder.HigherIsBetter, cfg.Gzsl.KeepSeen);
        }
        var testScores = TdsmStage.Score(ops, r.Model, feats.GTest, text, all, r.TestNoise, log, "gzsl test    ").Scores;
        var tdsm = Tdsm.Evaluation.Gzsl.Evaluate(testScores, feats.GTest.Labels, all, seen, ScoreOrder.LowerIsBetter, gamma);
        var b = Tdsm.Evaluation.Gzsl.Evaluate(baseline.Score(feats.GTest.Features, allText), feats.GTest.Labels, all, seen, ScoreOrder.HigherIsBetter, bgamma);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   GZSL TDSM: seen {tdsm.SeenAccuracy:P1} unseen {tdsm.UnseenAccuracy:P1} H {tdsm.HarmonicMean:P1}; baseline: seen {b.SeenAccuracy:P1} unseen {b.UnseenAccuracy:P1} H {b.HarmonicMean:P1}"));
        return (tdsm, b);
    }

    private void PrintSummary(Reporting.RunReport report, List<SeedResult> results, LabelSplit split, double totalSeconds)
    {
        log.WriteLine();
        log.WriteLine($"| {report.Title,-40} | value |");
        log.WriteLine("|------------------------------------------|-------|");
        void Row(string k, string v) => log.WriteLine($"| {k,-40} | {v} |");
        var inv = CultureInfo.InvariantCulture;
        if (results.Count == 1)
        {
            Row("TDSM zero-shot top-1", report.ZslTop1.ToString("P2", inv));
            Row("baseline (direct alignment) top-1", report.BaselineTop1.ToString("P2", inv));
        }
        else
        {
            var t = MeanStd.Of(results.Select(x => x.ZslTop1)).Scale(100);
            var b = MeanStd.Of(results.Select(x => x.BaselineTop1)).Scale(100);
            Row($"TDSM zero-shot top-1 (mean ± std, {results.Count} seeds)", t.ToString("F2") + " %");
            Row($"baseline top-1 (mean ± std, {results.Count} seeds)", b.ToString("F2") + " %");
        }
        Row("chance", report.Chance.ToString("P2", inv));
        Row("unseen classes", split.Unseen.Length.ToString(inv));
        if (report.Gzsl is { } g) Row("GZSL TDSM seen / unseen / H", string.Create(inv, $"{g.SeenAccuracy:P1} / {g.UnseenAccuracy:P1} / {g.HarmonicMean:P1}"));
        if (report.BaselineGzsl is { } bg) Row("GZSL baseline seen / unseen / H", string.Create(inv, $"{bg.SeenAccuracy:P1} / {bg.UnseenAccuracy:P1} / {bg.HarmonicMean:P1}"));
        foreach (var s in _stages) Row($"seconds: {s.Name}", s.Seconds.ToString("F1", inv));
        Row("seconds: total", totalSeconds.ToString("F1", inv));
    }
}
