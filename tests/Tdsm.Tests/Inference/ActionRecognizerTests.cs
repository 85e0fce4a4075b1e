using System.Text;
using Tdsm.Formats;
using Tdsm.Inference;
using Tdsm.Model;
using Tdsm.Reference;
using Tdsm.Tensors;
using Tdsm.Text;
using Tdsm.Training;

namespace Tdsm.Tests.Inference;

/// <summary>
/// The embedded API: predictions identical to the reference tier (official fixture and a synthetic
/// set), concurrency, cancellation/progress, zero steady-state allocation, bundles, and one clear
/// exception per kind of bad input.
/// </summary>
public class ActionRecognizerTests
{
    private static readonly DiTConfig Synthetic = new(InChannels: 12, CondSize: 10, Hidden: 24, Depth: 3, Heads: 2, LocalTokens: 35);

    private static float[] Normal(int n, ulong seed, double scale = 1)
    {
        var v = new float[n];
        new Rng(seed).FillNormal(v, scale);
        return v;
    }

    // Random weights everywhere (a fresh official init zeroes adaLN, which would make every class tie).
    private static (float[] Params, float[] Noise) RandomModel(DiTConfig cfg, ulong seed) =>
        (Normal(DiT.BuildLayout(cfg).Count, seed, 0.15), Normal(3 * cfg.InChannels, seed + 1));

    private static ClassTextFeatures RandomClasses(DiTConfig cfg, int k, ulong seed) =>
        new(Enumerable.Range(0, k).Select(i => $"action {i}").ToArray(), Normal(k * ClassTextFeatures.Rows * cfg.CondSize, seed), cfg.CondSize);

    // The reference tier's scores (N, K) through the generic ZeroShotScorer, in chunks of 9 rows: chunks cross
    // samples and the last one is short (a prefix of the activations), against the independent InferenceDiT.
    private static double[,] ReferenceScores(DiTConfig cfg, float[] parameters, float[] noise, ClassTextFeatures classes, float[] features, int n)
    {
        var ops = new ReferenceOps();
        var model = new DiT(cfg, ops);
        model.LoadParameters(parameters);
        var table = new TextTable(ops, classes.Data, classes.Count, ClassTextFeatures.Rows, cfg.CondSize);
        return new ZeroShotScorer(model, chunkRows: 9).Score(features, n, table, noise).Scores;
    }

    private static void AssertSameAsReference(DiTConfig cfg, float[] parameters, float[] noise, ClassTextFeatures classes, float[] features, int n, int[]? expected = null)
    {
        var want = ReferenceScores(cfg, parameters, noise, classes, features, n);
        var wantPred = ZeroShotScorer.Predict(want);
        var r = ActionRecognizer.FromParameters(cfg, parameters, noise);
        var set = r.CreateCandidates(classes);
        double num = 0, den = 0;
        for (int i = 0; i < n; i++)
        {
            var p = r.Classify(features.AsSpan(i * cfg.InChannels, cfg.InChannels), set);
            Assert.That(p.Best.Index, Is.EqualTo(wantPred[i]), $"sample {i}");
            if (expected is not null) Assert.That(p.Best.Index, Is.EqualTo(expected[i]), $"sample {i} vs the fixture");
            Assert.That(p.Label, Is.EqualTo(classes.Names[wantPred[i]]));
            foreach (var s in p.Ranked) { double d = s.Error - want[i, s.Index]; num += d * d; den += want[i, s.Index] * want[i, s.Index]; }
            Assert.That(p.Ranked.Select(s => s.Error), Is.Ordered);
        }
        TestContext.Out.WriteLine($"relative score error vs reference: {Math.Sqrt(num / den):e2}");
        Assert.That(Math.Sqrt(num / den), Is.Not.NaN.And.LessThan(1e-5));
    }

