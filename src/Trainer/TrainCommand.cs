using System.Globalization;
using System.Text.Json;
using Tdsm.Data;
using Tdsm.Model;
using Tdsm.Text;
using Tdsm.Trainer.Pipeline;
using Tdsm.Training;

namespace Tdsm.Trainer;

/// <summary>`train`: TDSM on a SynSE / SA-DVAE feature folder with precomputed class text features, then zero-shot evaluation.</summary>
public sealed class TrainCommand : ICommand
{
    public string Name => "train";
    public string Summary => "train TDSM on skeleton features + class text features, then evaluate zero-shot";
    public string Help => """
        usage: train --features DIR --text-features FILE --unseen FILE.npy --out RUN_DIR
                     [--model paper|paper-minilm|small] [--hidden H] [--depth D] [--heads N]
                     [--iterations N] [--batch B] [--lr X] [--warmup W] [--seed S]
                     [--checkpoint-every N] [--backend cpu|gpu|gpu-bf16|gpu-tf32|reference] [--resume]
                     [--log-every N] [--time-limit SECONDS]

        --features DIR        a SynSE / SA-DVAE folder: train.npy (N,C_in), train_label.npy, ztest.npy,
                              z_label.npy (labels = original 0-based class ids)
        --text-features FILE  class text features (C, 36, D) as .safetensors or .npy, row 35 global
                              (from `encode-text`, or CLIP features computed elsewhere)
        --unseen FILE.npy     the unseen class ids (e.g. ../shared/data/label_splits/ntu60/ru5.npy);
                              every other class of the text features is seen
        --out RUN_DIR         where checkpoints (model.safetensors, optimizer.safetensors), the loss
                              curve (loss.csv: step,lr,loss,diffusion,triplet,seconds) and report.json go
        --model NAME          DiT size preset (default paper: hidden 768, depth 12, heads 12); C_in and
                              cond are taken from the data; --hidden/--depth/--heads override
        --iterations ...      the official loop: 50000 iterations, batch 256, lr 1e-4, 100 warm-up steps
        --resume              continue from RUN_DIR's last checkpoint (bit-for-bit on the CPU tiers)
        --backend NAME        cpu (default), reference, gpu (CUDA, fp32), gpu-bf16 / gpu-tf32 (the GPU tier with
                              tensor-core GEMMs: bf16 / tf32 operands, fp32 accumulation and master weights)
        --log-every N         loss.csv gets every N-th step (default 100; 1 for `curves` comparisons)
        --time-limit SECONDS  stop training after this wall time (then evaluate as usual); report.json's
                              iterations_run says how far it got, ms_per_iteration excludes step 1

        Steps run in groups of 20 (the first alone: it compiles the GPU kernels) whose losses come back
        together, so the GPU never waits for the host; the time limit, the progress bar and loss.csv's
        seconds (when a step's loss came back) move by group.
        If the loss becomes NaN or infinite, training stops at that group with exit code 1: loss.csv
        ends at the bad step, no later checkpoint is written and nothing is evaluated.

        The paper setting, e.g. NTU-60 55/5 with SynSE features and CLIP text features:
          train --features synse/ntu60_55_5 --text-features clip_ntu60.safetensors
                --unseen ../shared/data/label_splits/ntu60/ru5.npy --out runs/ntu60-55-5 --backend gpu
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string featuresDir = args.Require("--features");
        string textPath = args.Require("--text-features");
        string unseenPath = args.Require("--unseen");
        string outDir = args.Require("--out");
        string preset = args.Get("--model") ?? "paper";
        int? hidden = args.GetIntOrNull("--hidden");
        int? depth = args.GetIntOrNull("--depth");
        int? heads = args.GetIntOrNull("--heads");
        var d = TrainConfig.Official;
        var train = new TrainConfig(args.GetInt("--iterations", d.Iterations), args.GetInt("--batch", d.Batch), args.GetDouble("--lr", d.Lr),
            args.GetInt("--warmup", d.Warmup), Seed: args.GetSeed("--seed", 0), CheckpointEvery: args.GetInt("--checkpoint-every", d.CheckpointEvery),
            LogEvery: args.GetInt("--log-every", d.LogEvery));
        double timeLimit = args.GetDouble("--time-limit", 0);
        if (timeLimit < 0) throw new CommandLineException($"--time-limit expects seconds >= 0, got {timeLimit}");
        string backend = args.Get("--backend") ?? "cpu";
        bool resume = args.Flag("--resume");
        args.EnsureAllUsed();

        var feats = SynseFeatures.Load(featuresDir);
        var text = ClassTextFeatures.Load(textPath);
        var split = LabelSplit.FromUnseen(LabelSplit.ReadIds(unseenPath), text.Count, $"{unseenPath} with {text.Count} classes from {textPath}");
        feats.Validate(split, featuresDir);
        if (feats.ZTest.Count == 0) throw new DataFormatException($"{Path.Combine(featuresDir, "ztest.npy")}: no test samples of the unseen classes to evaluate");
        var dit = ModelPreset(preset) with { InChannels = feats.Train.Dim, CondSize = text.Width };
        dit = dit with { Hidden = hidden ?? dit.Hidden, Depth = depth ?? dit.Depth, Heads = heads ?? dit.Heads };
        dit.Validated();
        stdout.WriteLine($"train: {feats.Train.Count} seen training samples ({split.Seen.Length} classes), {feats.ZTest.Count} unseen test samples ({split.Unseen.Length} classes)");
        stdout.WriteLine($"train: DiT {dit.Hidden}x{dit.Depth} heads {dit.Heads}, C_in {dit.InChannels}, cond {dit.CondSize}; {train.Iterations} iterations of batch {train.Batch}");

        var ops = Backends.Create(backend);
        try
        {
            Tdsm.Training.TdsmTrainer? resumed = null;
            if (resume)
            {
                var (cfg, flat, _) = Checkpoint.LoadModel(Path.Combine(outDir, Checkpoint.ModelFile));
                if (cfg != dit) throw new CommandLineException($"--resume: the checkpoint's config {cfg} differs from this command's {dit}");
                var table = new TextTable(ops, text.Data, text.Count, ClassTextFeatures.Rows, text.Width);
                resumed = TdsmStage.CreateTrainer(ops, dit, train, feats.Train, table, split.Seen);
                resumed.Model.LoadParameters(flat);
                Checkpoint.LoadOptimizer(Path.Combine(outDir, Checkpoint.OptimizerFile), resumed);
                if (resumed.Step >= train.Iterations)
                    throw new CommandLineException($"--resume: the checkpoint is at step {resumed.Step} and --iterations is {train.Iterations}: nothing left to train (raise --iterations, or use eval)");
                stdout.WriteLine($"train: resumed at step {resumed.Step}");
            }
            Directory.CreateDirectory(outDir);
            // A resumed run keeps the logged steps up to its checkpoint (its seconds column restarts at the resume).
            string lossCsv = Path.Combine(outDir, "loss.csv");
            var earlier = resumed is not null && File.Exists(lossCsv)
                ? File.ReadLines(lossCsv).Skip(1).Where(l => int.TryParse(l.AsSpan(0, Math.Max(0, l.IndexOf(',', StringComparison.Ordinal))), CultureInfo.InvariantCulture, out int step) && step <= resumed.Step).ToList()
                : [];
            void WriteLossCsv(IReadOnlyList<LossPoint> curve, IReadOnlyList<double> seconds) =>
                File.WriteAllLines(lossCsv, new[] { "step,lr,loss,diffusion,triplet,seconds" }.Concat(earlier).Concat(
                    curve.Select((p, i) => string.Create(CultureInfo.InvariantCulture, $"{p.Step},{p.LearningRate},{p.Loss},{p.Diffusion},{p.Triplet},{seconds[i]:F3}"))));
            TdsmStageResult r;
            try
            {
                r = TdsmStage.Run(ops, dit, train, feats.Train, feats.ZTest, text, split, outDir, stdout, resumed,
                    timeLimit > 0 ? TimeSpan.FromSeconds(timeLimit) : null);
            }
            catch (TrainingDivergedException e)
            {
                // The curve up to the bad step is what shows how it diverged: keep it.
                WriteLossCsv(e.Curve, e.CurveSeconds);
                stderr.WriteLine($"train: error: {e.Message} The loss curve up to step {e.At.Step} is in {Path.Combine(outDir, "loss.csv")}.");
                return 1;
            }
            WriteLossCsv(r.Curve, r.CurveSeconds);
            int ran = r.Curve.Count > 0 ? r.Curve[^1].Step : 0;
            // Steady-state time per iteration: from the first logged step (kernel compilation, first-touch) to the last.
            double msPerIteration = r.Curve.Count > 1
                ? (r.CurveSeconds[^1] - r.CurveSeconds[0]) * 1000 / (r.Curve[^1].Step - r.Curve[0].Step) : r.TrainSeconds * 1000 / Math.Max(1, ran);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"train: {ran} iterations in {r.TrainSeconds:F1} s, {msPerIteration:F1} ms/iteration (after step {(r.Curve.Count > 0 ? r.Curve[0].Step : 0)}) on '{ops.Name}'"));
            var report = new Dictionary<string, object>
            {
                ["zsl_top1"] = r.Top1, ["chance"] = 1.0 / split.Unseen.Length, ["num_unseen"] = split.Unseen.Length,
                ["seed"] = train.Seed, ["backend"] = ops.Name, ["train_seconds"] = r.TrainSeconds, ["eval_seconds"] = r.EvalSeconds,
                ["iterations_run"] = ran, ["ms_per_iteration"] = msPerIteration,
                ["dit_config"] = JsonDocument.Parse(dit.ToJson()).RootElement, ["train_config"] = JsonDocument.Parse(train.ToJson()).RootElement,
            };
            File.WriteAllText(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            stdout.WriteLine($"zero-shot top-1 on {split.Unseen.Length} unseen classes: {r.Top1:P2} (chance {1.0 / split.Unseen.Length:P2}); written to {outDir}");
            return 0;
        }
        finally { Backends.Release(ops); }
    }

    public static DiTConfig ModelPreset(string name) => name switch
    {
        "paper" => DiTConfig.Paper,
        "paper-minilm" => DiTConfig.PaperMiniLM,
        "small" => DiTConfig.Small,
        _ => throw new CommandLineException($"unknown model preset '{name}' (expected paper, paper-minilm or small)"),
    };
}
