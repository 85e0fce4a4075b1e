using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.Tests.Data;
using Tdsm.Trainer;
using Tdsm.Trainer.Configs;

namespace Tdsm.Tests.Trainer;

public class ConfigTests : TempDirTest
{
    private static string DataRoot => TestPaths.Shared("data");

    // The official KAIST-VICLab/TDSM config/tdsm_ntu60_unseen5.yaml, key for key.
    private const string OfficialYaml = """
        seed: 2025
        num_worker: 4
        work_dir: ./tdsm/results/ntu60/unseen5

        phase: train

        # feeder
        feeder: feeders.feeder.FeatureFeeder
        train_feeder_args:
          path: ./data/sk_feats/shift_ntu60_5_r/
          split: train

        val_feeder_args:
          path: ./data/sk_feats/shift_ntu60_5_r/
          split: train

        test_feeder_args:
          path: ./data/sk_feats/shift_ntu60_5_r/
          split: val

        #optim
        optimizer: AdamW
        learning_rate: 0.0001
        weight_decay: 0.01
        lr_scheduler: cosine
        num_iter: 50000
        num_warmup: 100

        # logging
        log_iter: 2000
        save_iter: 50000
        save_epoch: 50
        eval_epoch: 10
        val_epoch: 50

        # training
        batch_size: 256  # duplicate
        test_batch_size: 512
        gpu: 0

        # zsl
        unseen_label: 5
        unseen_label_path: ./data/label_splits/ntu60/ru5.npy
        prediction_type: epsilon
        d_weight: 1.0
        t_weight: 1.0
        num_noise: 3

        # denoising model
        in_channels: 256
        hidden_size: 768
        depth: 12
        num_heads: 12

        # test
        num_steps: 50
        idx_inference_step: 25
        """;

    private string Write(string name, string text)
    {
        var p = Path.Combine(Dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, text);
        return p;
    }

    [Test]
    public void EveryPresetResolvesToDisjointSplitsThatCoverTheDataset()
    {
        Assert.That(SplitPresets.Names, Has.Count.EqualTo(8 + 9 + 2));
        foreach (var name in SplitPresets.Names)
        {
            var spec = SplitPresets.Get(name, DataRoot);
            if (spec.Kind == SplitKind.Files)
            {
                Assert.That(File.Exists(spec.UnseenPath), Is.True, spec.UnseenPath);
                Assert.That(File.Exists(spec.SeenPath), Is.True, spec.SeenPath);
            }
            var split = spec.Resolve();
            Assert.That(split.Seen.Intersect(split.Unseen), Is.Empty, name);
            Assert.That(split.Seen.Length + split.Unseen.Length, Is.EqualTo(spec.ClassCount), name);
            Assert.That(split.Seen.Concat(split.Unseen).Distinct().Count(), Is.EqualTo(spec.ClassCount), name);
        }
        // Sizes of the paper's settings, seen/unseen.
        foreach (var (name, seen, unseen) in new[] { ("ntu60-u5", 55, 5), ("ntu60-u12", 48, 12), ("ntu120-u10", 110, 10), ("ntu120-u24", 96, 24),
                     ("ntu60-u20", 40, 20), ("ntu60-u30", 30, 30), ("ntu120-u40", 80, 40), ("ntu120-u60", 60, 60), ("smie-pku51-2", 46, 5) })
        {
            var s = SplitPresets.Get(name, DataRoot).Resolve();
            Assert.That((s.Seen.Length, s.Unseen.Length), Is.EqualTo((seen, unseen)), name);
        }
    }

    [Test]
    public void SynsePresetsAreTheSynseSplits()
    {
        // smie_random_splits.json also records SynSE's unseen lists (from another source than the .npy files).
        var json = LabelSplit.ReadSmieSplits(Path.Combine(DataRoot, "label_splits", "smie_random_splits.json"));
        foreach (var (preset, key) in new[] { ("ntu60-u5", "synse_unseen_5"), ("ntu60-u12", "synse_unseen_12"), ("ntu120-u10", "synse_unseen_10"), ("ntu120-u24", "synse_unseen_24") })
        {
            Assert.That(SplitPresets.Protocol[preset], Is.EqualTo("SynSE"));
            Assert.That(SplitPresets.Get(preset, DataRoot).Resolve().Unseen.Order(), Is.EqualTo(json[key].Order()), preset);
        }
        Assert.That(SplitPresets.Get("smie-ntu120-1", DataRoot).Resolve().Unseen, Is.EqualTo(json["split_4"]));
    }