    [Test]
    public void FixturePredictionsAreThoseOfTheReferenceTierAndPyTorch()
    {
        var f = SafeTensorsFile.Read(TestPaths.Fixture("dit_small.safetensors"));
        using var meta = f.MetadataJson("config");
        var cfg = DiTConfig.FromJson(meta.RootElement);
        var layout = DiT.BuildLayout(cfg);
        var flat = new float[layout.Count];
        foreach (var e in layout.Entries) f["param." + e.Name].ToFloat32().CopyTo(flat, e.Offset);
        var cand = f["infer.candidates"].ToInt32();
        var text = f["in.text"].ToFloat32();
        int per = ClassTextFeatures.Rows * cfg.CondSize;
        var sub = new float[cand.Length * per];
        for (int k = 0; k < cand.Length; k++) text.AsSpan(cand[k] * per, per).CopyTo(sub.AsSpan(k * per));
        var classes = new ClassTextFeatures(cand.Select(c => $"class {c}").ToArray(), sub, cfg.CondSize);
        var x = f["infer.x"];
        AssertSameAsReference(cfg, flat, f["infer.noise"].ToFloat32(), classes, x.ToFloat32(), x.Shape[0], f["infer.pred"].ToInt32());
    }

    [Test]
    public void SyntheticSetPredictionsAreThoseOfTheReferenceTier()
    {
        var (p, noise) = RandomModel(Synthetic, 7);
        int n = 10;
        AssertSameAsReference(Synthetic, p, noise, RandomClasses(Synthetic, 7, 8), Normal(n * Synthetic.InChannels, 9), n);
    }

    [Test]
    public void ManyThreadsGiveTheResultsOfOne()
    {
        var (p, noise) = RandomModel(Synthetic, 11);
        var r = ActionRecognizer.FromParameters(Synthetic, p, noise);
        var set = r.CreateCandidates(RandomClasses(Synthetic, 9, 12));
        int n = 24;
        var xs = Enumerable.Range(0, n).Select(i => Normal(Synthetic.InChannels, 100 + (ulong)i)).ToArray();
        var one = xs.Select(x => r.Classify(x, set).Ranked.ToArray()).ToArray();
        var many = new ClassScore[n][];
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            for (int rep = 0; rep < 3; rep++)
                for (int i = t; i < n; i += 8) many[i] = r.Classify(xs[i], set).Ranked.ToArray();
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        for (int i = 0; i < n; i++) Assert.That(many[i], Is.EqualTo(one[i]), $"sample {i}");
    }

