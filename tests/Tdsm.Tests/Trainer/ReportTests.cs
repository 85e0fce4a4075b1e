using System.Buffers.Binary;
using System.Text.Json;
using Tdsm.Data;
using Tdsm.Evaluation;
using Tdsm.Tests.Data;
using Tdsm.Trainer.Reporting;
using Tdsm.Training;

namespace Tdsm.Tests.Trainer;

public class ReportTests : TempDirTest
{
    // A fake but plausible run: 5 unseen NTU-60 classes, a falling loss curve, 3 seeds.
    private static (RunReport Report, LossPoint[] Curve, ConfusionMatrix Tdsm, ConfusionMatrix Baseline, IReadOnlyList<string> Names) Example()
    {
        var names = ClassList.ReadCsv(TestPaths.Shared("data/class_lists/ntu120_names.csv")).Names; // official names; NTU-60 = the first 60
        int[] unseen = [10, 11, 19, 26, 56];
        var labels = unseen.SelectMany(c => Enumerable.Repeat(c, 20)).ToArray();
        var tdsmPred = labels.Select((y, i) => i % 5 == 0 ? unseen[(Array.IndexOf(unseen, y) + 1) % 5] : y).ToArray(); // 80 %
        var basePred = labels.Select((y, i) => i % 2 == 0 ? unseen[(Array.IndexOf(unseen, y) + 2) % 5] : y).ToArray(); // 50 %
        var tdsm = Metrics.Confusion(tdsmPred, labels, unseen);
        var baseline = Metrics.Confusion(basePred, labels, unseen);
        var curve = Enumerable.Range(1, 40).Select(i => new LossPoint(i * 50, 1e-4, 2.0 / Math.Sqrt(i) + 0.5, 1.5 / Math.Sqrt(i) + 0.3, 0.5 / Math.Sqrt(i) + 0.2)).ToArray();
        var report = new RunReport(Metrics.Top1(tdsmPred, labels), Metrics.Top1(basePred, labels), unseen.Length, 0, "cpu",
            [new StageTime("train", 12.5), new StageTime("eval", 3.25)],
            new Dictionary<string, object?> { ["run"] = new Dictionary<string, object?> { ["num_iter"] = 2000, ["split"] = "ntu60-u5" } })
        {
            Title = "example",
            UnseenClasses = unseen,
            Gzsl = new GzslResult(0.7, 0.4, Gzsl.HarmonicMean(0.7, 0.4), 0.05, 100, 100),
            Seeds = [new SeedResult(0, 0.8, 0.5), new SeedResult(1, 0.7, 0.55), new SeedResult(2, 0.75, 0.45)],
            Notes = ["synthetic example"],
        };
        return (report, curve, tdsm, baseline, names);
    }

