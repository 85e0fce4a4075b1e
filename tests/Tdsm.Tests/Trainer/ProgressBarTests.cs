using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>The progress bar's lines when the output is redirected, on a fake clock.</summary>
public class ProgressBarTests
{
    /// <summary>
    /// A first step of 10 s (JIT, allocations) and then 1 s a step: the ETA after step 2 is the 8 steps left at the pace
    /// since step 1 (8 s), not the pace of the whole elapsed time (44 s), and the first line has none.
    /// </summary>
    [Test]
    public void TheEtaTakesThePaceAfterTheFirstStep()
    {
        double now = 0;
        var w = new StringWriter();
        var bar = new ProgressBar(w, "train", () => now);
        now = 10; bar.Report(1, 10, "loss 1.0");
        now = 11; bar.Report(2, 10, "loss 0.9");
        now = 19; bar.Report(10, 10, "loss 0.5");
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.Multiple(() =>
        {
            Assert.That(lines[0], Does.Contain("1/10 10s").And.Not.Contain("eta"));
            Assert.That(lines[1], Does.Contain("2/10 11s eta 8s").And.Contain("loss 0.9"));
            Assert.That(lines[2], Does.Contain("10/10 19s").And.Not.Contain("eta"));
        });
    }

    /// <summary>Redirected output gets a line at the first report and then one per tenth of the work (11 for 100 reports).</summary>
    [Test]
    public void RedirectedOutputPrintsOneLinePerTenth()
    {
        double now = 0;
        var w = new StringWriter();
        var bar = new ProgressBar(w, "x", () => now);
        for (int i = 1; i <= 100; i++) { now = i; bar.Report(i, 100); }
        Assert.That(w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(11));
    }
}
