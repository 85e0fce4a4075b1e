using System.Text.Json;
using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.Tensors;
using Tdsm.Text;
using Tdsm.Trainer;
using Tdsm.Training;

namespace Tdsm.Tests.Trainer;

/// <summary>`train` on a small SynSE-layout folder: runs, writes checkpoints and a report, resumes, and rejects bad input.</summary>
public class TrainCommandTests : TempDirTest
{
    [SetUp]
    public void WriteFeatureFolder()
    {
        var rng = new Rng(4);
        int classes = 6, dim = 12, width = 8;
        LabeledFeatures Make(int[] cls, int per)
        {
            var y = cls.SelectMany(c => Enumerable.Repeat(c, per)).ToArray();
            var x = new float[y.Length * dim];
            rng.FillNormal(x);
            return new LabeledFeatures(x, dim, y);
        }
        new SynseFeatures(Make([0, 1, 2, 3], 10), Make([4, 5], 5), null).Save(Path.Combine(Dir, "feats"));
        var text = new float[classes * ClassTextFeatures.Rows * width];
        rng.FillNormal(text);
        new ClassTextFeatures(Enumerable.Range(0, classes).Select(i => $"class {i}").ToArray(), text, width).Save(Path.Combine(Dir, "text.safetensors"));
        Npy.Write(Path.Combine(Dir, "ru2.npy"), [2], new long[] { 4, 5 });
    }

    private (int Code, string Out, string Err) Run(params string[] extra)
    {
        var o = new StringWriter(); var e = new StringWriter();
        string[] args = ["train", "--features", Path.Combine(Dir, "feats"), "--text-features", Path.Combine(Dir, "text.safetensors"),
            "--unseen", Path.Combine(Dir, "ru2.npy"), "--out", Path.Combine(Dir, "run"), "--hidden", "16", "--depth", "1", "--heads", "2",
            "--batch", "8", "--warmup", "2", "--checkpoint-every", "10", .. extra];
        return (Cli.Run(args, o, e), o.ToString(), e.ToString());
    }

    // `eval` of the run's checkpoint on the feature folder, the text features and the split of the set-up.
    private string[] EvalArgs(params string[] extra) => ["eval", "--model", Path.Combine(Dir, "run", Checkpoint.ModelFile), "--features", Path.Combine(Dir, "feats"),
        "--text-features", Path.Combine(Dir, "text.safetensors"), "--unseen", Path.Combine(Dir, "ru2.npy"), .. extra];

