using Tdsm.Formats;
using Tdsm.StGcn;
using Tdsm.Trainer;

namespace Tdsm.Tests.StGcn;

/// <summary>The pretrain-encoder command end to end on a tiny .npy set: seen-only training, checkpoint, features.</summary>
public class PretrainEncoderCommandTests
{
    private static string NewDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tdsm-pretrain-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>n skeleton sequences (n, 3, T = 8, V = 25, M = 2) uniform in [-1, 1) from Random(seed), as .npy.</summary>
    private static void WriteRandomSkeletons(string path, int n, int seed)
    {
        const int t = 8, m = 2;
        var rng = new Random(seed);
        var x = new float[n * 3 * t * 25 * m];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        Npy.Write(path, [n, 3, t, 25, m], x);
    }

    [Test]
    public void TrainsOnSeenClassesAndWritesEncoderAndFeatures()
    {
        var dir = NewDirectory();
        try
        {
            int n = 16;
            WriteRandomSkeletons(Path.Combine(dir, "x.npy"), n, seed: 3);
            var y = Enumerable.Range(0, n).Select(i => (long)(i % 4)).ToArray(); // classes 0..3
            long[] seen = [3, 1];
            Npy.Write(Path.Combine(dir, "y.npy"), [n], y);
            Npy.Write(Path.Combine(dir, "seen.npy"), [2], seen);
            var enc = Path.Combine(dir, "enc.safetensors");
            var feats = Path.Combine(dir, "features");
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int rc = Cli.Run(["pretrain-encoder", "--train-x", Path.Combine(dir, "x.npy"), "--train-y", Path.Combine(dir, "y.npy"),
                "--seen", Path.Combine(dir, "seen.npy"), "--out", enc, "--epochs", "1", "--batch", "4",
                "--test-x", Path.Combine(dir, "x.npy"), "--test-y", Path.Combine(dir, "y.npy"), "--features-dir", feats], stdout, stderr);
            TestContext.Out.WriteLine(stdout.ToString());
            Assert.That(rc, Is.EqualTo(0), stderr.ToString());
            Assert.That(stdout.ToString(), Does.Contain("train: 8 seen-class samples of 16 (2 seen classes)").And.Contain("seen-class test accuracy"));
            var model = StGcnCheckpoint.Load(enc, new StGcnCpuOps());
            Assert.That(model.Config.NumClass, Is.EqualTo(2));
            Assert.That(StGcnCheckpoint.ReadSeenClasses(enc), Is.EqualTo(new[] { 3, 1 }), "the original ids of the logits, in the seen list's order");
            Assert.That(model.Config.Layers, Is.EqualTo(StGcnConfig.Small(2).Layers));
            var trainLabels = Npy.Read(Path.Combine(feats, "train_label.npy")).ToInt64();
            Assert.That(trainLabels, Is.All.AnyOf(1L, 3L));
            Assert.That(Npy.Read(Path.Combine(feats, "train.npy")).Shape, Is.EqualTo(new[] { 8, 128 }));
            Assert.That(Npy.Read(Path.Combine(feats, "z_label.npy")).ToInt64(), Is.All.AnyOf(0L, 2L));
            Assert.That(Npy.Read(Path.Combine(feats, "ztest.npy")).Shape, Is.EqualTo(new[] { 8, 128 }));
            Assert.That(Npy.Read(Path.Combine(feats, "gtest.npy")).Shape, Is.EqualTo(new[] { 16, 128 }));
            Assert.That(Npy.Read(Path.Combine(feats, "g_label.npy")).ToInt64(), Is.EqualTo(y));
            // the data layer's SynSE reader accepts the folder, and its labels respect the split
            var synse = Tdsm.Data.SynseFeatures.Load(feats);
            Assert.That(synse.Train.Dim, Is.EqualTo(128));
            Assert.DoesNotThrow(() => synse.Validate(new Tdsm.Data.LabelSplit([1, 3], [0, 2]), feats));
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// Settings out of range are refused before training, and a run whose loss stops being finite ends at that step
    /// with exit code 1 and writes no encoder (an existing file at --out is left as it was).
    /// </summary>
    [Test]
    public void BadSettingsAreRefusedAndADivergingRunWritesNothing()
    {
        var dir = NewDirectory();
        try
        {
            int n = 8;
            WriteRandomSkeletons(Path.Combine(dir, "x.npy"), n, seed: 4);
            Npy.Write(Path.Combine(dir, "y.npy"), [n], Enumerable.Range(0, n).Select(i => (long)(i % 2)).ToArray());
            Npy.Write(Path.Combine(dir, "seen.npy"), [2], new long[] { 0, 1 });
            var enc = Path.Combine(dir, "enc.safetensors");
            File.WriteAllText(enc, "the previous encoder");
            (int Rc, string Err) Run(params string[] extra)
            {
                var err = new StringWriter();
                int rc = Cli.Run(["pretrain-encoder", "--train-x", Path.Combine(dir, "x.npy"), "--train-y", Path.Combine(dir, "y.npy"),
                    "--seen", Path.Combine(dir, "seen.npy"), "--out", enc, .. extra], TextWriter.Null, err);
                return (rc, err.ToString());
            }
            foreach (var (option, value, want) in new[]
            {
                ("--epochs", "0", "epochs must be positive, got 0"),
                ("--lr", "-1", "lr must be a positive number, got -1"),
                ("--batch", "1", "batch size must be at least 2"),
            })
            {
                var (rc, err) = option == "--batch" ? Run(option, value) : Run(option, value, "--batch", "4");
                Assert.That(rc, Is.EqualTo(1), $"{option} {value}");
                Assert.That(err, Does.Contain(want));
            }
            var (code, message) = Run("--lr", "1e9", "--epochs", "3", "--batch", "4");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(message, Does.Contain("encoder training diverged: loss NaN at epoch").And.Contain("no encoder was written").And.Not.Contain("   at "));
            Assert.That(File.ReadAllText(enc), Is.EqualTo("the previous encoder"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void BenchPrintsAStepTime()
    {
        var stdout = new StringWriter();
        int rc = Cli.Run(["pretrain-encoder", "--bench", "--n", "2", "--t", "8", "--steps", "1", "--classes", "3"], stdout, new StringWriter());
        Assert.That(rc, Is.EqualTo(0));
        Assert.That(stdout.ToString(), Does.Contain("stgcn train step on 'cpu'").And.Contain("ms (min"));
    }

    /// <summary>--warmup sets the untimed steps (0 allowed); a negative count or no timed step is refused with the option named.</summary>
    [Test]
    public void BenchWarmupStepsAreConfigurable()
    {
        var stdout = new StringWriter(); var stderr = new StringWriter();
        Assert.That(Cli.Run(["pretrain-encoder", "--bench", "--n", "2", "--t", "8", "--steps", "2", "--warmup", "0", "--classes", "3"], stdout, stderr),
            Is.EqualTo(0), stderr.ToString());
        Assert.That(stdout.ToString(), Does.Contain("2 steps)"));
        stderr = new StringWriter();
        Assert.That(Cli.Run(["pretrain-encoder", "--bench", "--n", "2", "--t", "8", "--warmup", "-1", "--classes", "3"], new StringWriter(), stderr), Is.Not.EqualTo(0));
        Assert.That(stderr.ToString(), Does.Contain("--warmup"));
    }

    /// <summary>--profile: one row per op and layer size, the temporal convolutions of each block among them, and the family shares.</summary>
    [Test]
    public void BenchProfileNamesTheLayers()
    {
        var stdout = new StringWriter();
        int rc = Cli.Run(["pretrain-encoder", "--bench", "--n", "2", "--t", "8", "--steps", "1", "--classes", "3", "--profile"], stdout, new StringWriter());
        string s = stdout.ToString();
        Assert.That(rc, Is.EqualTo(0), s);
        Assert.That(s, Does.Contain("stgcn train step profile (1 more steps, per step)"));
        Assert.That(s, Does.Match(@"TemporalConvBackward 16->16 T8 +1 "), "the first block's temporal convolution backward, once per step");
        Assert.That(s, Does.Match(@"by op family: .*TemporalConv"));
    }
}