    [Test]
    public void OfficialYamlLoads()
    {
        var path = Write(Path.Combine("config", "tdsm_ntu60_unseen5.yaml"), OfficialYaml);
        var notes = new StringWriter();
        var c = RunConfigLoader.Load(path, DataRoot, notes);
        Assert.Multiple(() =>
        {
            Assert.That(c.Train.Iterations, Is.EqualTo(50_000));
            Assert.That(c.Train.Batch, Is.EqualTo(256));
            Assert.That(c.Train.Lr, Is.EqualTo(1e-4));
            Assert.That(c.Train.Warmup, Is.EqualTo(100));
            Assert.That(c.Train.WeightDecay, Is.EqualTo(0.01));
            Assert.That(c.Train.Seed, Is.EqualTo(2025UL));
            Assert.That(c.Train.LogEvery, Is.EqualTo(2000));
            Assert.That(c.Train.CheckpointEvery, Is.EqualTo(50_000));
            Assert.That(c.Seeds, Is.EqualTo(new[] { 2025UL }));
            Assert.That((c.Dit.InChannels, c.Dit.Hidden, c.Dit.Depth, c.Dit.Heads, c.Dit.Steps, c.Dit.TTest), Is.EqualTo((256, 768, 12, 12, 50, 25)));
            Assert.That(c.NumNoise, Is.EqualTo(3));
            Assert.That(c.OutputDir, Is.EqualTo("./tdsm/results/ntu60/unseen5"));
            Assert.That(c.Data, Is.EqualTo(DataSource.Features));
            Assert.That(c.DataPath, Does.EndWith(Path.Combine("data", "sk_feats", "shift_ntu60_5_r")));
            Assert.That(c.Split.Dataset, Is.EqualTo("ntu60"));
            Assert.That(c.Split.SeenPath, Does.EndWith("rs55.npy"));
        });
        var split = c.Split.Resolve();
        Assert.That(split.Unseen, Is.EqualTo(LabelSplit.ReadIds(Path.Combine(DataRoot, "label_splits", "ntu60", "ru5.npy"))));
        Assert.That(notes.ToString(), Does.Contain("'num_worker'").And.Contains("'gpu'"));
        Assert.That(RunConfigLoader.KnownKeys, Does.Contain("idx_inference_step"));
    }

    [Test]
    public void OwnKeysAndPresetLoad()
    {
        var path = Write("run.yaml", """
            preset: ntu120-u24
            num_seeds: 3
            seed: 10
            num-iter: 500
            dit_preset: small
            baseline:
              epochs: 5
              learn_temperature: true
            gzsl:
              keep_seen: 0.8
            """);
        var c = RunConfigLoader.Load(path, DataRoot);
        Assert.That(c.Split.Name, Is.EqualTo("ntu120-u24"));
        Assert.That(c.Seeds, Is.EqualTo(new[] { 10UL, 11UL, 12UL }));
        Assert.That(c.Train.Iterations, Is.EqualTo(500));
        Assert.That(c.Train.Batch, Is.EqualTo(256), "the paper preset's batch stays");
        Assert.That(c.Dit.Hidden, Is.EqualTo(128));
        Assert.That((c.Baseline.Epochs, c.Baseline.LearnTemperature, c.Baseline.Seed), Is.EqualTo((5, true, 10UL)));
        Assert.That((c.Gzsl.Enabled, c.Gzsl.KeepSeen), Is.EqualTo((true, 0.8)));
        Assert.That(RunConfig.Preset("default", DataRoot).Split.Resolve().Unseen, Has.Length.EqualTo(8));
    }

    [Test]
    public void UnknownKeysAreReportedWithFileAndLine()
    {
        var path = Write("bad.yaml", "num_iter: 10\nnum_itr: 20\nbaseline:\n  epoch: 3\n");
        var e = Assert.Throws<ConfigException>(() => RunConfigLoader.Load(path, DataRoot));
        Assert.That(e!.Message, Does.Contain(path).And.Contain(":2:").And.Contain("'num_itr' (line 2)").And.Contain("'baseline.epoch' (line 4)"));
    }

    [Test]
    public void BadValuesNameKeyAndLine()
    {
        var e = Assert.Throws<ConfigException>(() => RunConfigLoader.Parse("seed: 1\nbatch_size: many\n", "x.yaml", DataRoot));
        Assert.That(e!.Message, Is.EqualTo("x.yaml:2: 'batch_size' expects an integer, got 'many'"));
        e = Assert.Throws<ConfigException>(() => RunConfigLoader.Parse("optimizer: SGD\n", "x.yaml", DataRoot));
        Assert.That(e!.Message, Does.Contain("x.yaml:1:").And.Contain("AdamW").IgnoreCase);
        e = Assert.Throws<ConfigException>(() => RunConfigLoader.Parse("split: ntu60-u7\n", "x.yaml", DataRoot));
        Assert.That(e!.Message, Does.Contain("x.yaml:1:").And.Contain("ntu60-u7").And.Contain("ntu60-u5"));
        e = Assert.Throws<ConfigException>(() => RunConfigLoader.Parse("hidden_size: 100\nnum_heads: 12\n", "x.yaml", DataRoot));
        Assert.That(e!.Message, Does.Contain("not divisible"));
        e = Assert.Throws<ConfigException>(() => RunConfigLoader.Parse("seed: [1\n", "x.yaml", DataRoot));
        Assert.That(e!.Message, Does.StartWith("x.yaml:").And.Contain("not valid YAML"));
    }

