using System.Globalization;
using Tdsm.Data;
using Tdsm.Evaluation;
using Tdsm.Model;
using Tdsm.Ops;
using Tdsm.Text;
using Tdsm.Training;

namespace Tdsm.Trainer.Pipeline;

/// <summary>
/// GZSL calibration on a pseudo-unseen split (Chao et al.; seen data only): some seen classes are
/// held out as pseudo-unseen, TDSM and the baseline are trained again on the rest, and γ is the value
/// that maximises the harmonic mean on the held-out seen validation samples (which cover both the
/// remaining seen and the pseudo-unseen classes). The real unseen classes are never used.
/// </summary>
public static class PseudoUnseenCalibration
{
    /// <summary>(γ for TDSM errors, γ for baseline similarities); trains one extra TDSM and baseline.</summary>
    public static (double Tdsm, double Baseline) Gammas(IOps ops, DiTConfig dit, TrainConfig train, BaselineConfig baselineConfig,
        LabeledFeatures trainSet, LabeledFeatures validation, ClassTextFeatures text, LabelSplit split, TextWriter log)
    {
        int count = Math.Clamp(split.Unseen.Length, 1, split.Seen.Length - 1);
        var pseudo = SeenValidation.PseudoUnseenClasses(split.Seen, count, train.Seed).ToHashSet();
        var rest = split.Seen.Where(c => !pseudo.Contains(c)).ToArray();
        var pseudoSplit = new LabelSplit(rest, [.. pseudo.Order()]);
        var trainRest = trainSet.WhereLabel(c => !pseudo.Contains(c));
        log.WriteLine($"   pseudo-unseen calibration: {pseudo.Count} seen classes held out ({string.Join(",", pseudo.Order())}), retraining on {rest.Length}");
        var restSet = rest.ToHashSet();

        var r = TdsmStage.Run(ops, dit, train, trainRest, validation, text, pseudoSplit, checkpointDir: null, log);
        var scores = TdsmStage.Score(ops, r.Model, validation, text, split.Seen, r.TestNoise, log, "pseudo val   ").Scores;
        double gamma = GzslCalibration.ByHarmonicMean(scores, validation.Labels, split.Seen, restSet, ScoreOrder.LowerIsBetter);

        var b = DirectAlignmentBaseline.Train(trainRest.Features, trainRest.Labels, rest, DirectAlignmentBaseline.GlobalRows(text, rest), text.Width, baselineConfig);
        var bScores = b.Score(validation.Features, DirectAlignmentBaseline.GlobalRows(text, split.Seen));
        double bgamma = GzslCalibration.ByHarmonicMean(bScores, validation.Labels, split.Seen, restSet, ScoreOrder.HigherIsBetter);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   pseudo-unseen γ: TDSM {gamma:G4}, baseline {bgamma:G4}"));
        return (gamma, bgamma);
    }
}
