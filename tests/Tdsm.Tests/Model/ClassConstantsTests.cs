using Tdsm.Cpu;
using Tdsm.Model;
using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Tests.Model;

/// <summary>
/// The zero-shot forward with per-class constants (gathered adaLN modulations, text input and
/// first-block text q/k/v) and forward-only activations must equal the plain training forward row
/// by row, on every CPU-side tier (the GPU tier's copy of this test is in Tdsm.Gpu.Tests).
/// </summary>
public class ClassConstantsTests
{
    private static IEnumerable<IOps> Tiers() => [new ReferenceOps(), new CpuOps()];

    /// <summary>Random parameters everywhere (the official init zeroes adaLN and the output, which would hide errors).</summary>
    internal static DiT RandomModel(DiTConfig cfg, IOps ops, ulong seed)
    {
        var model = new DiT(cfg, ops);
        var host = new float[model.Layout.Count];
        new Rng(seed).FillNormal(host, 0.3);
        model.LoadParameters(host);
        return model;
    }

    /// <summary>
    /// Returns (plain forward, cached forward) predictions for rows whose classes are
    /// <paramref name="rowClass"/> on a K-class text table, both at t_test.
    /// </summary>
    internal static (float[] Plain, float[] Cached) BothForwards(IOps ops, DiTConfig cfg, int k, int[] rowClass, ulong seed)
    {
        var model = RandomModel(cfg, ops, seed);
        int r = rowClass.Length, l = cfg.LocalTokens, cond = cfg.CondSize;
        var rng = new Rng(seed + 1);
        var text = new float[k * (l + 1) * cond];
        rng.FillNormal(text);
        var table = new TextTable(ops, text, k, l + 1, cond);
        var noisyHost = new float[r * cfg.InChannels];
        rng.FillNormal(noisyHost);
        Tensor Up(float[] v, params int[] shape) { var t = ops.Allocate(shape); ops.Upload(v, t); return t; }
        var noisy = Up(noisyHost, r, cfg.InChannels);
        var t = Up(Enumerable.Repeat((float)cfg.TTest, r).ToArray(), r);
        var zg = ops.Allocate(r, cond);
        var zl = ops.Allocate(r, l * cond);
        ops.GatherRows(table.Global, rowClass, zg, cond);
        ops.GatherRows(table.Local, rowClass, zl, l * cond);
        var plain = ops.Allocate(r, cfg.InChannels);
        model.Forward(model.CreateActivations(r), noisy, t, zg, zl, plain);

        var cc = model.CreateClassConstants(k + 2); // capacity above K: the views must cope
        model.PrecomputeClassConstants(cc, table.Global, table.Local, k);
        var cached = ops.Allocate(r, cfg.InChannels);
        var index = Up(rowClass.Select(c => (float)c).ToArray(), r);
        model.ForwardWithClassConstants(model.CreateInferenceActivations(r), noisy, cc, index, cached);
        var a = new float[plain.Length];
        var b = new float[cached.Length];
        ops.Download(plain, a);
        ops.Download(cached, b);
        return (a, b);
    }

    private static IEnumerable<TestCaseData> TiersAndDepths() =>
        Tiers().SelectMany(o => new[] { new TestCaseData(o, 3), new TestCaseData(o, 1) });

    /// <summary>Depth 3: the forward-only ping-pong of the streams past two blocks, the last block's text keys and values from
    /// qkv_c's rows H..3H (2H wide); depth 1: the last block is the first, its cached text q/k/v read at width 3H.</summary>
    [TestCaseSource(nameof(TiersAndDepths))]
    public void CachedForwardEqualsThePlainForward(IOps ops, int depth)
    {
        var cfg = new DiTConfig(InChannels: 7, CondSize: 9, Hidden: 12, Depth: depth, Heads: 3, LocalTokens: 4);
        int[] rowClass = [2, 0, 4, 2, 1, 3, 0];
        var (plain, cached) = BothForwards(ops, cfg, 5, rowClass, seed: 21);
        Assert.That(plain, Has.None.NaN, "the plain forward's outputs are numbers (NaN on both paths would compare equal)");
        Assert.That(plain.Count(v => Math.Abs(v) > 1e-3), Is.GreaterThan(plain.Length / 2), "the outputs are non-trivial");
        // The same ops on the same values in the same order, only gathered: agreement to float32 rounding of GEMM blocking.
        for (int i = 0; i < plain.Length; i++)
            Assert.That(cached[i], Is.EqualTo(plain[i]).Within(1e-5 * Math.Max(1, Math.Abs(plain[i]))), $"element {i} (row {i / cfg.InChannels}, class {rowClass[i / cfg.InChannels]})");
    }

