using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Tdsm.Data;
using Tdsm.Evaluation;
using Tdsm.Formats;
using Tdsm.Inference;
using Tdsm.Model;
using Tdsm.Text;
using Tdsm.Trainer.Pipeline;
using Tdsm.Training;

namespace Tdsm.Trainer;

/// <summary>`eval`: zero-shot evaluation of a trained checkpoint, optionally compared across tiers or with the embedded library.</summary>
public sealed class EvalCommand : ICommand
{
    public string Name => "eval";
    public string Summary => "zero-shot top-1 of a trained TDSM checkpoint; --compare checks another tier or the embedded library";
    public string Help => """
        usage: eval --run RUN_DIR [--backend cpu|reference|gpu|gpu-bf16|gpu-tf32] [--compare reference|cpu|gpu|gpu-bf16|gpu-tf32|library] [--limit N]
                    [--noises N [--noise-seed S]] [--classes unseen|seen] [--per-class]
                    [--scores FILE.npy]
               eval --model MODEL.safetensors --features DIR --text-features FILE --unseen FILE.npy [...]

          --run RUN_DIR     a folder written by `run`: tdsm/model.safetensors, features/, text_features.safetensors
                            and the unseen classes from report.json
          --model ...       or name the pieces; --model also accepts an official TDSM model.safetensors
                            (accelerate output, no metadata) with --preset paper|paper-minilm
          --compare WHAT    score the same samples a second way and report every argmin that differs,
                            with its score margins: another tier, or `library` = Tdsm.Inference.ActionRecognizer.
                            Exit 1 when a prediction differs other than by a tie (the two classes within
                            relative 1e-5 of each other under either scoring)
          --backend NAME    cpu (default), reference, gpu (fp32), gpu-bf16 / gpu-tf32 (tensor-core GEMMs);
                            e.g. --backend gpu --compare gpu-bf16 lists the predictions bf16 changes
          --limit N         only the first N test samples (the reference tier is slow)
          --noises N        score with N noises drawn from --noise-seed (default 0) instead of the checkpoint's:
                            an analysis option (how much of a result is the noise estimate), not the paper's protocol
          --classes seen    score the seen classes' test samples (gtest.npy) against the seen classes instead:
                            how well the model separates the conditions it was trained on, for comparison
          --per-class       also print each class's accuracy and the class it is most often mistaken for
          --scores FILE.npy write the score matrix (samples, classes) as float64: the denoising error of each test
                            sample under each candidate class (lower = more likely), columns in the order of the
                            class ids as the split file lists them (printed), rows in the order of ztest.npy
                            (of gtest.npy's seen rows with --classes seen)

        Scoring: 3 fixed noises stored in the checkpoint, t = t_test (25), argmin over the unseen classes.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string? run = args.Get("--run");
        string model = args.Get("--model") ?? (run is null ? throw new CommandLineException("give --run or --model") : RunModel(run));
        string featuresDir = args.Get("--features") ?? (run is null ? throw new CommandLineException("--features is required without --run") : Path.Combine(run, "features"));
        string textPath = args.Get("--text-features") ?? (run is null ? throw new CommandLineException("--text-features is required without --run") : Path.Combine(run, "text_features.safetensors"));
        string? unseenPath = args.Get("--unseen");
        string? preset = args.Get("--preset");
        string backend = args.Get("--backend") ?? "cpu";
        string? compare = args.Get("--compare");
        int limit = args.GetInt("--limit", int.MaxValue);
        if (limit < 1) throw new CommandLineException($"--limit must be a positive number of samples, got {limit}");
        int? noises = args.GetIntOrNull("--noises");
        ulong noiseSeed = args.GetSeed("--noise-seed", 0);
        if (noises is <= 0) throw new CommandLineException($"--noises must be a positive count, got {noises}");
        if (noises is null && args.Get("--noise-seed") is not null) throw new CommandLineException("--noise-seed needs --noises");
        string classes = args.Get("--classes") ?? "unseen";
        if (classes is not ("unseen" or "seen")) throw new CommandLineException($"--classes must be unseen or seen, got '{classes}'");
        bool perClass = args.Flag("--per-class");
        string? scoresPath = args.Get("--scores");
        args.EnsureAllUsed();
        Backends.Check(backend);
        if (compare is not null && compare != "library") Backends.Check(compare, "--compare");

        var text = ClassTextFeatures.Load(textPath);
        int[] unseen = unseenPath is not null ? LabelSplit.ReadIds(unseenPath)
            : run is not null ? ReadUnseen(Path.Combine(run, "report.json"))
            : throw new CommandLineException("--unseen is required without --run");
        var split = LabelSplit.FromUnseen(unseen, text.Count, unseenPath ?? run!);
        var feats = SynseFeatures.Load(featuresDir);
        int[] candidates = classes == "seen" ? split.Seen : split.Unseen;
        // A test sample of a class that is not a candidate could only ever be wrong (train refuses the same mismatch).
        feats.ValidateZTest(split, featuresDir, unseenPath ?? Path.Combine(run!, "report.json"));
        var test = classes == "unseen" ? feats.ZTest
            : (feats.GTest ?? throw new CommandLineException($"--classes seen needs {Path.Combine(featuresDir, "gtest.npy")} (the all-class test set), which is missing"))
                .WhereLabel(split.Seen.Contains);
        if (test.Count == 0) throw new CommandLineException($"{featuresDir}: no test samples of the {classes} classes");
        if (limit < test.Count) test = test.Rows([.. Enumerable.Range(0, limit)]);
        var fallback = preset is null ? null : TrainCommand.ModelPreset(preset) with { InChannels = test.Dim, CondSize = text.Width };
        var (cfg, flat, noise) = Checkpoint.LoadModel(model, fallback);
        // --noises replaces the checkpoint's noises; a checkpoint without any (an official one) gets the 3 of seed 0.
        string noiseSource = "from the checkpoint";
        if (noises is not null || noise is null)
        {
            ulong seed = noises is null ? 0 : noiseSeed;
            noise = Checkpoint.DrawTestNoise(noises ?? 3, cfg.InChannels, seed);
            noiseSource = $"drawn with seed {seed}";
        }

        var (scores, first) = Score(backend, cfg, flat, noise, test, text, candidates, stdout);
        var pred = ScoreMatrix.Predict(scores, candidates, ScoreOrder.LowerIsBetter);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"eval: {first}: {(classes == "unseen" ? "zero-shot " : "")}top-1 {Metrics.Top1(pred, test.Labels):P2} on {test.Count} samples of {candidates.Length} {classes} classes (chance {1.0 / candidates.Length:P2}); {noise.Length / cfg.InChannels} noises {noiseSource}"));
        if (scoresPath is not null)
        {
            Npy.Write(scoresPath, [scores.GetLength(0), scores.GetLength(1)], MemoryMarshal.CreateReadOnlySpan(ref scores[0, 0], scores.Length));
            stdout.WriteLine($"eval: wrote the ({scores.GetLength(0)}, {scores.GetLength(1)}) scores of classes {string.Join(",", candidates)} to {scoresPath}");
        }
        if (perClass) WritePerClass(Metrics.Confusion(pred, test.Labels, candidates), text.Names, stdout);
        if (compare is null) return 0;

        var (other, second) = Score(compare, cfg, flat, noise, test, text, candidates, stdout);
        // A differing argmin whose two classes score within float32 noise of each other (relative
        // 1e-5 under either scoring) is a tie, not a disagreement.
        const double tieTolerance = 1e-5;
        var agreement = PredictionAgreement.Compare(scores, other);
        int differ = 0, ties = 0;
        foreach (var d in agreement.Differences)
        {
            bool tie = d.IsTie(tieTolerance);
            if (tie) ties++; else differ++;
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  sample {d.Sample}: {first} predicts {candidates[d.ReferenceChoice]}, {second} predicts {candidates[d.OtherChoice]}; score margin between the two: {d.ReferenceMargin:e3} ({first}), {d.OtherMargin:e3} ({second}){(tie ? " — a tie" : "")}"));
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"eval: {second} vs {first}: {differ + ties} of {test.Count} predictions differ ({ties} of them ties within relative {tieTolerance:0e0}); largest relative score difference {agreement.MaxRelativeScoreError:e3}"));
        return differ == 0 ? 0 : 1;
    }

    private static (double[,] Scores, string Name) Score(string how, DiTConfig cfg, float[] flat, float[] noise, LabeledFeatures test, ClassTextFeatures text,
        int[] classes, TextWriter log)
    {
        if (how == "library")
        {
            var recognizer = ActionRecognizer.FromParameters(cfg, flat, noise);
            var candidates = recognizer.CreateCandidates(text.Select(classes));
            var scores = new double[test.Count, classes.Length];
            var ranked = new ClassScore[classes.Length];
            for (int i = 0; i < test.Count; i++)
            {
                recognizer.Classify(test.Features.AsSpan(i * test.Dim, test.Dim), candidates, ranked);
                foreach (var s in ranked) scores[i, s.Index] = s.Error;
            }
            return (scores, "library");
        }
        var ops = Backends.Create(how);
        try
        {
            var dit = new DiT(cfg, ops);
            dit.LoadParameters(flat);
            return (TdsmStage.Score(ops, dit, test, text, classes, noise, log, $"{how,-13}").Scores, ops.Name);
        }
        finally { Backends.Release(ops); }
    }

    // One line per class: accuracy, and the class its samples most often go to instead.
    private static void WritePerClass(ConfusionMatrix confusion, IReadOnlyList<string> names, TextWriter stdout)
    {
        var accuracy = confusion.PerClassAccuracy();
        var support = confusion.Support;
        int k = confusion.Classes.Count;
        for (int t = 0; t < k; t++)
        {
            int c = confusion.Classes[t];
            int worst = -1; // the other class with the most of this class's samples, if any
            for (int p = 0; p < k; p++)
                if (p != t && confusion.Counts[t, p] > 0 && (worst < 0 || confusion.Counts[t, p] > confusion.Counts[t, worst])) worst = p;
            string mistaken = worst < 0 ? ""
                : $"; most often mistaken for {confusion.Classes[worst]} '{names[confusion.Classes[worst]]}' ({confusion.Counts[t, worst]})";
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  class {c} '{names[c]}': {confusion.Counts[t, t]}/{support[t]} ({accuracy[t]:P2}){mistaken}"));
        }
    }

    // A run folder's checkpoint: tdsm/, or the first seed's tdsm-seedN/ of a multi-seed run. The run's report.json says
    // which (a folder run again with another seed count still holds the earlier run's folders).
    private static string RunModel(string run)
    {
        string single = Path.Combine(run, "tdsm", Checkpoint.ModelFile);
        string report = Path.Combine(run, "report.json");
        if (File.Exists(report))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(report));
                var r = doc.RootElement;
                if (r.ValueKind == JsonValueKind.Object && r.TryGetProperty("seeds", out var seeds) && seeds.ValueKind == JsonValueKind.Array && seeds.GetArrayLength() > 1
                    && seeds[0].TryGetProperty("seed", out var first) && first.TryGetUInt64(out ulong seed))
                    return Path.Combine(run, $"tdsm-seed{seed.ToString(CultureInfo.InvariantCulture)}", Checkpoint.ModelFile);
                return single;
            }
            catch (JsonException) { } // ReadUnseen reports a malformed report
        }
        if (File.Exists(single) || !Directory.Exists(run)) return single;
        var seeded = Directory.GetDirectories(run, "tdsm-seed*").Order(StringComparer.Ordinal).FirstOrDefault();
        return seeded is null ? single : Path.Combine(seeded, Checkpoint.ModelFile);
    }

    /// <summary>The unseen class ids a run's report.json lists (eval and export of a run folder).</summary>
    internal static int[] ReadUnseen(string reportPath)
    {
        if (!File.Exists(reportPath)) throw new FileNotFoundException($"{reportPath} not found: pass --unseen FILE.npy");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(reportPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("unseen_classes", out var u))
                throw new Tdsm.Data.DataFormatException($"{reportPath}: no 'unseen_classes'");
            if (u.ValueKind != JsonValueKind.Array) throw new Tdsm.Data.DataFormatException($"{reportPath}: 'unseen_classes' is not a list of class ids");
            return u.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id) && id >= 0 ? id
                : throw new Tdsm.Data.DataFormatException($"{reportPath}: 'unseen_classes' holds {e.GetRawText()}, not a class id")).ToArray();
        }
        catch (JsonException e) { throw new Tdsm.Data.DataFormatException($"{reportPath}: not valid JSON ({e.Message})", e); }
    }
}
