using Tdsm.Evaluation;

namespace Tdsm.Tests.Evaluation;

public class MetricsTests
{
    [Test]
    public void Top1CountsMatches()
    {
        Assert.That(Metrics.Top1([1, 2, 3, 3], [1, 2, 2, 3]), Is.EqualTo(0.75).Within(1e-12));
        Assert.Throws<ArgumentException>(() => Metrics.Top1([1], [1, 2]));
        Assert.Throws<ArgumentException>(() => Metrics.Top1([], []));
    }

    [Test]
    public void ConfusionRowsAreTrueClassesColumnsPredictions()
    {
        // classes 7, 3, 9; samples (true -> pred): 7->7, 7->3, 3->3, 3->3, 3->9.
        var cm = Metrics.Confusion([7, 3, 3, 3, 9], [7, 7, 3, 3, 3], [7, 3, 9]);
        Assert.Multiple(() =>
        {
            Assert.That(cm.Counts[0, 0], Is.EqualTo(1));
            Assert.That(cm.Counts[0, 1], Is.EqualTo(1));
            Assert.That(cm.Counts[1, 1], Is.EqualTo(2));
            Assert.That(cm.Counts[1, 2], Is.EqualTo(1));
            Assert.That(cm.Counts[2, 2], Is.EqualTo(0));
            Assert.That(cm.Total, Is.EqualTo(5));
            Assert.That(cm.Correct, Is.EqualTo(3));
            Assert.That(cm.Support, Is.EqualTo(new[] { 2, 3, 0 }));
        });
        var acc = cm.PerClassAccuracy();
        Assert.That(acc[0], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(acc[1], Is.EqualTo(2.0 / 3).Within(1e-12));
        Assert.That(double.IsNaN(acc[2]), Is.True, "a class without samples has no accuracy");
        Assert.That(cm.MeanPerClassAccuracy(), Is.EqualTo((0.5 + 2.0 / 3) / 2).Within(1e-12));
    }

    [Test]
    public void ConfusionRejectsUnknownClass()
    {
        var e = Assert.Throws<ArgumentException>(() => Metrics.Confusion([1, 5], [1, 1], [1, 2]));
        Assert.That(e!.Message, Does.Contain("prediction 5"));
        e = Assert.Throws<ArgumentException>(() => Metrics.Confusion([1, 1], [1, 4], [1, 2]));
        Assert.That(e!.Message, Does.Contain("label 4"));
    }

    [Test]
    public void MeanStdUsesSampleStd()
    {
        var m = MeanStd.Of([1, 2, 3, 4]);
        Assert.That(m.Mean, Is.EqualTo(2.5).Within(1e-12));
        Assert.That(m.Std, Is.EqualTo(Math.Sqrt(5.0 / 3)).Within(1e-12));
        Assert.That(m.Count, Is.EqualTo(4));
        Assert.That(MeanStd.Of([0.7]).Std, Is.EqualTo(0));
        Assert.That(MeanStd.Of([0.5, 0.7]).Scale(100).ToString("F1"), Is.EqualTo("60.0 ± 14.1"));
    }

    [Test]
    public void PredictFollowsScoreOrder()
    {
        var s = new double[,] { { 0.3, 0.1, 0.2 }, { 0.5, 0.9, 0.4 } };
        Assert.That(ScoreMatrix.Predict(s, [10, 11, 12], ScoreOrder.LowerIsBetter), Is.EqualTo(new[] { 11, 12 }));
        Assert.That(ScoreMatrix.Predict(s, [10, 11, 12], ScoreOrder.HigherIsBetter), Is.EqualTo(new[] { 10, 11 }));
        Assert.Throws<ArgumentException>(() => ScoreMatrix.Predict(s, [10, 11], ScoreOrder.LowerIsBetter));
    }
}
