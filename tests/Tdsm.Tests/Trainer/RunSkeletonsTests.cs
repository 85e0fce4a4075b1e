using System.Text.Json;
using Tdsm.Data;
using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>
/// `run --skeletons DIR`: raw NTU-named .skeleton files (written from the synthetic generator) go
/// through preprocessing, the cross-subject split, the encoder on the seen classes, features,
/// TDSM and the report. Tiny sizes so it takes seconds.
/// </summary>
public class RunSkeletonsTests : TempDirTest
{
    [Test]
    public void RawNtuFolderRunsEndToEnd()
    {
        string raw = Path.Combine(Dir, "raw");
        Directory.CreateDirectory(raw);
        var cfg = new SynthConfig(Seed: 4, Frames: 16);
        int index = 0;
        void Write(int actionId, int performer, int rep)
        {
            string name = $"S001C001P{performer:D3}R{rep:D3}A{actionId + 1:D3}.skeleton";
            SyntheticDataset.ToSkeletonFile(cfg, index++, Path.Combine(raw, name)).Write(Path.Combine(raw, name));
        }
        // ntu60-u5 holds out classes 10, 11, 19, 26, 56. Performer 1 is a training subject, 3 a test subject.
        foreach (int seen in new[] { 0, 1, 2, 3 })
        {
            for (int r = 1; r <= 3; r++) Write(seen, 1, r);
            Write(seen, 3, 1);
        }
        foreach (int unseen in new[] { 10, 11, 19, 26, 56 }) { Write(unseen, 3, 1); Write(unseen, 3, 2); }

        var o = new StringWriter(); var e = new StringWriter();
        string run = Path.Combine(Dir, "run");
        int code = Cli.Run(["run", "--preset", "ntu60-u5", "--skeletons", raw, "--out", run, "--frames", "16", "--encoder-epochs", "1",
            "--model", "tiny", "--iterations", "3", "--batch", "4", "--backend", "cpu"], o, e);
        Assert.That(code, Is.Zero, o.ToString() + e);
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "report.json")));
        Assert.That(report.RootElement.GetProperty("num_unseen").GetInt32(), Is.EqualTo(5));
        Assert.That(report.RootElement.GetProperty("zsl_top1").GetDouble(), Is.InRange(0.0, 1.0));
        var feats = SynseFeatures.Load(Path.Combine(run, "features"));
        Assert.That(feats.Train.Labels.Distinct().Order(), Is.EqualTo(new[] { 0, 1, 2, 3 }), "only seen classes of the training subjects");
        Assert.That(feats.ZTest.Count, Is.EqualTo(10));
        Assert.That(feats.GTest!.Count, Is.EqualTo(14));
        Assert.That(o.ToString(), Does.Contain("cross-subject: 12 training and 14 test sequences"));
    }
}
