using Tdsm.Tensors;
using System.Security.Cryptography;
using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.Trainer;

namespace Tdsm.Tests.Data;

/// <summary>The synthetic dataset: vocabulary and splits, determinism, file layout, and that motions do what the labels say.</summary>
public class SyntheticTests : TempDirTest
{
    private static int I(int c, int t, int v, int frames) => SkeletonPreprocessing.Index(c, t, v, 0, frames);

    [Test]
    public void VocabularyIsCompositional()
    {
        var cls = SyntheticActions.Classes;
        Assert.That(cls, Has.Count.GreaterThanOrEqualTo(40));
        Assert.That(cls.Select(c => c.Primitive).Distinct().Count(), Is.GreaterThanOrEqualTo(8));
        Assert.That(cls.Select(c => c.Part).Distinct().Count(), Is.GreaterThanOrEqualTo(6));
        Assert.That(cls.Select(c => c.Label).Distinct().Count(), Is.EqualTo(cls.Count));
        Assert.That(cls.Select(c => c.Description).Distinct().Count(), Is.EqualTo(cls.Count));
        foreach (var c in cls)
        {
            string part = c.Part switch
            {
                BodyPart.LeftArm => "left arm", BodyPart.RightArm => "right arm", BodyPart.BothArms => "both",
                BodyPart.LeftLeg => "left", BodyPart.RightLeg => "right", BodyPart.Head => "head", _ => "",
            };
            Assert.That(c.Label, Does.Contain(part), c.Label);
            Assert.That(c.Label, Does.StartWith(c.Primitive.ToString().ToLowerInvariant()), "the label's verb names the primitive");
        }
    }

    [TestCase(8, 40)]
    [TestCase(12, 36)]
    public void ShippedSplitsHaveZeroShotStructure(int unseen, int seen)
    {
        var s = SyntheticActions.Splits[unseen];
        Assert.That((s.Unseen.Length, s.Seen.Length), Is.EqualTo((unseen, seen)));
        Assert.That(SyntheticActions.ZeroShotViolations(s), Is.Empty);
        // The checker does catch a split that breaks the structure ("jump up" is the only jump).
        var bad = LabelSplit.FromUnseen([SyntheticActions.IdOf(Primitive.Jump, BodyPart.Body)], SyntheticActions.Count, "bad");
        Assert.That(SyntheticActions.ZeroShotViolations(bad), Has.Count.EqualTo(1));
    }

