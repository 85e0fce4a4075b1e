using Tdsm.Cpu;
using Tdsm.Formats;
using Tdsm.Model;
using Tdsm.Ops;
using Tdsm.Parity;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Tests.Model;

/// <summary>The whole DiT against the official PyTorch fixture, on every CPU-side tier, plus config-independence checks.</summary>
public class DiTTests
{
    private static IEnumerable<IOps> Tiers() => [new ReferenceOps(), new CpuOps()];

    [TestCaseSource(nameof(Tiers))]
    public void MatchesTheOfficialFixture(IOps ops)
    {
        var report = DiTParity.Run(SafeTensorsFile.Read(TestPaths.Fixture("dit_small.safetensors")), ops);
        foreach (var line in report.Lines()) TestContext.Out.WriteLine(line);
        Assert.That(report.Groups.Where(g => !g.Passed).Select(g => $"{g.Name}: {g.MaxRelativeError:e3} > {g.Tolerance:e0}"), Is.Empty);
        Assert.That(report.Groups.Select(g => g.Name), Is.SupersetOf(new[]
            { "out.noisy", "act.*", "out.pred/pos/neg", "out.loss*", "grad.*", "adamw1.*", "out.m0.*", "grad.m0.*", "infer.scores", "infer.pred (mismatches)" }));
    }

    [Test]
    public void PaperPresetHasTheOfficialParameterCount()
    {
        Assert.That(DiT.BuildLayout(DiTConfig.Paper).Count, Is.EqualTo(261_208_576));
    }

    /// <summary>
    /// AdamW runs over the maximal runs of adjacent parameters that receive a gradient: every such parameter lies in
    /// exactly one range, no other parameter in any, and no two ranges touch (else they would be one launch).
    /// </summary>
    [TestCase(1)]
    [TestCase(3)]
    public void OptimizerRangesAreTheRunsOfParametersThatReceiveAGradient(int depth)
    {
        var model = new DiT(new DiTConfig(8, 6, 16, depth, 2, LocalTokens: 3), new CpuOps());
        var ranges = new DiTOptimizer(model, new AdamWConfig()).Ranges;
        foreach (var e in model.Layout.Entries)
        {
            int holding = ranges.Count(r => e.Offset >= r.Offset && e.Offset + e.Length <= r.Offset + r.Length);
            int touching = ranges.Count(r => e.Offset < r.Offset + r.Length && r.Offset < e.Offset + e.Length);
            Assert.That((holding, touching), Is.EqualTo(e.ReceivesGradient ? (1, 1) : (0, 0)), e.Name);
        }
        for (int i = 1; i < ranges.Count; i++)
            Assert.That(ranges[i].Offset, Is.GreaterThan(ranges[i - 1].Offset + ranges[i - 1].Length), $"ranges {i - 1} and {i} touch");
        Assert.That(ranges, Has.Count.EqualTo(3), "the last block's proj_c and mlp_c (its mlp between them) cut the parameters in three");
    }

    [Test]
    public void FreshOfficialInitialisationOutputsExactlyZero()
    {
        var cfg = new DiTConfig(12, 10, 16, 2, 2, LocalTokens: 5);
        var ops = new CpuOps();
        var model = new DiT(cfg, ops);
        model.InitializeOfficial(seed: 3);
        var host = new float[model.Layout.Count];
        ops.Download(model.Parameters, host);
        Assert.That(host.Count(v => v != 0), Is.GreaterThan(host.Length / 3), "the non-zeroed layers are random");
        int rows = 4;
        var acts = model.CreateActivations(rows);
        var rng = new Rng(5);
        Tensor R(params int[] shape) { var t = ops.Allocate(shape); var v = new float[t.Length]; rng.FillNormal(v); ops.Upload(v, t); return t; }
        var t = ops.Allocate(rows); ops.Upload(new float[] { 0, 7, 25, 49 }, t);
        var pred = ops.Allocate(rows, cfg.InChannels);
        ops.Upload(Enumerable.Repeat(123f, pred.Length).ToArray(), pred);
        model.Forward(acts, R(rows, 12), t, R(rows, 10), R(rows, 5, 10), pred);
        var outp = new float[pred.Length];
        ops.Download(pred, outp);
        Assert.That(outp, Is.All.EqualTo(0f));
    }

    [Test]
    public void SameSeedSameInitialisation()
    {
        var cfg = new DiTConfig(8, 6, 8, 1, 2, LocalTokens: 3);
        float[] Init(ulong seed)
        {
            var m = new DiT(cfg, new ReferenceOps());
            m.InitializeOfficial(seed);
            var h = new float[m.Layout.Count];
            m.Ops.Download(m.Parameters, h);
            return h;
        }
        float[] first = Init(11), again = Init(11), other = Init(12);
        Assert.That(again, Is.EqualTo(first));
        Assert.That(other, Is.Not.EqualTo(first));
    }

    /// <summary>
    /// Nothing may special-case the shipped fixture's sizes: write a fixture of the same layout at
    /// another depth / head count / widths / batch (values from the reference tier, since PyTorch
    /// is not available here), then the parity path must read it from its metadata alone and the CPU
    /// tier must agree with it; a corrupted gradient must make it fail.
    /// </summary>
    [Test]
    public void ParityReadsAnyConfigFromTheMetadata()
    {
        var cfg = new DiTConfig(InChannels: 6, CondSize: 10, Hidden: 24, Depth: 3, Heads: 2, LocalTokens: 35);
        string path = Path.Combine(Path.GetTempPath(), $"tdsm-fixture-{Guid.NewGuid():N}.safetensors");
        try
        {
            FixtureWriter.Write(path, cfg, batch: 5, classes: 7, seed: 21, corruptGradient: false);
            var report = DiTParity.Run(SafeTensorsFile.Read(path), new CpuOps());
            foreach (var line in report.Lines()) TestContext.Out.WriteLine(line);
            Assert.That(report.Passed, Is.True);
            FixtureWriter.Write(path, cfg, batch: 5, classes: 7, seed: 21, corruptGradient: true);
            var bad = DiTParity.Run(SafeTensorsFile.Read(path), new CpuOps());
            Assert.That(bad.Groups.Single(g => g.Name == "grad.*").Passed, Is.False);
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void LibraryProjectHasNoPackageReference()
    {
        var csproj = File.ReadAllText(Path.Combine(TestPaths.RepoRoot(), "src", "Tdsm", "Tdsm.csproj"));
        Assert.That(csproj, Does.Not.Contain("<PackageReference"));
        Assert.That(csproj, Does.Not.Contain("<ProjectReference"));
    }
}
