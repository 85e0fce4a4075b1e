using Tdsm.Formats;
using Tdsm.StGcn;

namespace Tdsm.Tests.StGcn;

/// <summary>Seen-class pre-training, the optimiser and schedule, feature extraction and checkpoints.</summary>
public class StGcnTrainingTests
{
    private static readonly StGcnConfig Tiny = new(3, 3, [new(3, 8, 1, false), new(8, 8, 1, true)]);
    private string _dir = "";

    [SetUp] public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "tdsm-stgcn-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    // x (N,3,T,25,2): class c moves channel c with its own frequency; person 2 absent (zeros); noise 0.3.
    private static (float[] X, int[] Y) Synthetic(int n, int t, int classes, int seed)
    {
        var rng = new Random(seed);
        const int v = 25, m = 2;
        var x = new float[n * 3 * t * v * m];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            int cls = i % classes;
            y[i] = cls;
            for (int c = 0; c < 3; c++)
                for (int ti = 0; ti < t; ti++)
                    for (int vi = 0; vi < v; vi++)
                    {
                        double signal = c == cls % 3 ? Math.Sin(2 * Math.PI * (1 + cls) * ti / t + vi * 0.2) : 0;
                        x[(((i * 3 + c) * t + ti) * v + vi) * m] = (float)(signal + 0.3 * (rng.NextDouble() * 2 - 1));
                    }
        }
        return (x, y);
    }

    [Test]
    public void TrainingOnATinySyntheticSetReducesTheLoss()
    {
        var (x, y) = Synthetic(24, 12, 3, seed: 5);
        var model = new StGcnModel(Tiny, new StGcnCpuOps(), seed: 1);
        var stats = StGcnTraining.Train(model, x, y, 24, 12, 2, new StGcnTrainOptions { Epochs = 12, BatchSize = 8, Seed = 3 }, TestContext.Out);
        Assert.That(stats, Has.Count.EqualTo(12));
        Assert.That(stats[^1].MeanLoss, Is.Not.NaN.And.LessThan(0.5 * stats[0].MeanLoss), $"loss {stats[0].MeanLoss:F4} -> {stats[^1].MeanLoss:F4}");
        var pred = StGcnTraining.Predict(model, x, 24, 12, 2, batchSize: 10);
        double acc = pred.Zip(y).Count(p => p.First == p.Second) / 24.0;
        TestContext.Out.WriteLine($"eval-mode train accuracy {acc:P0}");
        Assert.That(acc, Is.GreaterThan(0.6));
    }

    [Test]
    public void TrainingIsDeterministicForASeed()
    {
        var (x, y) = Synthetic(16, 10, 3, seed: 6);
        var opts = new StGcnTrainOptions { Epochs = 2, BatchSize = 8, Seed = 9, Augment = true };
        var a = new StGcnModel(Tiny, new StGcnCpuOps(), seed: 2);
        var b = new StGcnModel(Tiny, new StGcnCpuOps(), seed: 2);
        StGcnTraining.Train(a, x, y, 16, 10, 2, opts);
        StGcnTraining.Train(b, x, y, 16, 10, 2, opts);
        Assert.That(a.Parameters, Is.EqualTo(b.Parameters));
        Assert.That(a.Buffers, Is.EqualTo(b.Buffers));
    }

    [Test]
    public void OnlySeenClassesReachTheEncoder()
    {
        // 6 classes, split: seen {4, 0, 2}, unseen {1, 3, 5}. Unseen samples are NaN: if any reached
        // training, the loss and the parameters would turn NaN.
        var (x, y) = Synthetic(36, 10, 6, seed: 7);
        int sample = 3 * 10 * 25 * 2;
        int[] unseen = [1, 3, 5];
        for (int i = 0; i < 36; i++) if (unseen.Contains(y[i])) x.AsSpan(i * sample, sample).Fill(float.NaN);
        var map = new SeenClassMap([4, 0, 2]);
        var (xs, ys) = map.SelectSeen(x, y, sample);
        Assert.That(ys, Has.Length.EqualTo(18));
        Assert.That(ys, Is.All.InRange(0, 2));
        Assert.That(ys.Select(map.ToOriginal), Is.EqualTo(y.Where(c => !unseen.Contains(c)).ToArray()));
        Assert.That(xs.Any(float.IsNaN), Is.False);
        foreach (var u in unseen) Assert.Throws<ArgumentException>(() => map.ToLocal(u));

        var model = new StGcnModel(Tiny with { NumClass = map.Count }, new StGcnCpuOps(), seed: 3);
        var stats = StGcnTraining.Train(model, xs, ys, 18, 10, 2, new StGcnTrainOptions { Epochs = 2, BatchSize = 6 });
        Assert.That(stats.All(s => double.IsFinite(s.MeanLoss)), Is.True);
        Assert.That(model.Parameters.All(float.IsFinite), Is.True);
        // training labels outside the classifier are rejected rather than silently used
        Assert.Throws<ArgumentException>(() => StGcnTraining.Train(model, x.AsSpan(0, 6 * sample).ToArray(), y[..6], 6, 10, 2, new StGcnTrainOptions { Epochs = 1 }));
    }

    [Test]
    public void SeenClassMapRejectsDuplicates()
    {
        var ex = Assert.Throws<ArgumentException>(() => _ = new SeenClassMap([3, 5, 3]));
        Assert.That(ex!.Message, Does.Contain("appears twice"));
    }

    [Test]
    public void AugmentationIsRigidAndKeepsPaddingZero()
    {
        int t = 4, v = 25, m = 2, rest = t * v * m;
        var rng = new Random(21);
        var s = new float[3 * rest];
        for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int ti = 0; ti < t; ti++) for (int vi = 0; vi < v; vi++) for (int c = 0; c < 3; c++) s[c * rest + (ti * v + vi) * m + 1] = 0; // person 2 absent
        var before = (float[])s.Clone();
        StGcnTraining.Augment(s, 3, rest, new Random(5), new StGcnTrainOptions { Augment = true, AugmentMaxAngle = 0.5, AugmentMaxShift = 0.2 });
        double Dist(float[] a, int p, int q) => Math.Sqrt(Enumerable.Range(0, 3).Sum(c => Math.Pow(a[c * rest + p] - a[c * rest + q], 2)));
        Assert.That(s, Is.Not.EqualTo(before));
        for (int ti = 0; ti < t; ti++)
            for (int vi = 1; vi < v; vi++)
            {
                int p = (ti * v + vi) * m, q = (ti * v) * m;
                Assert.That(Dist(s, p, q), Is.EqualTo(Dist(before, p, q)).Within(1e-5), "joint distances are kept (rotation + shift)");
                Assert.That(s[rest + p] - s[rest + q], Is.EqualTo(before[rest + p] - before[rest + q]).Within(1e-6), "the vertical axis is the rotation axis");
                for (int c = 0; c < 3; c++) Assert.That(s[c * rest + p + 1], Is.Zero, "absent person stays zero");
            }
    }

    [Test]
    public void SgdNesterovFollowsPyTorch()
    {
        // Worked by hand: mu 0.9, wd 0.1, lr 0.5; p=1, g=0.5 then 0.25.
        // d=0.6, buf=0.6, p=1-0.5*(0.6+0.54)=0.43; d=0.293, buf=0.833, p=0.43-0.5*(0.293+0.7497)=-0.09135
        var sgd = new SgdNesterov(1, 0.9, 0.1);
        float[] p = [1f];
        sgd.Step(p, [0.5f], 0.5);
        Assert.That(p[0], Is.EqualTo(0.43f).Within(1e-6f));
        sgd.Step(p, [0.25f], 0.5);
        Assert.That(p[0], Is.EqualTo(-0.09135f).Within(1e-6f));
    }

    [Test]
    public void LrSchedules()
    {
        var cos = new StGcnTrainOptions();
        Assert.That(cos.LrAt(0, 100, 0), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(cos.LrAt(50, 100, 0), Is.EqualTo(0.05).Within(1e-12));
        Assert.That(cos.LrAt(100, 100, 0), Is.EqualTo(0.0).Within(1e-12));
        var step = new StGcnTrainOptions { Schedule = LrSchedule.Step, StepMilestones = [10, 50] };
        Assert.That(step.LrAt(0, 1, 9), Is.EqualTo(0.1).Within(1e-12));
        Assert.That(step.LrAt(0, 1, 10), Is.EqualTo(0.01).Within(1e-12));
        Assert.That(step.LrAt(0, 1, 50), Is.EqualTo(0.001).Within(1e-12));
    }

    [Test]
    public void ExtractFeaturesIsEvalModeAndBatchedAndLeavesTheModelFrozen()
    {
        var path = TestPaths.Fixture("stgcn_small.safetensors");
        var f = SafeTensorsFile.Read(path);
        var model = new StGcnModel(StGcnCheckpoint.ReadConfig(f), new StGcnCpuOps());
        StGcnCheckpoint.LoadInto(model, f, "param.");
        foreach (var bv in model.Layout.Buffers) f["after.running." + bv.Name].ToFloat32().CopyTo(bv.Of(model.Buffers).AsSpan());
        var before = ((float[])model.Parameters.Clone(), (float[])model.Buffers.Clone());
        var x = f["in.x"];
        var feats = StGcnTraining.ExtractFeatures(model, x.ToFloat32(), x.Shape[0], x.Shape[2], x.Shape[4], batchSize: 3);
        Assert.That(Tdsm.Parity.ParityReport.RelativeError(feats.Select(v => (double)v).ToArray(), f["out.eval_features"].ToFloat64()), Is.Not.NaN.And.LessThan(1e-5));
        Assert.That(model.Parameters, Is.EqualTo(before.Item1));
        Assert.That(model.Buffers, Is.EqualTo(before.Item2));
    }

    [Test]
    public void CheckpointRoundTripsWithOfficialNamesAndConfig()
    {
        var model = new StGcnModel(StGcnConfig.Small(7), new StGcnCpuOps(), seed: 4);
        model.Buffers.AsSpan().Fill(0.25f);
        var path = Path.Combine(_dir, "enc.safetensors");
        StGcnCheckpoint.Save(path, model);
        var f = SafeTensorsFile.Read(path);
        Assert.That(f.Names, Does.Contain("blocks.1.res.0.weight").And.Contain("blocks.3.tcn.3.running_var").And.Contain("edge_importance.3").And.Contain("fcn.bias"));
        Assert.That(f["blocks.0.gcn.weight"].Shape, Is.EqualTo(new[] { 48, 3, 1, 1 }));
        var back = StGcnCheckpoint.Load(path, new StGcnReferenceOps());
        Assert.That(back.Config, Is.EqualTo(model.Config));
        Assert.That(back.Parameters, Is.EqualTo(model.Parameters));
        Assert.That(back.Buffers, Is.EqualTo(model.Buffers));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temporary file left");

        // a file without one tensor names the file and the tensor
        var partial = Path.Combine(_dir, "partial.safetensors");
        SafeTensorsFile.Write(partial, f.Tensors.Where(t => t.Name != "blocks.2.tcn.2.weight"), f.Metadata);
        var ex = Assert.Throws<TensorFormatException>(() => StGcnCheckpoint.Load(partial, new StGcnCpuOps()));
        Assert.That(ex!.Message, Does.Contain("blocks.2.tcn.2.weight").And.Contain("partial.safetensors"));
    }

    [Test]
    public void ConfigsAndLayoutCounts()
    {
        var fixture = StGcnCheckpoint.ReadConfig(SafeTensorsFile.Read(TestPaths.Fixture("stgcn_small.safetensors")));
        Assert.That(fixture.Layers, Is.EqualTo(new BlockSpec[] { new(3, 8, 1, false), new(8, 8, 1, true), new(8, 16, 2, true) }));
        Assert.That(StGcnConfig.FromJson(fixture.ToJson(), "roundtrip"), Is.EqualTo(fixture));
        // Paper: the ST-GCN parameter count with 60 classes, computed by hand per block:
        // gcn K*cout*(cin+1), tcn 9*cout^2+cout, 2 BN 4*cout, res conv+BN cout*(cin+1)+2cout, importance 3*625; data_bn 150; fcn 256*60+60.
        var paper = new StGcnLayout(StGcnConfig.Paper(60));
        long expect = 150 + 3 * 625 * 10 + 256 * 60 + 60;
        foreach (var l in StGcnConfig.Paper(60).Layers)
            expect += 3L * l.Cout * (l.Cin + 1) + 9L * l.Cout * l.Cout + l.Cout + 4 * l.Cout + (l.HasResidualConv ? l.Cout * (l.Cin + 1) + 2 * l.Cout : 0);
        Assert.That(paper.ParameterCount, Is.EqualTo(expect));
        TestContext.Out.WriteLine($"Paper(60) parameters {paper.ParameterCount}, Small(60) parameters {new StGcnLayout(StGcnConfig.Small(60)).ParameterCount}");
        var bad = Assert.Throws<FormatException>(() => StGcnConfig.FromJson("{\"in_channels\":3,\"num_class\":2,\"layers\":[[3,8,1,false],[4,8,1,true]]}", "cfg.json"));
        Assert.That(bad!.Message, Does.Contain("cfg.json").And.Contain("layer 1 has cin 4, expected 8"));
    }

    /// <summary>
    /// An encoder file with a config outside the NTU graph or BatchNorm ranges, a non-finite weight, or a config that
    /// claims a far larger model than the file holds, is a format error naming the file once (and the tensor), raised
    /// before the model is allocated.
    /// </summary>
    [Test]
    public void BadEncoderFilesAreFormatErrors()
    {
        string path = Path.Combine(_dir, "enc.safetensors");
        var model = new StGcnModel(Tiny, new StGcnCpuOps(), seed: 1);
        StGcnCheckpoint.Save(path, model);
        var f = SafeTensorsFile.Read(path);
        var tensors = f.Names.Select(n => f[n]).ToList();
        void Write(IEnumerable<SafeTensor> ts, string config) => SafeTensorsFile.Write(path, ts, new Dictionary<string, string> { ["config"] = config });
        foreach (var (config, want) in new[]
        {
            (Tiny.ToJson().Replace("\"V\": 25", "\"V\": 24", StringComparison.Ordinal), "V=24, but the graph is NTU RGB+D's 25 joints"),
            (Tiny.ToJson().Replace("\"bn_eps\": 1E-05", "\"bn_eps\": -1", StringComparison.Ordinal), "0 < bn_eps < 1"),
            ("{\"in_channels\": 3, \"num_class\": 3, \"layers\": [[3, 4000, 1, false], [4000, 4000, 1, true]]}", "tensor 'blocks.0.gcn.weight' has shape [24,3,1,1], expected [12000,3,1,1]"),
        })
        {
            Write(tensors, config);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<TensorFormatException>(() => StGcnCheckpoint.Load(path, new StGcnCpuOps()), config)!;
            Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(64L << 20), "no large model allocated first");
            Assert.That(e.Message, Does.Contain(want));
            Assert.That(e.Message.Split(path).Length - 1, Is.EqualTo(1), "the file is named once: " + e.Message);
        }
        var w = tensors.First(t => t.Name == "blocks.1.tcn.2.weight");
        var bad = w.ToFloat32(); bad[3] = float.NaN;
        tensors[tensors.IndexOf(w)] = SafeTensor.FromFloat32(w.Name, w.Shape, bad);
        Write(tensors, Tiny.ToJson());
        Assert.That(Assert.Throws<TensorFormatException>(() => StGcnCheckpoint.Load(path, new StGcnCpuOps()))!.Message, Does.Contain("'blocks.1.tcn.2.weight' holds NaN at element 3"));
    }
}