    [Test]
    public void WritesJsonMarkdownAndPlots()
    {
        var (report, curve, tdsm, baseline, names) = Example();
        var files = ReportWriter.Write(Dir, report, curve, tdsm, baseline, names);
        Assert.That(files.Select(Path.GetFileName), Is.EquivalentTo(new[] { "report.json", "report.md", "loss_curves.png", "per_class_accuracy.png", "confusion_matrix.png", "baseline_confusion_matrix.png" }));

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "report.json")));
        var r = doc.RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(r.GetProperty("zsl_top1").GetDouble(), Is.EqualTo(0.8).Within(1e-12));
            Assert.That(r.GetProperty("baseline_top1").GetDouble(), Is.EqualTo(0.5).Within(1e-12));
            Assert.That(r.GetProperty("chance").GetDouble(), Is.EqualTo(0.2).Within(1e-12));
            Assert.That(r.GetProperty("num_unseen").GetInt32(), Is.EqualTo(5));
            Assert.That(r.GetProperty("seed").GetUInt64(), Is.EqualTo(0UL));
            Assert.That(r.GetProperty("backend").GetString(), Is.EqualTo("cpu"));
            Assert.That(r.GetProperty("stage_seconds").GetProperty("train").GetDouble(), Is.EqualTo(12.5));
            Assert.That(r.GetProperty("total_seconds").GetDouble(), Is.EqualTo(15.75));
            Assert.That(r.GetProperty("configs").GetProperty("run").GetProperty("num_iter").GetInt32(), Is.EqualTo(2000));
            Assert.That(r.GetProperty("gzsl").GetProperty("harmonic").GetDouble(), Is.EqualTo(2 * 0.7 * 0.4 / 1.1).Within(1e-12));
            Assert.That(r.GetProperty("multi_seed").GetProperty("zsl_top1").GetProperty("mean").GetDouble(), Is.EqualTo(0.75).Within(1e-12));
            Assert.That(r.GetProperty("multi_seed").GetProperty("zsl_top1").GetProperty("std").GetDouble(), Is.EqualTo(0.05).Within(1e-12));
            var first = r.GetProperty("per_class")[0];
            Assert.That(first.GetProperty("name").GetString(), Is.EqualTo(names[10]));
            Assert.That(first.GetProperty("accuracy").GetDouble(), Is.EqualTo(0.8).Within(1e-12));
        });

        var md = File.ReadAllText(Path.Combine(Dir, "report.md"));
        Assert.That(md, Does.Contain("| TDSM | 80.00% |").And.Contain("| direct-alignment baseline | 50.00% |").And.Contain("| chance (1/5) | 20.00% |"));
        Assert.That(File.ReadAllText(Path.Combine(Dir, "report.json")), Does.Contain("touch other person's pocket"), "readable json text");
        Assert.That(md, Does.Contain("75.00 ± 5.00").And.Contain(names[56]).And.Contain("![confusion_matrix.png](confusion_matrix.png)"));

        foreach (var png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
        {
            var bytes = File.ReadAllBytes(png);
            Assert.That(bytes.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), png);
            int w = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), h = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20));
            Assert.That(w, Is.GreaterThanOrEqualTo(500), png);
            Assert.That(h, Is.GreaterThanOrEqualTo(400), png);
            Assert.That(bytes, Has.Length.GreaterThan(10_000), $"{png} looks empty");
        }
        var preview = Environment.GetEnvironmentVariable("TDSM_PREVIEW_DIR");
        if (!string.IsNullOrEmpty(preview))
            foreach (var f in files) File.Copy(f, Path.Combine(preview, Path.GetFileName(f)), overwrite: true);
    }

    [Test]
    public void TwentyFourClassConfusionScalesUp()
    {
        var names = ClassList.ReadCsv(TestPaths.Shared("data/class_lists/ntu120_names.csv")).Names;
        var classes = Enumerable.Range(0, 24).Select(i => i * 5).ToArray();
        var labels = classes.SelectMany(c => Enumerable.Repeat(c, 10)).ToArray();
        var pred = labels.Select((y, i) => i % 3 == 0 ? classes[(i * 7) % 24] : y).ToArray();
        var cm = Metrics.Confusion(pred, labels, classes);
        var path = Path.Combine(Dir, "cm24.png");
        Plots.Confusion(path, [.. classes.Select(c => names[c])], cm.Counts, "24 classes");
        var bytes = File.ReadAllBytes(path);
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)), Is.EqualTo(40 * 24 + 300), "height grows with the class count");
        var preview = Environment.GetEnvironmentVariable("TDSM_PREVIEW_DIR");
        if (!string.IsNullOrEmpty(preview)) File.Copy(path, Path.Combine(preview, "confusion_matrix_24.png"), overwrite: true);
    }

    [Test]
    public void MinimalReportHasTheRequiredFields()
    {
        var run = Tdsm.Trainer.Configs.RunConfig.Default(TestPaths.Shared("data"));
        var report = new RunReport(0.6, 0.3, 8, 42, "gpu", [], new Dictionary<string, object?> { ["run"] = run.ToDictionary() });
        var files = ReportWriter.Write(Dir, report, []);
        Assert.That(files.Select(Path.GetFileName), Is.EqualTo(new[] { "report.json", "report.md" }));
        using var doc = JsonDocument.Parse(File.ReadAllText(files[0]));
        foreach (var key in new[] { "zsl_top1", "baseline_top1", "chance", "num_unseen", "seed", "backend", "stage_seconds", "configs" })
            Assert.That(doc.RootElement.TryGetProperty(key, out _), Is.True, key);
        Assert.That(doc.RootElement.TryGetProperty("multi_seed", out _), Is.False);
        Assert.That(doc.RootElement.GetProperty("chance").GetDouble(), Is.EqualTo(0.125));
        var cfg = doc.RootElement.GetProperty("configs").GetProperty("run");
        Assert.That(cfg.GetProperty("split").GetProperty("name").GetString(), Is.EqualTo("synth-u8"));
        Assert.That(cfg.GetProperty("dit").GetProperty("hidden_size").GetInt32(), Is.EqualTo(128));
        Assert.That(cfg.GetProperty("train").GetProperty("num_iter").GetInt32(), Is.EqualTo(run.Train.Iterations));
        Assert.That(cfg.GetProperty("seeds")[0].GetUInt64(), Is.EqualTo(0UL));
    }
}
