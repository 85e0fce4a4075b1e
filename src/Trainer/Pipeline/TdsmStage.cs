using System.Diagnostics;
using System.Globalization;
using Tdsm.Data;
using Tdsm.Model;
using Tdsm.Ops;
using Tdsm.Text;
using Tdsm.Training;

namespace Tdsm.Trainer.Pipeline;

/// <summary>What one TDSM training + zero-shot evaluation produced.</summary>
public sealed record TdsmStageResult(
    DiT Model, float[] TestNoise, IReadOnlyList<LossPoint> Curve, double TrainSeconds, double EvalSeconds,
    double Top1, int[] Predictions, int[] Truth, int[] Candidates, double[,] Scores)
{
    /// <summary>
    /// Seconds since training started when each <see cref="Curve"/> point's loss came back (the end of
    /// its group of at most <see cref="TdsmStage.LossReadBackSteps"/> steps).
    /// </summary>
    public IReadOnlyList<double> CurveSeconds { get; init; } = [];
}

/// <summary>
/// Trains the TDSM DiT on seen-class features and scores the unseen test features against every
/// unseen class (TDSM_SPEC.md sections 4-5). Class ids are the original ones throughout; the text
/// table is indexed by them.
/// </summary>
public static class TdsmStage
{
    /// <summary>Training steps queued between two loss read-backs (and progress updates).</summary>
    public const int LossReadBackSteps = 20;