    [Test]
    public void MissingFilesAreNamed()
    {
        var missing = Path.Combine(Dir, "nope.yaml");
        var e = Assert.Throws<ConfigException>(() => RunConfigLoader.Load(missing, DataRoot));
        Assert.That(e!.Message, Does.Contain(missing).And.Contain("not found"));
        var path = Write("c.yaml", "seed: 1\nunseen_label_path: ./splits/ru9.npy\n");
        e = Assert.Throws<ConfigException>(() => RunConfigLoader.Load(path, DataRoot));
        Assert.That(e!.Message, Does.Contain($"{path}:2:").And.Contain("./splits/ru9.npy").And.Contain("not found"));
        path = Write("t.yaml", "text_features: feats/missing.safetensors\n");
        e = Assert.Throws<ConfigException>(() => RunConfigLoader.Load(path, DataRoot));
        Assert.That(e!.Message, Does.Contain($"{path}:1:").And.Contain("missing.safetensors"));
    }

    /// <summary>Through the command line a bad config or preset is an error message with file and line and exit code 2, not a crash.</summary>
    [Test]
    public void TheRunCommandReportsABadConfigWithoutAStackTrace()
    {
        string path = Path.Combine(Dir, "bad.yaml");
        File.WriteAllText(path, "num_iter: 10\nbogus_key: 3\n");
        foreach (var (args, want) in new[]
        {
            (new[] { "run", "--config", path }, $"{path}:2: unknown key 'bogus_key'"),
            (new[] { "run", "--preset", "ntu60-u7" }, "'ntu60-u7' is not a paper setting"),
            (new[] { "run", "--config", Path.Combine(Dir, "missing.yaml") }, "missing.yaml"),
        })
        {
            var err = new StringWriter();
            int rc = Cli.Run(args, TextWriter.Null, err);
            Assert.That(rc, Is.EqualTo(2), string.Join(' ', args));
            Assert.That(err.ToString(), Does.StartWith("run: error: ").And.Contain(want).And.Not.Contain("   at "));
        }
    }

    /// <summary>Counts and sizes out of range are refused before any stage runs: nothing is generated or written.</summary>
    [TestCase("--seeds", "0", 2, "--seeds must be at least 1, got 0")]
    [TestCase("--seeds", "-3", 2, "--seeds must be at least 1, got -3")]
    [TestCase("--frames", "0", 2, "--frames and --encoder-epochs must be positive")]
    [TestCase("--iterations", "-5", 1, "num_iter (iterations) must be positive, got -5")]
    [TestCase("--batch", "0", 1, "batch_size must be positive, got 0")]
    public void TheRunCommandRefusesBadCountsBeforeItStarts(string option, string value, int code, string want)
    {
        string run = Path.Combine(Dir, "run");
        var err = new StringWriter();
        int rc = Cli.Run(["run", "--out", run, option, value], TextWriter.Null, err);
        Assert.That(rc, Is.EqualTo(code));
        Assert.That(err.ToString(), Does.Contain(want).And.Not.Contain("   at "));
        Assert.That(Directory.Exists(run), Is.False, "no run folder");
    }

    [Test]
    public void OverlappingSeenAndUnseenIsAnError()
    {
        Directory.CreateDirectory(Path.Combine(Dir, "ntu60"));
        var unseen = new long[] { 3, 7, 11, 20, 40 };
        var seen = Enumerable.Range(0, 60).Where(i => i != 3 && i != 7 && i != 11 && i != 20 && i != 40).Select(i => (long)i).ToList();
        seen[0] = 7; // class 7 is now in both lists (and class 0 in neither)
        Npy.Write(Path.Combine(Dir, "ntu60", "ru5.npy"), [5], unseen);
        Npy.Write(Path.Combine(Dir, "ntu60", "rs55.npy"), [55], seen.ToArray());
        var path = Write("o.yaml", "unseen_label_path: ntu60/ru5.npy\n");
        var e = Assert.Throws<ConfigException>(() => RunConfigLoader.Load(path, DataRoot));
        Assert.That(e!.Message, Does.Contain($"{path}:1:").And.Contain("overlap").And.Contain("7").And.Contain("rs55.npy"));
        // unseen_label must agree with the file.
        Npy.Write(Path.Combine(Dir, "ntu60", "rs55.npy"), [55], Enumerable.Range(0, 60).Where(i => !unseen.Contains(i)).Select(i => (long)i).ToArray());
        path = Write("o2.yaml", "unseen_label: 6\nunseen_label_path: ntu60/ru5.npy\n");
        e = Assert.Throws<ConfigException>(() => RunConfigLoader.Load(path, DataRoot));
        Assert.That(e!.Message, Does.Contain("unseen_label says 6"));
    }
}
