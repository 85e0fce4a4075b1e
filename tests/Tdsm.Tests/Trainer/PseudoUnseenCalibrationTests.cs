using Tdsm.Cpu;
using Tdsm.Data;
using Tdsm.Evaluation;
using Tdsm.Model;
using Tdsm.Tensors;
using Tdsm.Text;
using Tdsm.Trainer.Pipeline;
using Tdsm.Training;

namespace Tdsm.Tests.Trainer;

/// <summary>Pseudo-unseen GZSL calibration retrains on part of the seen classes and returns finite γ for TDSM and the baseline, without touching unseen classes.</summary>
public class PseudoUnseenCalibrationTests
{
    [Test]
    public void ProducesFiniteGammasFromSeenDataOnly()
    {
        var rng = new Rng(8);
        int classes = 6, dim = 8, width = 6;
        var centres = new float[classes * dim]; rng.FillNormal(centres, 2);
        LabeledFeatures Make(int[] cls, int per)
        {
            var y = cls.SelectMany(c => Enumerable.Repeat(c, per)).ToArray();
            var x = new float[y.Length * dim];
            for (int i = 0; i < y.Length; i++) for (int c = 0; c < dim; c++) x[i * dim + c] = centres[y[i] * dim + c] + 0.1f * (float)rng.NextNormal();
            return new LabeledFeatures(x, dim, y);
        }
        var split = new LabelSplit([0, 1, 2, 3], [4, 5]);
        var trainSet = Make([0, 1, 2, 3], 12);
        var validation = Make([0, 1, 2, 3], 4);
        var t = new float[classes * ClassTextFeatures.Rows * width]; rng.FillNormal(t);
        // The real unseen classes' text is 3e38 (finite, as ClassTextFeatures requires): any use of it (training, scoring,
        // calibration) overflows to infinities and makes γ non-finite.
        Array.Fill(t, 3e38f, 4 * ClassTextFeatures.Rows * width, 2 * ClassTextFeatures.Rows * width);
        var text = new ClassTextFeatures(Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray(), t, width);
        var log = new StringWriter();
        var (g, bg) = PseudoUnseenCalibration.Gammas(new CpuOps(), new DiTConfig(dim, width, 16, 1, 2), new TrainConfig(Iterations: 20, Batch: 8, Lr: 1e-3, Warmup: 2),
            BaselineConfig.Default with { Epochs = 5 }, trainSet, validation, text, split, log);
        Assert.That(double.IsFinite(g) && double.IsFinite(bg), Is.True, log.ToString());
        var heldOut = System.Text.RegularExpressions.Regex.Match(log.ToString(), @"pseudo-unseen calibration: 2 seen classes held out \((\d+),(\d+)\)");
        Assert.That(heldOut.Success, Is.True, log.ToString());
        int[] pseudo = [int.Parse(heldOut.Groups[1].Value), int.Parse(heldOut.Groups[2].Value)];
        Assert.That(pseudo, Is.Unique.And.All.InRange(0, 3), "the pseudo-unseen classes are 2 of the seen classes 0..3");
    }
}