    public static TdsmStageResult Run(IOps ops, DiTConfig dit, TrainConfig train, LabeledFeatures trainSet, LabeledFeatures testSet,
        ClassTextFeatures text, LabelSplit split, string? checkpointDir, TextWriter log, TdsmTrainer? resumeFrom = null, TimeSpan? timeLimit = null)
    {
        if (trainSet.Dim != dit.InChannels) throw new ArgumentException($"training features are {trainSet.Dim}-d but the DiT expects C_in = {dit.InChannels}");
        if (text.Width * 1 != dit.CondSize) throw new ArgumentException($"text features are {text.Width}-d but the DiT expects cond = {dit.CondSize}");
        var seenSet = split.Seen.ToHashSet();
        foreach (var y in trainSet.Labels)
            if (!seenSet.Contains(y)) throw new ArgumentException($"training label {y} is not a seen class of the split");
        var table = new TextTable(ops, text.Data, text.Count, ClassTextFeatures.Rows, text.Width);

        var trainer = resumeFrom ?? CreateTrainer(ops, dit, train, trainSet, table, split.Seen);
        var model = trainer.Model;
        var noise = Checkpoint.DrawTestNoise(3, dit.InChannels, train.Seed);
        var curve = new List<LossPoint>();
        var curveSeconds = new List<double>();
        var bar = new ProgressBar(log, "train TDSM   ");
        var sw = Stopwatch.StartNew();
        double ema = double.NaN;
        // timeLimit stops the loop early (a time-boxed GPU visit); the lr schedule still assumes train.Iterations.
        bool timeUp = false, firstGroup = true;
        int? savedStep = resumeFrom?.Step; // a resumed run was loaded from a checkpoint of this step
        while (trainer.Step < train.Iterations && !timeUp)
        {
            // Steps run in groups that read their losses back once; a group ends at the next checkpoint.
            // The first group is one step: it carries the kernel compilation, timed on its own.
            int group = Math.Min(firstGroup ? 1 : LossReadBackSteps, train.Iterations - trainer.Step);
            if (checkpointDir is not null && train.CheckpointEvery > 0)
                group = Math.Min(group, train.CheckpointEvery - trainer.Step % train.CheckpointEvery);
            var points = trainer.TrainSteps(group);
            firstGroup = false;
            double seconds = sw.Elapsed.TotalSeconds;
            timeUp = timeLimit is { } limit && sw.Elapsed >= limit;
            foreach (var p in points)
            {
                if (!double.IsFinite(p.Loss))
                {
                    curve.Add(p);
                    curveSeconds.Add(seconds);
                    bar.Done();
                    throw new TrainingDivergedException(p, curve, curveSeconds, savedStep, checkpointDir);
                }
                ema = double.IsNaN(ema) ? p.Loss : 0.98 * ema + 0.02 * p.Loss;
                if (p.Step % train.LogEvery == 0 || p.Step == train.Iterations || p.Step == 1 || (timeUp && p.Step == points[^1].Step))
                {
                    curve.Add(p);
                    curveSeconds.Add(seconds);
                }
            }
            var last = points[^1];
            bar.Report(last.Step, train.Iterations, $"loss {ema:F4} (diff {last.Diffusion:F4}, td {last.Triplet:F4}) lr {last.LearningRate:0.0e+0}");
            if (checkpointDir is not null && train.CheckpointEvery > 0 && last.Step % train.CheckpointEvery == 0 && last.Step < train.Iterations)
            {
                SaveCheckpoint(checkpointDir, trainer, noise);
                savedStep = last.Step;
            }
        }
        bar.Done();
        double trainSeconds = sw.Elapsed.TotalSeconds;
        if (timeUp && trainer.Step < train.Iterations)
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"train: time limit of {timeLimit!.Value.TotalSeconds:F0} s reached after {trainer.Step} of {train.Iterations} iterations"));
        if (checkpointDir is not null) SaveCheckpoint(checkpointDir, trainer, noise);

        // Zero-shot: candidates are the unseen classes, in split order.
        sw.Restart();
        var candidates = split.Unseen;
        var scored = Score(ops, model, testSet, text, candidates, noise, log, "zero-shot    ");
        var scores = scored.Scores;
        var pred = scored.Predictions.Select(k => candidates[k]).ToArray();
        double top1 = testSet.Count == 0 ? 0 : pred.Where((p, i) => p == testSet.Labels[i]).Count() / (double)testSet.Count;
        return new TdsmStageResult(model, noise, curve, trainSeconds, sw.Elapsed.TotalSeconds, top1, pred, testSet.Labels, candidates, scores)
        {
            CurveSeconds = curveSeconds,
        };
    }

    /// <summary>Scores (N, K) of every sample against every candidate class (lower is better) and each sample's argmin.</summary>
    public static ZeroShotScores Score(IOps ops, DiT model, LabeledFeatures samples, ClassTextFeatures text, int[] candidates, float[] noise, TextWriter log, string label)
    {
        var cand = text.Select(candidates);
        var candTable = new TextTable(ops, cand.Data, cand.Count, ClassTextFeatures.Rows, cand.Width);
        var scorer = new ZeroShotScorer(model, chunkRows: Math.Min(1024, Math.Max(1, samples.Count * candidates.Length)));
        var bar = new ProgressBar(log, label);
        long rows = (long)samples.Count * candidates.Length;
        var scores = scorer.Score(samples.Features, samples.Count, candTable, noise, new SyncProgress(f => bar.Report((long)(f * rows), rows, "rows (sample x class)")));
        bar.Done();
        return scores;
    }

    /// <summary>Reports on the caller's thread (System.Progress would post to the thread pool and reorder the output).</summary>
    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }

    public static TdsmTrainer CreateTrainer(IOps ops, DiTConfig dit, TrainConfig train, LabeledFeatures trainSet, TextTable table, int[] seen)
    {
        var model = new DiT(dit, ops);
        model.InitializeOfficial(train.Seed);
        return new TdsmTrainer(model, train, trainSet.Features, trainSet.Labels, table, seen);
    }

    public static void SaveCheckpoint(string dir, TdsmTrainer trainer, float[] noise)
    {
        Directory.CreateDirectory(dir);
        Checkpoint.SaveModel(Path.Combine(dir, Checkpoint.ModelFile), trainer.Model, noise,
            new Dictionary<string, string> { ["train_config"] = trainer.Config.ToJson(), ["step"] = trainer.Step.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        Checkpoint.SaveOptimizer(Path.Combine(dir, Checkpoint.OptimizerFile), trainer);
    }
}
