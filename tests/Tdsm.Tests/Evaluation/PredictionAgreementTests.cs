using Tdsm.Evaluation;

namespace Tdsm.Tests.Evaluation;

public class PredictionAgreementTests
{
    [Test]
    public void ReportsTheFlippedSamplesWithTheirMargins()
    {
        var reference = new double[,] { { 1.0, 2.0, 3.0 }, { 5.0, 4.0, 4.01 }, { 0.5, 0.7, 0.9 } };
        var other = new double[,] { { 1.0, 2.0, 3.0 }, { 5.0, 4.02, 4.0 }, { 0.5, 0.7, 0.9 } };
        var report = PredictionAgreement.Compare(reference, other);
        Assert.That(report.Differences, Has.Count.EqualTo(1));
        var d = report.Differences[0];
        Assert.Multiple(() =>
        {
            Assert.That((d.Sample, d.ReferenceChoice, d.OtherChoice), Is.EqualTo((1, 1, 2)));
            Assert.That(d.ReferenceMargin, Is.EqualTo(0.01).Within(1e-12));
            Assert.That(d.OtherMargin, Is.EqualTo(0.02).Within(1e-12));
            Assert.That(d.RelativeMargin, Is.EqualTo(0.01 / 4.0).Within(1e-12));
            Assert.That(report.Agreement, Is.EqualTo(2.0 / 3).Within(1e-12));
            Assert.That(report.MaxRelativeScoreError, Is.EqualTo(0.02 / 4.0).Within(1e-12));
            Assert.That(report.Lines().First(), Does.Contain("2/3 identical"));
            Assert.That(d.OtherRelativeMargin, Is.EqualTo(0.02 / 4.0).Within(1e-12));
            Assert.That(d.IsTie(1e-2), Is.True, "0.25% apart: a tie at 1%");
            Assert.That(d.IsTie(1e-5), Is.False, "not at 1e-5");
        });
    }

    [Test]
    public void IdenticalScoresAgreeFully()
    {
        var s = new double[,] { { 3, 1 }, { 2, 9 } };
        var report = PredictionAgreement.Compare(s, (double[,])s.Clone());
        Assert.That((report.Differences.Count, report.Agreement, report.MaxRelativeScoreError), Is.EqualTo((0, 1.0, 0.0)));
    }

    [Test]
    public void ShapeMismatchIsRefused()
    {
        var ex = Assert.Throws<ArgumentException>(() => PredictionAgreement.Compare(new double[2, 3], new double[3, 2]));
        Assert.That(ex!.Message, Does.Contain("reference 2x3, other 3x2"));
    }
}
