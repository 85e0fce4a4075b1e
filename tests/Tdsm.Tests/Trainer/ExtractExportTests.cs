using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.StGcn;
using Tdsm.Tensors;
using Tdsm.Text;
using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>`extract` writes SynSE folders the loader accepts (seen-only train, unseen-only ztest); `export` writes the Python layout.</summary>
public class ExtractExportTests : TempDirTest
{
    private static int Run(params string[] args) => Cli.Run(args, TextWriter.Null, TextWriter.Null);

    [Test]
    public void ExtractKeepsUnseenClassesOutOfTheTrainingFeatures()
    {
        var cfg = new SynthConfig(Seed: 3, SamplesPerClass: 2, Frames: 8);
        var (x, y) = SyntheticDataset.GenerateBatch(cfg, 0, (int)cfg.Count);
        Npy.Write(Path.Combine(Dir, "x.npy"), [y.Length, 3, 8, 25, 2], x);
        Npy.Write(Path.Combine(Dir, "y.npy"), [y.Length], y.Select(v => (long)v).ToArray());
        Npy.Write(Path.Combine(Dir, "ru.npy"), [3], new long[] { 1, 5, 40 });
        var model = new StGcnModel(new StGcnConfig(3, 45, [new BlockSpec(3, 8, 1, false)]), new StGcnCpuOps(), 1);
        StGcnCheckpoint.Save(Path.Combine(Dir, "enc.safetensors"), model);
        string x1 = Path.Combine(Dir, "x.npy"), y1 = Path.Combine(Dir, "y.npy");
        Assert.That(Run("extract", "--encoder", Path.Combine(Dir, "enc.safetensors"), "--train-x", x1, "--train-y", y1, "--test-x", x1, "--test-y", y1,
            "--unseen", Path.Combine(Dir, "ru.npy"), "--out", Path.Combine(Dir, "f")), Is.Zero);
        var f = SynseFeatures.Load(Path.Combine(Dir, "f"));
        Assert.That(f.Train.Labels, Has.None.AnyOf(1, 5, 40));
        Assert.That(f.ZTest.Labels.Distinct().Order(), Is.EqualTo(new[] { 1, 5, 40 }));
        Assert.That(f.GTest!.Count, Is.EqualTo(y.Length));
        Assert.That(f.Train.Dim, Is.EqualTo(8));
        Assert.That(f.Train.Features, Has.All.Matches<float>(float.IsFinite));

        // An empty unseen list, or an unseen class with no test sample, is a mismatch, not a result.
        foreach (var (ids, want) in new[] { (Array.Empty<long>(), "no unseen classes"), (new long[] { 1, 99 }, "unseen class 99 has no sample in") })
        {
            Npy.Write(Path.Combine(Dir, "bad.npy"), [ids.Length], ids);
            var err = new StringWriter();
            int rc = Cli.Run(["extract", "--encoder", Path.Combine(Dir, "enc.safetensors"), "--train-x", x1, "--train-y", y1, "--test-x", x1, "--test-y", y1,
                "--unseen", Path.Combine(Dir, "bad.npy"), "--out", Path.Combine(Dir, "g")], TextWriter.Null, err);
            Assert.That(rc, Is.EqualTo(1));
            Assert.That(err.ToString(), Does.Contain(want));
        }
        Assert.That(Directory.Exists(Path.Combine(Dir, "g")), Is.False);
    }

    /// <summary>
    /// An encoder records the classes it was trained on; extracting zero-shot features with one of them listed as
    /// unseen is refused (the test would see a class the encoder learned) and writes nothing.
    /// </summary>
    [Test]
    public void ExtractRefusesUnseenClassesTheEncoderWasTrainedOn()
    {
        var cfg = new SynthConfig(Seed: 3, SamplesPerClass: 1, Frames: 8);
        var (x, y) = SyntheticDataset.GenerateBatch(cfg, 0, (int)cfg.Count);
        string x1 = Path.Combine(Dir, "x.npy"), y1 = Path.Combine(Dir, "y.npy"), enc = Path.Combine(Dir, "enc.safetensors");
        Npy.Write(x1, [y.Length, 3, 8, 25, 2], x);
        Npy.Write(y1, [y.Length], y.Select(v => (long)v).ToArray());
        Npy.Write(Path.Combine(Dir, "ru.npy"), [3], new long[] { 1, 5, 40 });
        var model = new StGcnModel(new StGcnConfig(3, 3, [new BlockSpec(3, 8, 1, false)]), new StGcnCpuOps(), 1);
        StGcnCheckpoint.Save(enc, model, [2, 5, 7]);
        Assert.That(StGcnCheckpoint.ReadSeenClasses(enc), Is.EqualTo(new[] { 2, 5, 7 }));
        Assert.Throws<ArgumentException>(() => StGcnCheckpoint.Save(enc, model, [2, 5]), "one id per logit");
        var err = new StringWriter();
        int rc = Cli.Run(["extract", "--encoder", enc, "--train-x", x1, "--train-y", y1, "--test-x", x1, "--test-y", y1,
            "--unseen", Path.Combine(Dir, "ru.npy"), "--out", Path.Combine(Dir, "f")], TextWriter.Null, err);
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(err.ToString(), Does.Contain("ru.npy: class 5 unseen here, but").And.Contain("enc.safetensors was trained on it"));
        Assert.That(Directory.Exists(Path.Combine(Dir, "f")), Is.False);
    }

    [Test]
    public void ExportWritesFeaturesTextAndClassTable()
    {
        var rng = new Rng(2);
        LabeledFeatures L(int[] y) { var v = new float[y.Length * 4]; rng.FillNormal(v); return new LabeledFeatures(v, 4, y); }
        new SynseFeatures(L([0, 1, 1]), L([2]), null).Save(Path.Combine(Dir, "feats"));
        var t = new float[3 * 36 * 5]; rng.FillNormal(t);
        new ClassTextFeatures(["a", "b", "c"], t, 5).Save(Path.Combine(Dir, "text.safetensors"));
        Assert.That(Run("export", "--features", Path.Combine(Dir, "feats"), "--text-features", Path.Combine(Dir, "text.safetensors"), "--out", Path.Combine(Dir, "out")), Is.Zero);
        var text = Npy.Read(Path.Combine(Dir, "out", "text_features.npy"));
        Assert.That(text.Shape, Is.EqualTo(new[] { 3, 36, 5 }));
        Assert.That(text.ToFloat32(), Is.EqualTo(t));
        Assert.That(ClassList.ReadCsv(Path.Combine(Dir, "out", "classes.csv")).Names, Is.EqualTo(new[] { "a", "b", "c" }));
        Assert.That(SynseFeatures.Load(Path.Combine(Dir, "out", "features")).Train.Labels, Is.EqualTo(new[] { 0, 1, 1 }));
    }
}