    [Test]
    public void TrainsEvaluatesAndResumes()
    {
        var (code, stdout, err) = Run("--iterations", "20");
        Assert.That(code, Is.Zero, stdout + err);
        string run = Path.Combine(Dir, "run");
        Assert.That(File.Exists(Path.Combine(run, Checkpoint.ModelFile)) && File.Exists(Path.Combine(run, Checkpoint.OptimizerFile)), Is.True);
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "report.json")));
        double top1 = report.RootElement.GetProperty("zsl_top1").GetDouble();
        Assert.That(top1, Is.InRange(0.0, 1.0));
        Assert.That(report.RootElement.GetProperty("num_unseen").GetInt32(), Is.EqualTo(2));
        (code, stdout, err) = Run("--iterations", "30", "--resume", "--log-every", "10");
        Assert.That(code, Is.Zero, stdout + err);
        Assert.That(stdout, Does.Contain("resumed at step 20"));
        // The curve keeps the steps logged before the checkpoint.
        var steps = File.ReadAllLines(Path.Combine(run, "loss.csv")).Skip(1).Select(l => int.Parse(l[..l.IndexOf(',', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        TestContext.Out.WriteLine($"logged steps: {string.Join(", ", steps)}");
        Assert.That(steps[..2], Is.EqualTo(new[] { 1, 20 }), "the first run's points");
        Assert.That(steps[^1], Is.EqualTo(30));
        Assert.That(steps, Is.Ordered.Ascending.And.Unique);
        // Nothing left to train, and a flag given a value it cannot mean, are usage errors: the run is left as it was.
        var before = File.ReadAllBytes(Path.Combine(run, Checkpoint.ModelFile));
        (code, _, err) = Run("--iterations", "30", "--resume");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("the checkpoint is at step 30 and --iterations is 30"));
        (code, _, err) = Run("--iterations", "40", "--resume", "maybe");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("flag --resume takes no value (or true/false, yes/no), got 'maybe'"));
        Assert.That(File.ReadAllBytes(Path.Combine(run, Checkpoint.ModelFile)), Is.EqualTo(before));
    }

    [Test]
    public void ADivergedRunStopsWithAClearErrorKeepsItsCurveAndWritesNoCheckpoint()
    {
        // An absurd learning rate drives the parameters past float range within a few steps.
        var (code, stdout, err) = Run("--iterations", "20", "--lr", "1e35", "--log-every", "5");
        Assert.That(code, Is.EqualTo(1), stdout + err);
        Assert.That(err, Does.Contain("training diverged: the loss is").And.Contain("No checkpoint had been written"));
        string run = Path.Combine(Dir, "run");
        var last = File.ReadAllLines(Path.Combine(run, "loss.csv")).Last().Split(',');
        Assert.That(double.IsFinite(double.Parse(last[2], System.Globalization.CultureInfo.InvariantCulture)), Is.False, "the curve ends at the bad step");
        Assert.That(File.Exists(Path.Combine(run, Checkpoint.ModelFile)), Is.False, "no diverged parameters on disk");
        Assert.That(File.Exists(Path.Combine(run, "report.json")), Is.False);
    }

    [Test]
    public void EvalReproducesTheRunAndTheLibraryAgreesWithTheCpuTier()
    {
        Assert.That(Run("--iterations", "10").Code, Is.Zero);
        var o = new StringWriter();
        int code = Cli.Run(EvalArgs("--compare", "library"), o, TextWriter.Null);
        Assert.That(code, Is.Zero, o.ToString());
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "run", "report.json")));
        double top1 = report.RootElement.GetProperty("zsl_top1").GetDouble();
        Assert.That(o.ToString(), Does.Contain($"zero-shot top-1 {top1.ToString("P2", System.Globalization.CultureInfo.InvariantCulture)}"));
        Assert.That(o.ToString(), Does.Contain("3 noises from the checkpoint"));
        // After 10 iterations the classes nearly tie, so argmins may differ, but only as ties.
        Assert.That(o.ToString(), Does.Match(@"(\d+) of 10 predictions differ \(\1 of them ties"));
    }

    /// <summary>eval --noises scores with that many noises drawn from --noise-seed (an analysis option), and the library agrees with it.</summary>
    [Test]
    public void EvalWithMoreNoisesDrawsThem()
    {
        Assert.That(Run("--iterations", "10").Code, Is.Zero);
        var o = new StringWriter();
        Assert.That(Cli.Run(EvalArgs("--noises", "7", "--noise-seed", "2", "--compare", "library"), o, TextWriter.Null), Is.Zero, o.ToString());
        Assert.That(o.ToString(), Does.Contain("7 noises drawn with seed 2"));
        Assert.That(o.ToString(), Does.Match(@"(\d+) of 10 predictions differ \(\1 of them ties"));
        var e = new StringWriter();
        Assert.That(Cli.Run(EvalArgs("--noises", "0"), TextWriter.Null, e), Is.Not.Zero);
        Assert.That(e.ToString(), Does.Contain("--noises must be a positive count, got 0"));
    }

    /// <summary>
    /// eval --per-class prints one line per class whose counts add up to the top-1 line; --scores writes the matrix whose
    /// row argmins give that top-1; --classes seen scores gtest's seen samples against the seen classes, and needs a gtest.
    /// </summary>
    [Test]
    public void EvalPerClassAndOnTheSeenClasses()
    {
        Assert.That(Run("--iterations", "10").Code, Is.Zero);
        var e = new StringWriter();
        Assert.That(Cli.Run(EvalArgs("--classes", "seen"), TextWriter.Null, e), Is.Not.Zero);
        Assert.That(e.ToString(), Does.Contain("--classes seen needs").And.Contain("gtest.npy"));
        e = new StringWriter();
        Assert.That(Cli.Run(EvalArgs("--classes", "all"), TextWriter.Null, e), Is.Not.Zero);
        Assert.That(e.ToString(), Does.Contain("--classes must be unseen or seen, got 'all'"));

        // gtest: 3 samples of each of the 6 classes.
        var feats = SynseFeatures.Load(Path.Combine(Dir, "feats"));
        var rng = new Rng(9);
        var gx = new float[18 * 12];
        rng.FillNormal(gx);
        int[] gy = [.. Enumerable.Range(0, 18).Select(i => i % 6)];
        (feats with { GTest = new LabeledFeatures(gx, 12, gy) }).Save(Path.Combine(Dir, "feats"));

        foreach (var (classes, ids, samples) in new[] { ("unseen", new[] { 4, 5 }, 10), ("seen", new[] { 0, 1, 2, 3 }, 12) })
        {
            int count = ids.Length;
            var o = new StringWriter();
            string scoresPath = Path.Combine(Dir, $"scores-{classes}.npy");
            Assert.That(Cli.Run(EvalArgs("--classes", classes, "--per-class", "--scores", scoresPath), o, TextWriter.Null), Is.Zero, o.ToString());
            string text = o.ToString();
            var top = System.Text.RegularExpressions.Regex.Match(text, $@"top-1 ([\d.]+) % on (\d+) samples of {count} {classes} classes");
            Assert.That(top.Success, Is.True, text);
            Assert.That(int.Parse(top.Groups[2].Value), Is.EqualTo(samples));
            var lines = System.Text.RegularExpressions.Regex.Matches(text, @"  class (\d+) 'class \1': (\d+)/(\d+)");
            Assert.That(lines, Has.Count.EqualTo(count), text);
            int correct = lines.Sum(m => int.Parse(m.Groups[2].Value)), total = lines.Sum(m => int.Parse(m.Groups[3].Value));
            Assert.That(total, Is.EqualTo(samples));
            double top1 = double.Parse(top.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.That(100.0 * correct / total, Is.EqualTo(top1).Within(0.005));

            var scores = Npy.Read(scoresPath);
            Assert.That(scores.Shape, Is.EqualTo(new[] { samples, count }));
            var s = scores.ToFloat64();
            var labels = classes == "unseen" ? feats.ZTest.Labels : [.. gy.Where(c => c < 4)];
            int hits = Enumerable.Range(0, samples).Count(i => ids[Enumerable.Range(0, count).MinBy(k => s[i * count + k])] == labels[i]);
            Assert.That(100.0 * hits / samples, Is.EqualTo(top1).Within(0.005));
        }
    }

    /// <summary>eval refuses a test set whose labels are not the unseen classes it is told (it scored "0.00 %").</summary>
    [Test]
    public void EvalRefusesTestLabelsOutsideTheUnseenClasses()
    {
        var (code, stdout, err) = Run("--iterations", "2");
        Assert.That(code, Is.Zero, stdout + err);
        Npy.Write(Path.Combine(Dir, "ru34.npy"), [2], new long[] { 3, 4 });
        var e = new StringWriter();
        int rc = Cli.Run(["eval", "--model", Path.Combine(Dir, "run", Checkpoint.ModelFile), "--features", Path.Combine(Dir, "feats"),
            "--text-features", Path.Combine(Dir, "text.safetensors"), "--unseen", Path.Combine(Dir, "ru34.npy")], TextWriter.Null, e);
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(e.ToString(), Does.Contain("z_label.npy: label 5 is not an unseen class of").And.Contain("ru34.npy"));
    }

    /// <summary>eval --run takes the checkpoint the run's report names: the first seed's of a multi-seed run, even when
    /// the folder still holds a single-seed run's tdsm/ from before.</summary>
    [Test]
    public void EvalOfARunFolderFollowsItsReport()
    {
        var (code, stdout, err) = Run("--iterations", "2");
        Assert.That(code, Is.Zero, stdout + err);
        string run = Path.Combine(Dir, "multi");
        CopyFolder(Path.Combine(Dir, "feats"), Path.Combine(run, "features"));
        File.Copy(Path.Combine(Dir, "text.safetensors"), Path.Combine(run, "text_features.safetensors"));
        Directory.CreateDirectory(Path.Combine(run, "tdsm"));
        File.WriteAllText(Path.Combine(run, "tdsm", Checkpoint.ModelFile), "a stale file that is not a checkpoint");
        Directory.CreateDirectory(Path.Combine(run, "tdsm-seed5"));
        File.Copy(Path.Combine(Dir, "run", Checkpoint.ModelFile), Path.Combine(run, "tdsm-seed5", Checkpoint.ModelFile));
        File.WriteAllText(Path.Combine(run, "report.json"), """{"unseen_classes": [4, 5], "seed": 5, "seeds": [{"seed": 5}, {"seed": 6}]}""");
        var e = new StringWriter();
        Assert.That(Cli.Run(["eval", "--run", run], TextWriter.Null, e), Is.Zero, e.ToString());
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    [Test]
    public void UnseenClassesInTheTrainingSetAreRejected()
    {
        Npy.Write(Path.Combine(Dir, "ru2.npy"), [2], new long[] { 0, 5 });
        var (code, _, err) = Run("--iterations", "5");
        Assert.That(code, Is.Not.Zero);
        Assert.That(err, Does.Contain("train_label.npy: label 0 is not a seen class of the split"));
    }
}