    [Test]
    public void SynthCommandIsByteDeterministicAndWritesTheLayout()
    {
        string a = Path.Combine(Dir, "a"), b = Path.Combine(Dir, "b"), c = Path.Combine(Dir, "c");
        string[] Args(string d, int seed) => ["synth", "--out", d, "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--samples-per-class", "3", "--frames", "48"];
        Assert.That(Cli.Run(Args(a, 7), TextWriter.Null, TextWriter.Null), Is.EqualTo(0));
        Assert.That(Cli.Run(Args(b, 7), TextWriter.Null, TextWriter.Null), Is.EqualTo(0));
        Assert.That(Cli.Run(Args(c, 8), TextWriter.Null, TextWriter.Null), Is.EqualTo(0));
        var files = Directory.GetFiles(a, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(a, f)).Order(StringComparer.Ordinal).ToArray();
        Assert.That(files, Is.EqualTo(new[] { "data.npy", "label.npy", "label_splits/rs36.npy", "label_splits/rs40.npy", "label_splits/ru12.npy", "label_splits/ru8.npy", "meta.json", "synth.csv", "synth_llm.txt" }));
        foreach (var f in files)
            Assert.That(SHA256.HashData(File.ReadAllBytes(Path.Combine(b, f))), Is.EqualTo(SHA256.HashData(File.ReadAllBytes(Path.Combine(a, f)))), f);
        Assert.That(File.ReadAllBytes(Path.Combine(c, "data.npy")), Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(a, "data.npy"))));

        var ds = SkeletonDataset.Load(a);
        Assert.That((ds.Count, ds.Frames, ds.Texts.Count, ds.Splits.Keys.Order().ToArray()), Is.EqualTo((144, 48, 48, new[] { 8, 12 })));
        Assert.That(ds.Labels.Take(50), Is.EqualTo(Enumerable.Range(0, 50).Select(i => i % 48)));
        Assert.That(ds.Texts.Labels[0], Is.EqualTo("raise the left arm"));
        Assert.That(ds.Splits[8].Unseen, Is.EqualTo(SyntheticActions.Splits[8].Unseen));
        // The same loader reads the synthetic class list and the NTU one.
        Assert.That(ClassList.ReadCsv(Path.Combine(a, "synth.csv")).FirstIndex, Is.EqualTo(1));
        // Stored samples are what Generate gives in memory.
        var one = new float[3 * 48 * 25 * 2];
        SyntheticDataset.Generate(new SynthConfig(Seed: 7, SamplesPerClass: 3, Frames: 48), 100, one);
        Assert.That(ds.X.AsSpan(100 * one.Length, one.Length).ToArray(), Is.EqualTo(one));
        Assert.That(ds.IndicesOf([0]), Is.EqualTo(new[] { 0, 48, 96 }));
        // A cut data file is reported, not half-loaded.
        var full = File.ReadAllBytes(Path.Combine(a, "data.npy"));
        File.WriteAllBytes(Path.Combine(a, "data.npy"), full[..^4]);
        Assert.That(Assert.Throws<TensorFormatException>(() => SkeletonDataset.Load(a))!.Message, Does.Contain("data.npy: truncated"));
        Npy.Write(Path.Combine(a, "data.npy"), [2, 3], new double[6]);
        Assert.That(Assert.Throws<TensorFormatException>(() => SkeletonDataset.Load(a))!.Message, Does.Contain("expected float32"));
    }

    [Test]
    public void GeneratedSkeletonFileThroughTheRawPipelineEqualsInMemoryGeneration()
    {
        var cfg = new SynthConfig(Frames: 64);
        var path = Path.Combine(Dir, "S001C001P001R001A001.skeleton");
        SyntheticDataset.ToSkeletonFile(cfg, 40, path).Write(path);
        var viaFile = SkeletonPreprocessing.Process(NtuSkeletonFile.Read(path), 64);
        var direct = new float[cfg.SampleSize];
        SyntheticDataset.Generate(cfg, 40, direct);
        double worst = viaFile.Zip(direct, (p, q) => (double)Math.Abs(p - q)).Aggregate(0.0, Math.Max); // Math.Max keeps a NaN, LINQ's Max skips it
        Assert.That(worst, Is.Not.NaN.And.LessThan(1e-6));
    }

    [Test]
    public void RawSamplesAreNtuLike()
    {
        var cfg = new SynthConfig(Frames: 300, Normalize: false);
        var x = new float[cfg.SampleSize];
        for (int n = 0; n < 48; n += 7)
        {
            int len = SyntheticDataset.GenerateRaw(cfg, n, x);
            Assert.That(len, Is.InRange(72, 120));
            double head = x[I(1, 0, NtuJoints.Head, 300)] - Math.Min(x[I(1, 0, NtuJoints.FootLeft, 300)], x[I(1, 0, NtuJoints.FootRight, 300)]);
            Assert.That(head, Is.InRange(1.2, 1.95), "standing height in metres");
            Assert.That(x[I(2, 0, 0, 300)], Is.InRange(2.3, 4.1), "depth from the camera");
            Assert.That(x[I(0, len, 3, 300)], Is.Zero, "zero after the sequence");
            // Upper-arm length is constant over time up to the joint noise (forward kinematics).
            var lens = Enumerable.Range(0, len).Select(t => Math.Sqrt(Enumerable.Range(0, 3).Sum(c => Math.Pow(x[I(c, t, 5, 300)] - x[I(c, t, 4, 300)], 2)))).ToArray();
            Assert.That(lens.Max() - lens.Min(), Is.Not.NaN.And.LessThan(0.08));
            for (int i = 0; i < 3 * 300 * 25; i++) Assert.That(x[i * 2 + 1], Is.Zero, "person 2 is empty");
        }
    }

    /// <summary>What the labels say happens: after normalisation (x right, y forward, z up).</summary>
    [Test]
    public void MotionsMatchTheirLabels()
    {
        var cfg = new SynthConfig(Frames: 64);
        double Max(int cls, int c, int joint, int rep = 0)
        {
            var x = new float[cfg.SampleSize];
            SyntheticDataset.Generate(cfg, rep * 48 + cls, x);
            // Math.Max keeps a NaN frame (LINQ's Max would skip it and the "stays low" checks would pass on it).
            return Enumerable.Range(0, 64).Select(t => (double)(x[I(c, t, joint, 64)] - x[I(c, t, NtuJoints.SpineBase, 64)])).Aggregate(double.NegativeInfinity, Math.Max);
        }
        for (int rep = 0; rep < 3; rep++)
        {
            int raiseL = SyntheticActions.IdOf(Primitive.Raise, BodyPart.LeftArm);
            Assert.That(Max(raiseL, 2, NtuJoints.HandLeft, rep), Is.GreaterThan(Max(raiseL, 2, NtuJoints.Head, rep)), "left hand above the head");
            Assert.That(Max(raiseL, 2, NtuJoints.HandRight, rep), Is.Not.NaN.And.LessThan(0.3), "right hand stays low");
            int kickR = SyntheticActions.IdOf(Primitive.Kick, BodyPart.RightLeg);
            Assert.That(Max(kickR, 1, NtuJoints.FootRight, rep), Is.GreaterThan(0.5), "right foot goes forward");
            Assert.That(Max(kickR, 1, NtuJoints.FootLeft, rep), Is.Not.NaN.And.LessThan(0.25), "left foot stays");
            int stretchR = SyntheticActions.IdOf(Primitive.Stretch, BodyPart.RightArm);
            Assert.That(Max(stretchR, 0, NtuJoints.HandRight, rep), Is.GreaterThan(0.55), "right hand out to the right side");
        }
    }

    [Test]
    public void SynthPreviewWritesAPng()
    {
        var png = Path.Combine(Dir, "p.png");
        var o = new StringWriter();
        Assert.That(Cli.Run(["synth", "--preview", "0,kick forward with the right leg", "--png", png, "--frames", "64", "--snapshots", "4"], o, TextWriter.Null), Is.EqualTo(0));
        Assert.That(o.ToString(), Does.Contain("class 38 'kick forward with the right leg'"));
        var bytes = File.ReadAllBytes(png);
        Assert.That(bytes[..8], Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));
        Assert.That(Cli.Run(["synth", "--preview", "fly", "--png", png], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
    }

    [Test]
    public void Xoshiro256MatchesTheReferenceVectors()
    {
        // SplitMix64 reference values (Vigna's splitmix64.c, seed 0): 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4.
        ulong s = 0;
        Assert.That(Xoshiro256.SplitMix64(ref s), Is.EqualTo(0xE220A8397B1DCDAFUL));
        Assert.That(Xoshiro256.SplitMix64(ref s), Is.EqualTo(0x6E789E6AA1B965F4UL));
        // xoshiro256** from state {1, 2, 3, 4}: the reference implementation's first outputs.
        var x = new Xoshiro256(1, 2, 3, 4);
        Assert.That(new[] { x.NextUInt64(), x.NextUInt64(), x.NextUInt64(), x.NextUInt64() },
            Is.EqualTo(new ulong[] { 11520, 0, 1509978240, 1215971899390074240 }));
        var r = new Xoshiro256(42);
        var a = Enumerable.Range(0, 1000).Select(_ => r.NextDouble()).ToArray();
        Assert.That(a.Average(), Is.EqualTo(0.5).Within(0.03));
        Assert.That(a.All(v => v is >= 0 and < 1), Is.True);
    }
}
