using Tdsm.Cpu;
using Tdsm.Formats;
using Tdsm.Model;
using Tdsm.Tensors;
using Tdsm.Training;

namespace Tdsm.Tests.Training;

/// <summary>The training loop: it learns, it is seeded, it resumes bit-for-bit, and checkpoints are atomic.</summary>
public class TrainerTests : TempDirTest
{
    private static readonly DiTConfig Tiny = new(InChannels: 8, CondSize: 6, Hidden: 16, Depth: 2, Heads: 2, LocalTokens: 35);
    /// <summary>Five classes; each class's features sit around its own centre, and its text is a random vector.</summary>
    private static (float[] X, int[] Y, float[] Text) Data(int perClass = 12)
    {
        var rng = new Rng(99);
        int classes = 5, n = classes * perClass;
        var centres = new float[classes * Tiny.InChannels]; rng.FillNormal(centres);
        var x = new float[n * Tiny.InChannels]; var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % classes;
            for (int c = 0; c < Tiny.InChannels; c++) x[i * Tiny.InChannels + c] = centres[y[i] * Tiny.InChannels + c] + 0.1f * (float)rng.NextNormal();
        }
        var text = new float[classes * Tiny.Tokens * Tiny.CondSize]; rng.FillNormal(text);
        return (x, y, text);
    }

    private static TdsmTrainer NewTrainer(TrainConfig cfg, Action<float[], int[], float[]>? alter = null)
    {
        var (x, y, text) = Data();
        alter?.Invoke(x, y, text);
        var ops = new CpuOps();
        var model = new DiT(Tiny, ops);
        model.InitializeOfficial(cfg.Seed);
        return new TdsmTrainer(model, cfg, x, y, new TextTable(ops, text, 5, Tiny.Tokens, Tiny.CondSize), [0, 1, 2, 3, 4]);
    }

    private static float[] Params(TdsmTrainer t) { var h = new float[t.Model.Layout.Count]; t.Model.Ops.Download(t.Model.Parameters, h); return h; }

    [Test]
    public void LossFalls()
    {
        var t = NewTrainer(new TrainConfig(Iterations: 300, Batch: 16, Lr: 1e-3, Warmup: 10, Seed: 1));
        var losses = Enumerable.Range(0, 300).Select(_ => t.TrainStep().Diffusion).ToArray();
        double first = losses.Take(30).Average(), last = losses.Skip(270).Average();
        TestContext.Out.WriteLine($"mean diffusion loss: first 30 steps {first:F4}, last 30 steps {last:F4}");
        Assert.That(last, Is.Not.NaN.And.LessThan(0.8 * first));
    }

    [Test]
    public void SameSeedSameRunAndResumeIsBitForBit()
    {
        var cfg = new TrainConfig(Iterations: 200, Batch: 8, Lr: 1e-3, Warmup: 20, Seed: 7);
        var straight = NewTrainer(cfg);
        var straightCurve = Enumerable.Range(0, 200).Select(_ => straight.TrainStep()).ToArray();

        var first = NewTrainer(cfg);
        for (int i = 0; i < 100; i++) first.TrainStep();
        string model = Path.Combine(Dir, Checkpoint.ModelFile), opt = Path.Combine(Dir, Checkpoint.OptimizerFile);
        Checkpoint.SaveModel(model, first.Model, Checkpoint.DrawTestNoise(3, Tiny.InChannels, 7));
        Checkpoint.SaveOptimizer(opt, first);

        Assert.Throws<TensorFormatException>(() => Checkpoint.LoadOptimizer(opt, NewTrainer(cfg with { Seed = 12345 })), "another seed cannot continue the run");
        // Nor other data: one feature value, one label or one text value changed.
        foreach (var (what, alter) in new (string, Action<float[], int[], float[]>)[]
        {
            ("feature", (x, _, _) => x[17] += 1e-3f),
            ("label", (_, y, _) => y[3] = (y[3] + 1) % 5),
            ("text", (_, _, t) => t[100] = -t[100]),
        })
        {
            var e = Assert.Throws<TensorFormatException>(() => Checkpoint.LoadOptimizer(opt, NewTrainer(cfg, alter)), $"another {what}")!;
            Assert.That(e.Message, Does.Contain("trained on other data"));
        }
        var resumed = NewTrainer(cfg);
        resumed.Rng.State = new Rng(555).State; // the epoch-order generator must come back from the checkpoint
        var (loadedCfg, flat, noise) = Checkpoint.LoadModel(model);
        Assert.That(loadedCfg, Is.EqualTo(Tiny));
        Assert.That(noise, Has.Length.EqualTo(3 * Tiny.InChannels));
        resumed.Model.LoadParameters(flat);
        Checkpoint.LoadOptimizer(opt, resumed);
        Assert.That(resumed.Step, Is.EqualTo(100));
        for (int i = 0; i < 100; i++) resumed.TrainStep();

        float[] a = Params(straight), b = Params(resumed);
        Assert.That(b, Is.EqualTo(a), "200 straight steps and 100 + resume + 100 must give identical parameters");
        // The same run queued in groups (64 + 64 + 64 + 8 steps, one loss read-back each) is the same run.
        var again = NewTrainer(cfg);
        var queuedCurve = again.TrainSteps(200);
        float[] c = Params(again);
        Assert.That(c, Is.EqualTo(a), "same seed, same result");
        Assert.That(queuedCurve, Is.EqualTo(straightCurve), "queued steps report the same step, lr and losses as single steps");
    }

    [Test]
    public void AFailedCheckpointWriteLeavesThePreviousOneReadable()
    {
        var t = NewTrainer(new TrainConfig(Iterations: 10, Batch: 4, Seed: 3));
        string path = Path.Combine(Dir, Checkpoint.ModelFile);
        var noise = Checkpoint.DrawTestNoise(3, Tiny.InChannels, 3);
        Checkpoint.SaveModel(path, t.Model, noise);
        var before = File.ReadAllBytes(path);
        // A crash halfway through the next write (the process dying mid-stream looks the same on disk).
        Assert.Throws<IOException>(() => AtomicFile.Write(path, s => { s.Write(new byte[1000]); throw new IOException("simulated crash"); }));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Checkpoint.LoadModel(path).Config, Is.EqualTo(Tiny));
        Assert.That(Directory.GetFiles(Dir), Has.Length.EqualTo(1), "the temporary file is removed");
    }

    [Test]
    public void ACheckpointWhoseTensorsDisagreeWithItsConfigIsRejected()
    {
        var t = NewTrainer(new TrainConfig(Iterations: 10, Batch: 4, Seed: 3));
        string path = Path.Combine(Dir, Checkpoint.ModelFile);
        Checkpoint.SaveModel(path, t.Model, Checkpoint.DrawTestNoise(3, Tiny.InChannels, 3));
        var f = SafeTensorsFile.Read(path);
        var meta = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        meta["config"] = (Tiny with { Hidden = 32 }).ToJson();
        SafeTensorsFile.Write(path, f.Tensors, meta);
        var e = Assert.Throws<TensorFormatException>(() => Checkpoint.LoadModel(path));
        Assert.That(e!.Message, Does.Contain("x_embedder.weight").And.Contain("shape"));
    }
}
