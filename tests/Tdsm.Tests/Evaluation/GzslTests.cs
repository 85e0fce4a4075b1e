using Tdsm.Evaluation;
using Tdsm.Tensors;

namespace Tdsm.Tests.Evaluation;

public class GzslTests
{
    // Candidates 0, 1 seen, 2 unseen; scores are errors (lower is better).
    private static readonly int[] Candidates = [0, 1, 2];
    private static readonly HashSet<int> Seen = [0, 1];
    private static readonly double[,] Errors =
    {
        { 1.0, 2.0, 1.5 }, // label 0: seen margin 0.5 -> seen 0 until γ >= 0.5
        { 3.0, 1.0, 1.2 }, // label 1: margin 0.2
        { 1.0, 2.0, 1.1 }, // label 2: margin 0.1 -> unseen once γ >= 0.1
        { 2.0, 2.5, 2.8 }, // label 2: margin 0.8
    };
    private static readonly int[] Labels = [0, 1, 2, 2];

    [Test]
    public void CalibratedStackingByHand()
    {
        var r0 = Gzsl.Evaluate(Errors, Labels, Candidates, Seen, ScoreOrder.LowerIsBetter, 0);
        Assert.Multiple(() =>
        {
            Assert.That(r0.SeenAccuracy, Is.EqualTo(1.0));
            Assert.That(r0.UnseenAccuracy, Is.EqualTo(0.0));
            Assert.That(r0.HarmonicMean, Is.EqualTo(0.0));
            Assert.That(r0.SeenSamples, Is.EqualTo(2));
            Assert.That(r0.UnseenSamples, Is.EqualTo(2));
        });
        // γ = 0.3: sample 1 (margin 0.2) flips to unseen (wrong), sample 2 (0.1) flips (right).
        Assert.That(Gzsl.Predict(Errors, Candidates, Seen, ScoreOrder.LowerIsBetter, 0.3), Is.EqualTo(new[] { 0, 2, 2, 0 }));
        var r = Gzsl.Evaluate(Errors, Labels, Candidates, Seen, ScoreOrder.LowerIsBetter, 0.3);
        Assert.That(r.SeenAccuracy, Is.EqualTo(0.5));
        Assert.That(r.UnseenAccuracy, Is.EqualTo(0.5));
        Assert.That(r.HarmonicMean, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(Gzsl.HarmonicMean(0.6, 0.3), Is.EqualTo(0.4).Within(1e-12));
    }

    [Test]
    public void PositiveGammaPenalisesSeenInBothOrders()
    {
        var neg = new double[4, 3];
        for (int i = 0; i < 4; i++) for (int j = 0; j < 3; j++) neg[i, j] = -Errors[i, j];
        foreach (double g in new[] { -1.0, 0, 0.15, 0.3, 0.6, 1 })
            Assert.That(Gzsl.Predict(neg, Candidates, Seen, ScoreOrder.HigherIsBetter, g),
                Is.EqualTo(Gzsl.Predict(Errors, Candidates, Seen, ScoreOrder.LowerIsBetter, g)), $"γ={g}");
        var (margin, _, _) = Gzsl.Margins(Errors, Candidates, Seen, ScoreOrder.LowerIsBetter);
        Assert.That(margin, Is.EqualTo(new[] { 0.5, 0.2, 0.1, 0.8 }).Within(1e-12));
    }

    [Test]
    public void SeenFractionKeepsTheTargetShareOfSeenSamples()
    {
        var rng = new Rng(5);
        var s = RandomScores(rng, 200, 8);
        var candidates = Enumerable.Range(0, 8).ToArray();
        var seen = new HashSet<int> { 0, 1, 2, 3, 4 };
        foreach (double q in new[] { 1.0, 0.9, 0.5 })
        {
            double g = GzslCalibration.BySeenFraction(s, candidates, seen, ScoreOrder.LowerIsBetter, q);
            var pred = Gzsl.Predict(s, candidates, seen, ScoreOrder.LowerIsBetter, g);
            double kept = pred.Count(seen.Contains) / 200.0;
            Assert.That(kept, Is.EqualTo(Math.Ceiling(q * 200) / 200).Within(1e-12), $"q={q}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => GzslCalibration.BySeenFraction(s, candidates, seen, ScoreOrder.LowerIsBetter, 0));
    }

    [Test]
    public void HarmonicMeanCriterionFindsTheGridOptimum()
    {
        var rng = new Rng(11);
        int n = 300, k = 6;
        var s = RandomScores(rng, n, k);
        var labels = new int[n];
        var candidates = Enumerable.Range(0, k).ToArray();
        var seen = new HashSet<int> { 0, 1, 2, 3 };
        for (int i = 0; i < n; i++)
        {
            labels[i] = rng.NextInt(k);
            s[i, labels[i]] -= 0.4; // the right class tends to have a lower error
            if (seen.Contains(labels[i])) continue;
            for (int c = 0; c < 4; c++) s[i, c] -= 0.3; // and seen classes are favoured (the bias GZSL calibrates)
        }
        double g = GzslCalibration.ByHarmonicMean(s, labels, candidates, seen, ScoreOrder.LowerIsBetter);
        double h = Gzsl.Evaluate(s, labels, candidates, seen, ScoreOrder.LowerIsBetter, g).HarmonicMean;
        double gridBest = 0;
        for (double x = -2; x <= 2; x += 0.001)
            gridBest = Math.Max(gridBest, Gzsl.Evaluate(s, labels, candidates, seen, ScoreOrder.LowerIsBetter, x).HarmonicMean);
        double uncalibrated = Gzsl.Evaluate(s, labels, candidates, seen, ScoreOrder.LowerIsBetter, 0).HarmonicMean;
        Assert.That(h, Is.GreaterThanOrEqualTo(gridBest - 1e-12));
        Assert.That(h, Is.GreaterThan(uncalibrated + 0.05), "calibration should help on seen-biased scores");
        Assert.That(g, Is.GreaterThan(0), "seen-biased errors need a positive γ");
    }

    [Test]
    public void NeedsSeenAndUnseen()
    {
        Assert.Throws<ArgumentException>(() => Gzsl.Evaluate(Errors, Labels, Candidates, new HashSet<int> { 0, 1, 2 }, ScoreOrder.LowerIsBetter, 0));
        Assert.Throws<ArgumentException>(() => Gzsl.Evaluate(Errors, [0, 1, 1, 0], Candidates, Seen, ScoreOrder.LowerIsBetter, 0));
    }

    private static double[,] RandomScores(Rng rng, int n, int k)
    {
        var s = new double[n, k];
        for (int i = 0; i < n; i++) for (int j = 0; j < k; j++) s[i, j] = 1 + 0.3 * rng.NextNormal();
        return s;
    }
}

public class SeenValidationTests
{
    [Test]
    public void HoldOutIsStratifiedSeededAndComplete()
    {
        int dim = 3;
        var labels = Enumerable.Range(0, 50).Select(i => i < 30 ? 4 : 9).Append(12).ToArray(); // 30 of class 4, 20 of 9, 1 of 12
        var x = Enumerable.Range(0, labels.Length * dim).Select(i => (float)i).ToArray();
        var data = new Tdsm.Data.LabeledFeatures(x, dim, labels);
        var (train, val) = SeenValidation.HoldOut(data, 0.1, seed: 3);
        Assert.That(val.Labels.Count(l => l == 4), Is.EqualTo(3));
        Assert.That(val.Labels.Count(l => l == 9), Is.EqualTo(2));
        Assert.That(val.Labels.Count(l => l == 12), Is.EqualTo(0), "a class with one sample stays in training");
        Assert.That(train.Count + val.Count, Is.EqualTo(data.Count));
        // Every row lands in exactly one part, with its own features.
        var firsts = train.Features.Where((_, i) => i % dim == 0).Concat(val.Features.Where((_, i) => i % dim == 0)).Order().ToArray();
        Assert.That(firsts, Is.EqualTo(Enumerable.Range(0, labels.Length).Select(i => (float)(i * dim))));
        var again = SeenValidation.HoldOut(data, 0.1, seed: 3).Validation;
        var other = SeenValidation.HoldOut(data, 0.1, seed: 4).Validation;
        Assert.That(again.Features, Is.EqualTo(val.Features));
        Assert.That(other.Features, Is.Not.EqualTo(val.Features));
    }

    [Test]
    public void PseudoUnseenIsASeededSubsetOfSeen()
    {
        int[] seen = [1, 3, 5, 7, 9, 11, 13];
        var a = SeenValidation.PseudoUnseenClasses(seen, 2, 1);
        Assert.That(a, Has.Length.EqualTo(2));
        Assert.That(seen, Is.SupersetOf(a));
        Assert.That(SeenValidation.PseudoUnseenClasses(seen, 2, 1), Is.EqualTo(a));
        Assert.Throws<ArgumentOutOfRangeException>(() => SeenValidation.PseudoUnseenClasses(seen, 7, 1));
    }
}
