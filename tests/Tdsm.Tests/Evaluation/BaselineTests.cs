using Tdsm.Evaluation;
using Tdsm.Tensors;

namespace Tdsm.Tests.Evaluation;

public class BaselineTests
{
    private const int C = 24, D = 8, K = 14;

    // Text vectors are fixed; features are a fixed random linear image of the class's text vector plus noise, so a linear
    // projection can align them, for seen and unseen classes alike.
    private static (float[] Text, float[] X, int[] Y) Problem(ulong seed, int perClass, IReadOnlyList<int> classes)
    {
        var text = new float[K * D];
        new Rng(77).FillNormal(text);
        var a = new float[C * D];
        new Rng(99).FillNormal(a, 1 / Math.Sqrt(D));
        var dataRng = new Rng(seed + 1000);
        var x = new float[classes.Count * perClass * C];
        var y = new int[classes.Count * perClass];
        int row = 0;
        foreach (int cls in classes)
            for (int s = 0; s < perClass; s++, row++)
            {
                y[row] = cls;
                for (int i = 0; i < C; i++)
                {
                    double v = 0.3 * dataRng.NextNormal() + 2.0;
                    for (int j = 0; j < D; j++) v += a[i * D + j] * text[cls * D + j];
                    x[row * C + i] = (float)v;
                }
            }
        return (text, x, y);
    }

    private static float[] Rows(float[] text, IReadOnlyList<int> classes) =>
        [.. classes.SelectMany(c => text.AsSpan(c * D, D).ToArray())];

    [Test]
    public void LearnsASeparableProblemAndTransfersToUnseen()
    {
        // 12 seen classes span the 8-wide text space, so the map is pinned down for unseen classes too.
        int[] seen = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], unseen = [12, 13];
        var (text, x, y) = Problem(1, 20, seen);
        var model = DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, new BaselineConfig(Epochs: 40, Batch: 32, Lr: 3e-3, Seed: 3));
        Assert.That(model.EpochLoss[^1], Is.Not.NaN.And.LessThan(model.EpochLoss[0] * 0.5), "training loss should fall");

        var (_, xt, yt) = Problem(2, 20, seen);
        double seenAcc = Metrics.Top1(model.Predict(xt, seen, Rows(text, seen)), yt);
        var (_, xu, yu) = Problem(3, 50, unseen);
        double unseenAcc = Metrics.Top1(model.Predict(xu, unseen, Rows(text, unseen)), yu);
        TestContext.Out.WriteLine($"baseline seen acc {seenAcc:F3}, unseen (2-way) acc {unseenAcc:F3}, final loss {model.EpochLoss[^1]:F4}");
        Assert.That(seenAcc, Is.GreaterThan(0.95));
        Assert.That(unseenAcc, Is.GreaterThan(0.9));
    }

    [Test]
    public void GzslWithCalibrationFromSeenValidation()
    {
        int[] seen = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], unseen = [12, 13], all = [.. seen, .. unseen];
        var (text, x, y) = Problem(1, 20, seen);
        var model = DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, new BaselineConfig(Epochs: 40, Batch: 32, Lr: 3e-3, Seed: 3));
        var seenSet = seen.ToHashSet();
        var (_, xv, _) = Problem(7, 10, seen); // seen-class validation only
        double gamma = GzslCalibration.BySeenFraction(model.Score(xv, Rows(text, all)), all, seenSet, ScoreOrder.HigherIsBetter, 0.9);
        var (_, xs, ys) = Problem(8, 10, seen);
        var (_, xu, yu) = Problem(9, 60, unseen);
        var scores = model.Score([.. xs, .. xu], Rows(text, all));
        int[] labels = [.. ys, .. yu];
        var raw = Gzsl.Evaluate(scores, labels, all, seenSet, ScoreOrder.HigherIsBetter, 0);
        var cal = Gzsl.Evaluate(scores, labels, all, seenSet, ScoreOrder.HigherIsBetter, gamma);
        TestContext.Out.WriteLine($"γ={gamma:F4}: S {raw.SeenAccuracy:F3}->{cal.SeenAccuracy:F3}, U {raw.UnseenAccuracy:F3}->{cal.UnseenAccuracy:F3}, H {raw.HarmonicMean:F3}->{cal.HarmonicMean:F3}");
        Assert.That(cal.SeenAccuracy, Is.GreaterThan(0.8));
        Assert.That(cal.HarmonicMean, Is.GreaterThan(raw.HarmonicMean), "the seen bias of the raw scores should be corrected");
        Assert.That(cal.HarmonicMean, Is.GreaterThan(0.9));
    }

    [Test]
    public void SameSeedSameModelOtherSeedOtherModel()
    {
        int[] seen = [0, 1, 2, 3];
        var (text, x, y) = Problem(4, 10, seen);
        var cfg = new BaselineConfig(Epochs: 3, Batch: 8, Seed: 7);
        var a = DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, cfg);
        var b = DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, cfg);
        var c = DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, cfg with { Seed = 8 });
        Assert.That(b.Weight, Is.EqualTo(a.Weight));
        Assert.That(b.Bias, Is.EqualTo(a.Bias));
        Assert.That(c.Weight, Is.Not.EqualTo(a.Weight));
    }

    [Test]
    public void LearnedTemperatureMoves()
    {
        int[] seen = [0, 1, 2, 3];
        var (text, x, y) = Problem(5, 20, seen);
        var m = DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, new BaselineConfig(Epochs: 10, Batch: 16, Lr: 1e-2, LearnTemperature: true, Seed: 1));
        Assert.That(m.Temperature, Is.Not.EqualTo(0.1).Within(1e-3));
        Assert.That(m.Temperature, Is.InRange(0.01, 1.0));
        var fixedT = DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, new BaselineConfig(Epochs: 2, Seed: 1));
        Assert.That(fixedT.Temperature, Is.EqualTo(0.1).Within(1e-12));
    }

    [Test]
    public void RejectsLabelsOutsideTheSeenClasses()
    {
        int[] seen = [0, 1];
        var (text, x, y) = Problem(6, 3, [0, 1, 2]);
        var e = Assert.Throws<ArgumentException>(() => DirectAlignmentBaseline.Train(x, y, seen, Rows(text, seen), D, BaselineConfig.Default));
        Assert.That(e!.Message, Does.Contain("label 2"));
    }
}