    /// <summary>
    /// Training embeds the text tokens once per class of the table and gathers them by row (TdsmStep with fewer classes
    /// than rows): each row's fl_embedder outputs are the same dot products as on the gathered rows, so the step's loss,
    /// prediction and every gradient must have the plain step's bits.
    /// </summary>
    [TestCaseSource(nameof(Tiers))]
    public void TextTokensEmbeddedPerClassGiveThePlainStepsBits(IOps ops)
    {
        var cfg = new DiTConfig(InChannels: 7, CondSize: 9, Hidden: 12, Depth: 2, Heads: 3, LocalTokens: 4);
        int batch = 5, k = 6;
        var rng = new Rng(31);
        var text = new float[k * (cfg.LocalTokens + 1) * cfg.CondSize];
        rng.FillNormal(text);
        var x0 = new float[batch * cfg.InChannels]; rng.FillNormal(x0);
        var eps = new float[batch * cfg.InChannels]; rng.FillNormal(eps);
        int[] t = [3, 40, 17, 0, 49], labels = [2, 0, 5, 2, 1], negatives = [4, 0, 1, 3, 2];

        (float[] Pred, float[] Grad, TdLossValue Loss, bool ByClass) Step(int textClasses)
        {
            var model = RandomModel(cfg, ops, 22);
            var table = new TextTable(ops, text, k, cfg.LocalTokens + 1, cfg.CondSize);
            var step = new TdsmStep(model, batch, textClasses);
            model.ZeroGradients();
            var loss = step.Run(x0, eps, t, labels, negatives, table, margin: 1.0, lambda: 1.0, backward: true);
            var pred = new float[step.Pred.Length];
            ops.Download(step.Pred, pred);
            var grad = new float[model.Gradients.Length];
            ops.Download(model.Gradients, grad);
            return (pred, grad, loss, step.UTable is not null);
        }

        var plain = Step(0);
        var byClass = Step(k);
        Assert.That(plain.ByClass, Is.False);
        Assert.That(byClass.ByClass, Is.True, "6 classes for 10 rows: the step embeds per class");
        Assert.That(plain.Grad.Count(v => v != 0), Is.GreaterThan(plain.Grad.Length / 2), "the gradients are non-trivial");
        Assert.That(byClass.Loss, Is.EqualTo(plain.Loss));
        Assert.That(byClass.Pred, Is.EqualTo(plain.Pred).AsCollection);
        Assert.That(byClass.Grad, Is.EqualTo(plain.Grad).AsCollection);
    }

    [Test]
    public void ForwardOnlyActivationsRefuseTheBackward()
    {
        var cfg = new DiTConfig(InChannels: 4, CondSize: 3, Hidden: 4, Depth: 1, Heads: 1, LocalTokens: 2);
        var ops = new ReferenceOps();
        var model = new DiT(cfg, ops);
        var a = model.CreateInferenceActivations(2);
        var ex = Assert.Throws<InvalidOperationException>(() => model.Backward(a, ops.Allocate(2, 4), ops.Allocate(2, 4), ops.Allocate(2, 3), ops.Allocate(2, 6)));
        Assert.That(ex!.Message, Does.Contain("inference"));
    }

    [Test]
    public void ClassIndexOfTheWrongLengthIsRefused()
    {
        var cfg = new DiTConfig(InChannels: 4, CondSize: 3, Hidden: 4, Depth: 1, Heads: 1, LocalTokens: 2);
        var ops = new ReferenceOps();
        var model = RandomModel(cfg, ops, 1);
        var cc = model.CreateClassConstants(2);
        var table = new TextTable(ops, new float[2 * 3 * 3], 2, 3, 3);
        model.PrecomputeClassConstants(cc, table.Global, table.Local, 2);
        var ex = Assert.Throws<ArgumentException>(() =>
            model.ForwardWithClassConstants(model.CreateInferenceActivations(3), ops.Allocate(3, 4), cc, ops.Allocate(2), ops.Allocate(3, 4)));
        Assert.That(ex!.Message, Does.Contain("expected 3 rows, got 2"));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.PrecomputeClassConstants(cc, table.Global, table.Local, 3));
    }

    /// <summary>
    /// The scorer's chunking: the fewest chunks of at most chunkRows, equal but for the last,
    /// rounded to 128-row tiles when that fits; every row covered once.
    /// </summary>
    [TestCase(7680L, 2048, 1920)]     // the bench's 128 x 60: four chunks of 1,920 instead of 3 x 2,048 + 1,536
    [TestCase(5000L, 2048, 1792)]     // three chunks: 1,667 rounded up to 14 tiles
    [TestCase(2048L, 2048, 2048)]
    [TestCase(100L, 2048, 128)]       // one chunk (its buffers hold 2,048 rows; the scorer runs the 100)
    [TestCase(10L, 6, 5)]             // tiles too big for the chunk: the plain balanced size
    [TestCase(12L, 5, 4)]
    public void ScoringChunksAreBalanced(long total, int chunkRows, int expected)
    {
        int per = ZeroShotScorer.BalancedChunkRows(total, chunkRows);
        Assert.That(per, Is.EqualTo(expected));
        Assert.That((total + per - 1) / per, Is.EqualTo((total + chunkRows - 1) / chunkRows), "no more chunks than chunks of chunkRows");
        var rng = new Random(5);
        for (int i = 0; i < 2000; i++)
        {
            long t = rng.Next(1, 100_000);
            int c = rng.Next(1, 5000), p = ZeroShotScorer.BalancedChunkRows(t, c);
            Assert.That(p, Is.InRange(1, c), $"{t} rows, chunks of {c}");
            Assert.That((t + p - 1) / p, Is.EqualTo((t + c - 1) / c), $"{t} rows, chunks of {c}: {p} per chunk");
        }
    }
}
