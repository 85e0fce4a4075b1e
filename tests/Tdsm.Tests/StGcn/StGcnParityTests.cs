using Tdsm.Formats;
using Tdsm.StGcn;

namespace Tdsm.Tests.StGcn;

/// <summary>Whole-model parity with the PyTorch fixture, on every tier, plus the graph.</summary>
public class StGcnParityTests
{
    private static string Fixture => TestPaths.Fixture("stgcn_small.safetensors");

    [Test]
    public void GraphEqualsFixtureAdjacency()
    {
        var f = SafeTensorsFile.Read(Fixture);
        var want = f["graph.A"];
        Assert.That(want.Shape, Is.EqualTo(new[] { 3, 25, 25 }));
        var g = Graph.Ntu();
        var w = want.ToFloat64();
        double maxErr = 0;
        for (int i = 0; i < w.Length; i++) maxErr = Math.Max(maxErr, Math.Abs(g.A[i] - w[i]));
        Assert.That(maxErr, Is.Not.NaN.And.LessThan(1e-7));
        // Non-trivial: three non-empty partitions and columns of A[0]+A[1]+A[2] summing to 1.
        for (int k = 0; k < 3; k++) Assert.That(g.A.Skip(k * 625).Take(625).Count(a => a != 0), Is.GreaterThan(0), $"partition {k}");
        for (int col = 0; col < 25; col++)
        {
            double s = 0;
            for (int k = 0; k < 3; k++) for (int r = 0; r < 25; r++) s += g.A[k * 625 + r * 25 + col];
            Assert.That(s, Is.EqualTo(1.0).Within(1e-12), $"column {col}");
        }
    }

    [TestCase("reference")]
    [TestCase("cpu")]
    public void FixtureParity(string backend)
    {
        var report = StGcnParity.RunTensors(SafeTensorsFile.Read(Fixture), backend);
        var sw = new StringWriter();
        report.Write(sw);
        TestContext.Out.WriteLine(sw.ToString());
        Assert.That(report.Rows.Count(r => r.Name.StartsWith("grad.", StringComparison.Ordinal)), Is.EqualTo(f_gradCount.Value));
        Assert.That(report.Rows.Where(r => !r.Pass).Select(r => $"{r.Name}: {r.RelError:E2} > {r.Tolerance:E0}"), Is.Empty);
    }

    [TestCase("reference")]
    [TestCase("cpu")]
    public void GroupedReportForTheParityCommand(string backend)
    {
        var report = StGcnParity.Run(Fixture, backend);
        foreach (var line in report.Lines()) TestContext.Out.WriteLine(line);
        Assert.That(report.Groups.Select(g => g.Name), Is.EqualTo(new[]
            { "graph.A", "out.logits", "out.features", "out.loss", "grad", "after.running", "out.eval_logits", "out.eval_features" }));
        Assert.That(report.Groups.Single(g => g.Name == "grad").Tensors, Is.EqualTo(f_gradCount.Value));
        Assert.That(report.Groups.Single(g => g.Name == "after.running").Tensors, Is.EqualTo(16));
        Assert.That(report.Passed, Is.True);
        Assert.That(StGcnParity.IsStGcnFixture(SafeTensorsFile.Read(Fixture)), Is.True);
        Assert.That(StGcnParity.IsStGcnFixture(SafeTensorsFile.Read(TestPaths.Fixture("dit_small.safetensors"))), Is.False);
    }

    private static readonly Lazy<int> f_gradCount = new(() => SafeTensorsFile.Read(Fixture).Names.Count(n => n.StartsWith("grad.", StringComparison.Ordinal)));
}
