using Tdsm.Cpu;
using Tdsm.Model;
using Tdsm.Ops;
using Tdsm.Tensors;
using Tdsm.Training;

namespace Tdsm.Tests.Ops;

/// <summary>The profiling wrapper: it changes no result, records only inside a span, and charges every op once.</summary>
public class ProfiledOpsTests
{
    private static readonly DiTConfig Tiny = new(InChannels: 6, CondSize: 5, Hidden: 8, Depth: 2, Heads: 2, LocalTokens: 3);

    // Counts marks: a clock whose every interval is 1 ms, so a profile's total equals its number of ops.
    private sealed class CountingClock : IOpClock
    {
        public int Marks, Released;
        public object Mark() => ++Marks;
        public double Milliseconds(object from, object to) => (int)to - (int)from;
        public void Release(object mark) => Released++;
    }

    private static TdsmTrainer Trainer(IOps ops)
    {
        var rng = new Rng(3);
        var feats = new float[12 * Tiny.InChannels]; rng.FillNormal(feats);
        var text = new float[3 * Tiny.Tokens * Tiny.CondSize]; rng.FillNormal(text);
        var model = new DiT(Tiny, ops);
        model.InitializeOfficial(5);
        return new TdsmTrainer(model, new TrainConfig(Iterations: 4, Batch: 4, Lr: 1e-3, Warmup: 1, Seed: 5), feats,
            Enumerable.Range(0, 12).Select(i => i % 3).ToArray(), new TextTable(ops, text, 3, Tiny.Tokens, Tiny.CondSize), [0, 1, 2]);
    }

    [Test]
    public void ProfilesTrainingStepsWithoutChangingThem()
    {
        var clock = new CountingClock();
        var profiled = new ProfiledOps(new CpuOps(), clock);
        var plain = Trainer(new CpuOps());
        var wrapped = Trainer(profiled);
        Assert.That(clock.Marks, Is.Zero, "nothing is marked outside a span");

        var first = plain.TrainSteps(2);
        profiled.Timeline.Begin();
        var second = wrapped.TrainSteps(2);
        var rows = profiled.Timeline.Collect();
        Assert.That(second, Is.EqualTo(first), "the same steps, bit for bit");

        int ops = rows.Sum(r => r.Calls);
        Assert.That(clock.Marks, Is.EqualTo(ops + 1), "one mark per op plus the span's start");
        Assert.That(clock.Released, Is.EqualTo(clock.Marks), "every mark is released");
        Assert.That(rows.Sum(r => r.Milliseconds), Is.EqualTo(ops), "each op is charged exactly its own interval");
        Assert.That(rows.Select(r => r.Milliseconds), Is.Ordered.Descending);
        // The skeleton-stream q/k/v projection (2B = 8 rows, H 8 -> 3H 24) of each of the 2 blocks, in each of the 2 steps.
        Assert.That(rows.Single(r => r.Op == "Linear 8x8->24").Calls, Is.EqualTo(2 * 2));
        Assert.That(rows.Single(r => r.Op == "TdLoss").Calls, Is.EqualTo(2));
        Assert.That(rows.Single(r => r.Op == "Download").Calls, Is.EqualTo(1), "one loss read-back for the queued pair");
        Assert.Throws<InvalidOperationException>(() => profiled.Timeline.Collect(), "a span collects once");
    }
}
