using System.Globalization;
using System.Text.Json;
using Tdsm.Data;
using Tdsm.Text;
using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>`curves` on small synthetic loss.csv files, `synth-features`, and `train --log-every / --time-limit` that feed it.</summary>
public class CurvesCommandTests : TempDirTest
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>A falling curve 2·exp(-s/300) + 0.5 over steps 1..<paramref name="steps"/>, times <paramref name="scale"/> on steps <paramref name="from"/>..<paramref name="to"/>.</summary>
    private string Curve(string name, int steps = 1000, double scale = 1, int from = 1, int to = int.MaxValue, Func<int, double>? loss = null)
    {
        string path = Path.Combine(Dir, name);
        var lines = new List<string> { "step,lr,loss,diffusion,triplet,seconds" };
        for (int s = 1; s <= steps; s++)
        {
            double l = loss?.Invoke(s) ?? 2 * Math.Exp(-s / 300.0) + 0.5;
            if (s >= from && s <= to) l *= scale;
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{s},0.001,{l},{l / 2},{l / 2},{0.5 + 0.01 * s}"));
        }
        File.WriteAllLines(path, lines);
        return path;
    }

    [Test]
    public void IdenticalCurvesPass()
    {
        var (code, stdout, _) = Run("curves", "--a", Curve("a.csv"), "--b", Curve("b.csv"));
        Assert.That(code, Is.Zero, stdout);
        Assert.That(stdout, Does.Contain("verdict: PASS").And.Contain("max |rel| over windows 3-10: 0.00%"));
        // Window 1 holds steps 1..100 of 2·exp(-s/300) + 0.5.
        double w1 = Enumerable.Range(1, 100).Average(s => 2 * Math.Exp(-s / 300.0) + 0.5);
        Assert.That(stdout, Does.Contain($"1-100 {w1.ToString("F5", CultureInfo.InvariantCulture),10}"));
        Assert.That(stdout, Does.Contain("10.00 ms/iteration after step 1"));
    }

    [TestCase(1.02, 0)]
    [TestCase(0.97, 0)]
    [TestCase(1.10, 1)]
    [TestCase(0.90, 1)]
    public void AWindowBeyondTheToleranceFails(double scale, int expectedCode)
    {
        var (code, stdout, _) = Run("curves", "--a", Curve("a.csv"), "--b", Curve("b.csv", scale: scale, from: 701, to: 800), "--tolerance", "0.05");
        Assert.That(code, Is.EqualTo(expectedCode), stdout);
        Assert.That(stdout, Does.Contain($"{(Math.Abs(scale - 1) * 100).ToString("F2", CultureInfo.InvariantCulture)}% at window 8 (steps 701-800)"));
    }

    [Test]
    public void TheFirstWindowsAreNotJudged()
    {
        // B is 50 % off on steps 1..100 only.
        string a = Curve("a.csv"), b = Curve("b.csv", loss: s => (2 * Math.Exp(-s / 300.0) + 0.5) * (s <= 100 ? 1.5 : 1));
        Assert.That(Run("curves", "--a", a, "--b", b, "--skip", "1").Code, Is.Zero);
        var (code, stdout, _) = Run("curves", "--a", a, "--b", b, "--skip", "0");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stdout, Does.Contain("50.00% at window 1 (steps 1-100)").And.Contain("verdict: FAIL"));
    }

    [Test]
    public void OnlyTheStepsBothCurvesCoverAreCompared()
    {
        var (code, stdout, _) = Run("curves", "--a", Curve("a.csv"), "--b", Curve("b.csv", steps: 450));
        Assert.That(code, Is.Zero, stdout);
        Assert.That(stdout, Does.Contain("windows of 100 steps up to step 450").And.Contain("401-450"));
        Assert.That(stdout, Does.Not.Contain("451-"));
    }

    [Test]
    public void ACurveThatDoesNotFallFails()
    {
        string flat = Curve("flat.csv", loss: _ => 1.0);
        var (code, stdout, _) = Run("curves", "--a", flat, "--b", Curve("flat2.csv", loss: _ => 1.0));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stdout, Does.Contain("A does not fall").And.Contain("B does not fall"));
    }

    [Test]
    public void ANonFiniteLossFailsTheComparison()
    {
        var (code, stdout, _) = Run("curves", "--a", Curve("a.csv"), "--b", Curve("b.csv", loss: s => s > 600 ? double.NaN : 2 * Math.Exp(-s / 300.0) + 0.5));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stdout, Does.Contain("verdict: FAIL").And.Contain("more than 5.0%"));
    }

    [Test]
    public void OneCurveIsSummarised()
    {
        var (code, stdout, _) = Run("curves", "--a", Curve("a.csv"), "--window", "250");
        Assert.That(code, Is.Zero);
        Assert.That(stdout, Does.Contain("751-1000").And.Contain("A: window 1 mean").And.Contain("falls"));
        Assert.That(stdout, Does.Not.Contain("verdict"));
    }

    [Test]
    public void BadFilesNameTheFileAndLine()
    {
        string a = Curve("a.csv");
        string bad = Path.Combine(Dir, "bad.csv");
        File.WriteAllLines(bad, ["step,loss", "1,2.0", "2,1.9", "3,1.8,7"]);
        var (code, _, err) = Run("curves", "--a", a, "--b", bad);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain($"{bad}:4: expected 2 fields like the header, got 3"));

        File.WriteAllLines(bad, ["step,lr", "1,2.0"]);
        (_, _, err) = Run("curves", "--a", bad);
        Assert.That(err, Does.Contain($"{bad}:1: header 'step,lr' has no 'loss' column"));

        File.WriteAllLines(bad, ["step,loss", "1,2.0", "3,1.9", "3,1.8"]);
        (_, _, err) = Run("curves", "--a", bad);
        Assert.That(err, Does.Contain($"{bad}:4: step 3 does not follow step 3"));

        File.WriteAllLines(bad, ["step,loss", "1,2.0", "2,abc"]);
        (_, _, err) = Run("curves", "--a", bad);
        Assert.That(err, Does.Contain($"{bad}:3: loss 'abc' is not a number"));

        (code, _, err) = Run("curves", "--a", Path.Combine(Dir, "missing.csv"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("missing.csv"));
    }

    [Test]
    public void SynthFeaturesAreSeededAndTrainReadsThem()
    {
        string[] Args(string dir) => ["synth-features", "--out", Path.Combine(Dir, dir), "--classes", "8", "--unseen", "2",
            "--train-per-class", "6", "--test-per-class", "3", "--dim", "12", "--text-width", "8", "--seed", "3"];
        Assert.That(Run(Args("s1")).Code, Is.Zero);
        Assert.That(Run(Args("s2")).Code, Is.Zero);
        foreach (var f in new[] { "features/train.npy", "features/train_label.npy", "features/ztest.npy", "features/z_label.npy", "text_features.safetensors", "unseen.npy" })
            Assert.That(File.ReadAllBytes(Path.Combine(Dir, "s2", f)), Is.EqualTo(File.ReadAllBytes(Path.Combine(Dir, "s1", f))), f);

        var feats = SynseFeatures.Load(Path.Combine(Dir, "s1", "features"));
        var text = ClassTextFeatures.Load(Path.Combine(Dir, "s1", "text_features.safetensors"));
        var unseen = LabelSplit.ReadIds(Path.Combine(Dir, "s1", "unseen.npy"));
        Assert.That(text.Count, Is.EqualTo(8));
        Assert.That(text.Width, Is.EqualTo(8));
        Assert.That(feats.Train.Dim, Is.EqualTo(12));
        Assert.That(unseen, Has.Length.EqualTo(2));
        Assert.That(feats.Train.Labels.Distinct().Count(), Is.EqualTo(6));
        Assert.That(feats.Train.Labels.Intersect(unseen), Is.Empty);
        Assert.That(feats.ZTest.Labels.Distinct().Order(), Is.EqualTo(unseen.Order()));
        // Features carry their class: same-class rows are closer to their class mean than to another class's.
        double[] Mean(int c) => Enumerable.Range(0, 12).Select(i => feats.Train.Labels.Select((l, r) => (l, r)).Where(p => p.l == c).Average(p => (double)feats.Train.Features[p.r * 12 + i])).ToArray();
        int c0 = feats.Train.Labels[0], c1 = feats.Train.Labels.First(l => l != c0);
        double Dist(int row, double[] m) => Enumerable.Range(0, 12).Sum(i => Math.Pow(feats.Train.Features[row * 12 + i] - m[i], 2));
        Assert.That(Dist(0, Mean(c0)), Is.Not.NaN.And.LessThan(Dist(0, Mean(c1))));

        Assert.That(Run(["synth-features", "--out", Path.Combine(Dir, "s3"), "--classes", "4", "--unseen", "4"]).Code, Is.EqualTo(2));
    }

    [Test]
    public void TrainLogsEveryStepAndStopsAtTheTimeLimit()
    {
        Assert.That(Run("synth-features", "--out", Path.Combine(Dir, "s"), "--classes", "6", "--unseen", "2", "--train-per-class", "5",
            "--test-per-class", "2", "--dim", "12", "--text-width", "8").Code, Is.Zero);
        string[] Train(string run, params string[] extra) => ["train", "--features", Path.Combine(Dir, "s", "features"),
            "--text-features", Path.Combine(Dir, "s", "text_features.safetensors"), "--unseen", Path.Combine(Dir, "s", "unseen.npy"),
            "--out", Path.Combine(Dir, run), "--model", "small", "--hidden", "16", "--depth", "1", "--heads", "2", "--batch", "8",
            "--warmup", "2", "--checkpoint-every", "0", .. extra];

        var (code, stdout, err) = Run(Train("every", "--iterations", "12", "--log-every", "1"));
        Assert.That(code, Is.Zero, stdout + err);
        var lines = File.ReadAllLines(Path.Combine(Dir, "every", "loss.csv"));
        Assert.That(lines[0], Is.EqualTo("step,lr,loss,diffusion,triplet,seconds"));
        Assert.That(lines.Skip(1).Select(l => int.Parse(l.Split(',')[0], CultureInfo.InvariantCulture)), Is.EqualTo(Enumerable.Range(1, 12)));
        Assert.That(Run("curves", "--a", Path.Combine(Dir, "every", "loss.csv"), "--window", "4").Code, Is.Zero);

        // A limit of 1 µs is over after the first iteration: that one runs, is logged, and the run still evaluates.
        (code, stdout, err) = Run(Train("capped", "--iterations", "500", "--time-limit", "0.000001"));
        Assert.That(code, Is.Zero, stdout + err);
        Assert.That(stdout, Does.Contain("time limit of 0 s reached after 1 of 500 iterations").And.Contain("zero-shot top-1"));
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "capped", "report.json")));
        Assert.That(report.RootElement.GetProperty("iterations_run").GetInt32(), Is.EqualTo(1));
        Assert.That(File.ReadAllLines(Path.Combine(Dir, "capped", "loss.csv")), Has.Length.EqualTo(2));
    }
}