    [Test]
    public void SteadyStateClassifyAllocatesNothing()
    {
        var (p, noise) = RandomModel(Synthetic, 13);
        var r = ActionRecognizer.FromParameters(Synthetic, p, noise);
        var set = r.CreateCandidates(RandomClasses(Synthetic, 5, 14));
        var x = Normal(Synthetic.InChannels, 15);
        var ranked = new ClassScore[5];
        for (int i = 0; i < 3; i++) r.Classify(x, set, ranked);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) r.Classify(x, set, ranked);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    [Test]
    public void BatchReportsProgressAndHonoursCancellation()
    {
        var (p, noise) = RandomModel(Synthetic, 17);
        var r = ActionRecognizer.FromParameters(Synthetic, p, noise);
        var set = r.CreateCandidates(RandomClasses(Synthetic, 4, 18));
        var xs = Enumerable.Range(0, 5).Select(i => Normal(Synthetic.InChannels, 200 + (ulong)i)).ToList();
        var seen = new List<BatchProgress>();
        var progress = new SyncProgress<BatchProgress>(seen.Add);
        var preds = r.ClassifyBatch(xs, set, progress);
        Assert.That(preds.Select(q => q.Label), Is.EqualTo(xs.Select(x => r.Classify(x, set).Label)));
        Assert.That(seen, Is.EqualTo(Enumerable.Range(1, 5).Select(i => new BatchProgress(i, 5))));

        using var cts = new CancellationTokenSource();
        var cancelAfterTwo = new SyncProgress<BatchProgress>(b => { if (b.Done == 2) cts.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => r.ClassifyBatch(xs, set, cancelAfterTwo, cts.Token));
        Assert.Throws<OperationCanceledException>(() => r.Classify(xs[0], set, cts.Token));
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    [Test]
    public void BadFeatureInputGivesOneClearException()
    {
        var (p, noise) = RandomModel(Synthetic, 19);
        var r = ActionRecognizer.FromParameters(Synthetic, p, noise);
        var set = r.CreateCandidates(RandomClasses(Synthetic, 3, 20));
        var e = Assert.Throws<ArgumentException>(() => r.Classify(new float[5], set));
        Assert.That(e!.Message, Does.Contain("5 values").And.Contain("expects 12"));
        var nan = new float[12]; nan[7] = float.NaN;
        e = Assert.Throws<ArgumentException>(() => r.Classify(nan, set));
        Assert.That(e!.Message, Does.Contain("value 7 is NaN"));
        var other = ActionRecognizer.FromParameters(Synthetic, p, noise);
        e = Assert.Throws<ArgumentException>(() => other.Classify(new float[12], set));
        Assert.That(e!.Message, Does.Contain("another recognizer"));
        e = Assert.Throws<ArgumentException>(() => r.ClassifyBatch([new float[12], new float[3]], set));
        Assert.That(e!.Message, Does.StartWith("batch item 1"));
        // An empty batch still checks its arguments and the token.
        Assert.Throws<OperationCanceledException>(() => r.ClassifyBatch(Array.Empty<float[]>(), set, cancel: new CancellationToken(canceled: true)));
        Assert.Throws<ArgumentNullException>(() => r.ClassifyBatch(Array.Empty<float[]>(), null!));
        e = Assert.Throws<ArgumentException>(() => r.ClassifyBatch([new float[12], null!], set));
        Assert.That(e!.Message, Does.StartWith("batch item 1: the feature is null"));
        var ioe = Assert.Throws<InvalidOperationException>(() => r.CreateCandidates([new ActionClass("wave", "a person waves")]));
        Assert.That(ioe!.Message, Does.Contain("no text encoder"));
        e = Assert.Throws<ArgumentException>(() => r.CreateCandidates(RandomClasses(Synthetic with { CondSize = 8 }, 2, 1)));
        Assert.That(e!.Message, Does.Contain("8 wide").And.Contain("cond_size is 10"));
    }

    /// <summary>Non-finite weights or noises, a config outside its ranges, and features so large that the scores overflow
    /// are refused with what and where, instead of NaN scores ranked as a normal prediction.</summary>
    [Test]
    public void NonFiniteModelsAndOverflowingScoresAreRefused()
    {
        var (p, noise) = RandomModel(Synthetic, 19);
        var badParams = (float[])p.Clone(); badParams[40] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => ActionRecognizer.FromParameters(Synthetic, badParams, noise));
        Assert.That(e!.Message, Does.Contain("parameter x_embedder.").And.Contain("NaN"));
        var badNoise = (float[])noise.Clone(); badNoise[2] = float.PositiveInfinity;
        e = Assert.Throws<ArgumentException>(() => ActionRecognizer.FromParameters(Synthetic, p, badNoise));
        Assert.That(e!.Message, Does.Contain("test noise value 2"));
        foreach (var (cfg, want) in new[]
        {
            (Synthetic with { BetaStart = -1 }, "0 < beta_start < beta_end < 1"),
            (Synthetic with { BetaEnd = 1.0 }, "0 < beta_start < beta_end < 1"),
            (Synthetic with { MlpRatio = 0 }, "mlp_ratio"),
            (Synthetic with { Steps = 0, TTest = 0 }, "num_steps must be positive, got 0"),
        })
            Assert.That(Assert.Throws<ArgumentException>(() => cfg.Validated())!.Message, Does.Contain(want), cfg.ToString());

        var r = ActionRecognizer.FromParameters(Synthetic, p, noise);
        var set = r.CreateCandidates(RandomClasses(Synthetic, 3, 20));
        e = Assert.Throws<ArgumentException>(() => r.Classify(Enumerable.Repeat(float.MaxValue, 12).ToArray(), set));
        Assert.That(e!.Message, Does.Contain("denoising error of candidate 0").And.Contain("overflow"));

        // The same from a file: the tensor is named, and a config that does not describe a DiT is a format error.
        var dir = TempDir();
        try
        {
            string path = Path.Combine(dir, "model.safetensors");
            SaveBundleModel(path, Synthetic, p, noise);
            var f = SafeTensorsFile.Read(path);
            var tensors = f.Names.Select(n => f[n]).ToList();
            var w = tensors.First(t => t.Name == "fl_pos_embed");
            var bad = w.ToFloat32(); bad[5] = float.NaN;
            tensors[tensors.IndexOf(w)] = SafeTensor.FromFloat32(w.Name, w.Shape, bad);
            SafeTensorsFile.Write(path, tensors, f.Metadata);
            var te = Assert.Throws<TensorFormatException>(() => ActionRecognizer.FromCheckpoint(path));
            Assert.That(te!.Message, Does.Contain("'fl_pos_embed' holds NaN at element 5"));
            var meta = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
            foreach (var config in new[] { "[1, 2]", "{\"in_channels\": \"12\"}", "{\"in_channels\": 1.5}" })
            {
                meta["config"] = config;
                SafeTensorsFile.Write(path, [SafeTensor.FromFloat32("x", [1], new float[1])], meta);
                te = Assert.Throws<TensorFormatException>(() => ActionRecognizer.FromCheckpoint(path), config);
                Assert.That(te!.Message, Does.Contain("metadata 'config' does not describe a DiT"));
            }
            // A small file whose config claims a huge model fails on the first tensor, before the model is allocated.
            meta["config"] = Synthetic.ToJson().Replace("\"hidden_size\":24", "\"hidden_size\":4096", StringComparison.Ordinal).Replace("\"depth\":3", "\"depth\":1", StringComparison.Ordinal);
            SafeTensorsFile.Write(path, tensors, meta);
            long before = GC.GetAllocatedBytesForCurrentThread();
            te = Assert.Throws<TensorFormatException>(() => ActionRecognizer.FromCheckpoint(path));
            Assert.That(te!.Message, Does.Contain("the config implies"));
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(64L << 20), "no multi-gigabyte buffer first");
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Candidates in words: a label or description the tokenizer reduces to nothing, or two candidates with one
    /// label, are refused naming the candidate's position in the caller's list.</summary>
    [Test]
    public void CandidatesInWordsAreCheckedOneByOne()
    {
        var cfg = Synthetic with { CondSize = 768, Depth = 1 };
        var (p, noise) = RandomModel(cfg, 23);
        var r = ActionRecognizer.FromParameters(cfg, p, noise, new ClassPromptEncoder(Text.TextFixture.Weights, Text.TextFixture.Tokenizer));
        ActionClass ok1 = new("wave", "a person waves a hand"), ok2 = new("kick", "a leg swings forward");
        foreach (var (bad, want) in new[]
        {
            (new ActionClass("foo", "   "), "candidate 2 ('foo'): the description is empty"),
            (new ActionClass("\u0001\u0002", "a person jumps"), "candidate 2 ('\u0001\u0002'): the label is empty or has no characters the tokenizer keeps"),
            (new ActionClass("jump", "\uFFFD\u200B"), "candidate 2 ('jump'): the description is empty or has no characters"),
            (new ActionClass("wave", "another wave"), "candidates 0 and 2 are both labelled 'wave'"),
        })
        {
            var e = Assert.Throws<ArgumentException>(() => r.CreateCandidates([ok1, ok2, bad]));
            Assert.That(e!.Message, Does.StartWith(want).And.Contain("(Parameter 'classes')"));
        }
        Assert.That(r.CreateCandidates([ok1, ok2]).Count, Is.EqualTo(2));
    }

    [Test]
    public void BadSkeletonInputGivesOneClearException()
    {
        var e = Assert.Throws<ArgumentException>(() => new SkeletonSequence(new float[4 * 24 * 3], 4, 1, joints: 24));
        Assert.That(e!.Message, Does.Contain("24 joints").And.Contain("expected 25"));
        var data = new float[3 * 2 * 25 * 3];
        data[((2 * 2 + 1) * 25 + 7) * 3 + 2] = float.NaN;
        e = Assert.Throws<ArgumentException>(() => new SkeletonSequence(data, 3, 2));
        Assert.That(e!.Message, Does.Contain("frame 2, person 1, joint 7, axis z"));
        e = Assert.Throws<ArgumentException>(() => new SkeletonSequence([], 0));
        Assert.That(e!.Message, Does.Contain("empty skeleton sequence"));
        e = Assert.Throws<ArgumentException>(() => new SkeletonSequence(new float[10], 2));
        Assert.That(e!.Message, Does.Contain("expected frames*persons*25*3"));
        e = Assert.Throws<ArgumentException>(() => new SkeletonSequence(new float[75 * 3], 1, 3));
        Assert.That(e!.Message, Does.Contain("3 persons"));
    }

    /// <summary>The skeleton seam: a sequence goes through the encoder into the same scoring as a feature.</summary>
    [Test]
    public void SkeletonsGoThroughTheEncoderSeam()
    {
        var (p, noise) = RandomModel(Synthetic, 21);
        var r = ActionRecognizer.FromParameters(Synthetic, p, noise);
        var set = r.CreateCandidates(RandomClasses(Synthetic, 4, 22));
        var seq = new SkeletonSequence(Normal(5 * 25 * 3, 23), 5);
        Assert.Throws<InvalidOperationException>(() => r.Classify(seq, set));
        var enc = new MeanJointEncoder(Synthetic.InChannels);
        r.SkeletonEncoder = enc;
        var feature = new float[Synthetic.InChannels];
        enc.Encode(seq, feature);
        Assert.That(r.Classify(seq, set).Ranked, Is.EqualTo(r.Classify(feature, set).Ranked));
        Assert.That(r.ClassifyBatch([seq, seq], set).Select(q => q.Label), Is.EqualTo(new[] { r.Classify(feature, set).Label, r.Classify(feature, set).Label }));
    }

    // A stand-in encoder for the seam test: per-axis means over frames and joints, tiled.
    private sealed class MeanJointEncoder(int size) : ISkeletonEncoder
    {
        public int FeatureSize => size;
        public void Encode(SkeletonSequence s, Span<float> feature)
        {
            var d = s.Data.Span;
            for (int i = 0; i < size; i++)
            {
                double acc = 0; int cnt = 0;
                for (int v = i % 3; v < d.Length; v += 3) { acc += d[v]; cnt++; }
                feature[i] = (float)(acc / cnt) * (1 + i);
            }
        }
    }

    private static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "tdsm-infer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    private static void SaveBundleModel(string path, DiTConfig cfg, float[] parameters, float[] noise)
    {
        var dit = new DiT(cfg, new ReferenceOps());
        dit.LoadParameters(parameters);
        Checkpoint.SaveModel(path, dit, noise);
    }

    [Test]
    public void ABundleLoadsAndClassifiesLikeTheParametersItWasSavedFrom()
    {
        var dir = TempDir();
        try
        {
            var (p, noise) = RandomModel(Synthetic, 25);
            SaveBundleModel(Path.Combine(dir, ActionRecognizer.ModelFileName), Synthetic, p, noise);
            var classes = RandomClasses(Synthetic, 6, 26);
            classes.Save(Path.Combine(dir, ActionRecognizer.ClassFeaturesFileName));
            var loaded = ActionRecognizer.Load(dir);
            Assert.That(loaded.BundledCandidates!.Labels, Is.EqualTo(classes.Names));
            Assert.That(loaded.CanEncodeText, Is.False);
            var direct = ActionRecognizer.FromParameters(Synthetic, p, noise);
            var x = Normal(Synthetic.InChannels, 27);
            Assert.That(loaded.Classify(x, loaded.BundledCandidates).Ranked, Is.EqualTo(direct.Classify(x, direct.CreateCandidates(classes)).Ranked));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void BadBundlesGiveOneClearException()
    {
        var dir = TempDir();
        try
        {
            Assert.Throws<DirectoryNotFoundException>(() => ActionRecognizer.Load(Path.Combine(dir, "nope")));
            var fnf = Assert.Throws<FileNotFoundException>(() => ActionRecognizer.Load(dir));
            Assert.That(fnf!.Message, Does.Contain("model.safetensors"));

            // A checkpoint whose config disagrees with its tensors: tensors of hidden 24, config says 32.
            var (p, noise) = RandomModel(Synthetic, 29);
            string model = Path.Combine(dir, ActionRecognizer.ModelFileName);
            SaveBundleModel(model, Synthetic, p, noise);
            var f = SafeTensorsFile.Read(model);
            var meta = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
            meta["config"] = (Synthetic with { Hidden = 32 }).ToJson();
            SafeTensorsFile.Write(model, f.Tensors, meta);
            var tfe = Assert.Throws<TensorFormatException>(() => ActionRecognizer.Load(dir));
            Assert.That(tfe!.Message, Does.Contain("x_embedder.weight").And.Contain("[24,12]").And.Contain("[32,12]"));

            // No test noise.
            SafeTensorsFile.Write(model, f.Tensors.Where(t => t.Name != "test_noise"), f.Metadata);
            tfe = Assert.Throws<TensorFormatException>(() => ActionRecognizer.Load(dir));
            Assert.That(tfe!.Message, Does.Contain("test_noise"));

            // An unknown dtype in the header.
            WriteRawSafeTensors(model, """{"x_embedder.weight":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}""", 4);
            tfe = Assert.Throws<TensorFormatException>(() => ActionRecognizer.Load(dir));
            Assert.That(tfe!.Message, Does.Contain("F7"));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static void WriteRawSafeTensors(string path, string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        using var s = File.Create(path);
        s.Write(BitConverter.GetBytes((ulong)h.Length));
        s.Write(h);
        s.Write(new byte[dataBytes]);
    }

    [Test]
    public void ABundleWithAnStGcnEncoderClassifiesRawSkeletons()
    {
        var dir = TempDir();
        try
        {
            var encoder = new Tdsm.StGcn.StGcnModel(Tdsm.StGcn.StGcnConfig.Small(5), new Tdsm.StGcn.StGcnCpuOps(), seed: 1);
            Tdsm.StGcn.StGcnCheckpoint.Save(Path.Combine(dir, ActionRecognizer.EncoderFileName), encoder);
            var cfg = Synthetic with { InChannels = encoder.Config.FeatureDim };
            var (p, noise) = RandomModel(cfg, 31);
            SaveBundleModel(Path.Combine(dir, ActionRecognizer.ModelFileName), cfg, p, noise);
            var r = ActionRecognizer.Load(dir);
            Assert.That(r.CanEncodeSkeletons, Is.True);
            var set = r.CreateCandidates(RandomClasses(cfg, 4, 32));

            // Raw two-person sequence; the expected feature is built independently of the seam's layout code.
            int t = 20;
            var raw = Normal(t * 2 * 25 * 3, 33);
            var x = new float[3 * t * 25 * 2];
            for (int f = 0; f < t; f++) for (int m = 0; m < 2; m++) for (int v = 0; v < 25; v++) for (int c = 0; c < 3; c++)
                x[Tdsm.Data.SkeletonPreprocessing.Index(c, f, v, m, t)] = raw[((f * 2 + m) * 25 + v) * 3 + c];
            Tdsm.Data.SkeletonPreprocessing.PreNormalize(x, t);
            var feature = Tdsm.StGcn.StGcnTraining.ExtractFeatures(encoder, x, 1, t, 2);
            Assert.That(r.Classify(new SkeletonSequence(raw, t, 2), set).Ranked, Is.EqualTo(r.Classify(feature, set).Ranked));
            // Preprocessed input skips the pre-normalisation.
            var pre = new float[raw.Length];
            for (int f = 0; f < t; f++) for (int m = 0; m < 2; m++) for (int v = 0; v < 25; v++) for (int c = 0; c < 3; c++)
                pre[((f * 2 + m) * 25 + v) * 3 + c] = x[Tdsm.Data.SkeletonPreprocessing.Index(c, f, v, m, t)];
            Assert.That(r.Classify(new SkeletonSequence(pre, t, 2, preprocessed: true), set).Ranked, Is.EqualTo(r.Classify(feature, set).Ranked));

            // An encoder whose feature width disagrees with the DiT.
            SaveBundleModel(Path.Combine(dir, ActionRecognizer.ModelFileName), Synthetic, RandomModel(Synthetic, 34).Params, RandomModel(Synthetic, 34).Noise);
            var e = Assert.Throws<TensorFormatException>(() => ActionRecognizer.Load(dir));
            Assert.That(e!.Message, Does.Contain("128-wide").And.Contain("in_channels is 12"));
        }
        finally { Directory.Delete(dir, true); }
    }
}
