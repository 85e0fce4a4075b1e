using Tdsm.Model;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Training;

/// <summary>One logged point of the loss curve.</summary>
public readonly record struct LossPoint(int Step, double LearningRate, double Loss, double Diffusion, double Triplet);

/// <summary>
/// The official TDSM training loop (TDSM_SPEC.md section 4) over precomputed skeleton features:
/// the training set is reshuffled every epoch and consumed in batches of B; for each sample
/// eps ~ N(0, I), t ~ U{0..Steps-1} and y_neg uniform over the seen classes (may equal y),
/// drawn on the backend (GPU included) from <see cref="CounterRng"/> keyed by (seed, step);
/// AdamW with warm-up + cosine decay. <see cref="TrainSteps"/> queues up to
/// <see cref="MaxQueuedSteps"/> steps with one upload of their batch indices before and one
/// read-back of their loss scalars after, so a GPU never waits for the host in between.
/// The epoch order comes from a seeded <see cref="Rng"/> whose
/// state is part of the checkpoint with the order itself, so a resumed run continues bit-for-bit
/// on the CPU tiers.
/// </summary>
public sealed class TdsmTrainer
{
    private readonly int[] _labels;
    private readonly int[] _seen;
    private readonly TextTable _text;
    private readonly TdsmStep _step;
    private readonly Tensor _featuresT, _labelsT, _seenT, _batchIndex, _negIndex, _lossLog;
    private readonly float[] _hostIndex, _hostLoss;

    /// <summary>Most steps one <see cref="TrainSteps"/> read-back covers (longer calls read back every this many).</summary>
    public const int MaxQueuedSteps = 64;

    public DiT Model { get; }
    public DiTOptimizer Optimizer { get; }
    public TrainConfig Config { get; }
    public Rng Rng { get; }

    /// <summary>The current epoch's sample order and the position in it.</summary>
    public int[] Order { get; private set; }
    public int Cursor { get; set; }

    /// <summary>A fingerprint of the training features, labels, seen classes and text features (see <see cref="Training.DataFingerprint"/>).</summary>
    public ulong DataFingerprint { get; }

    /// <summary>Optimiser steps taken.</summary>
    public int Step => Optimizer.StepCount;

    /// <param name="model">An initialised DiT.</param>
    /// <param name="config">Loop settings.</param>
    /// <param name="features">(N, C_in) seen-class training features.</param>
    /// <param name="labels">(N) class ids indexing <paramref name="text"/>.</param>
    /// <param name="text">Text features of every class the labels use.</param>
    /// <param name="seenClasses">Class ids negatives are drawn from.</param>
    public TdsmTrainer(DiT model, TrainConfig config, float[] features, int[] labels, TextTable text, int[] seenClasses)
    {
        Model = model;
        Config = config.Validated();
        int cin = model.Config.InChannels;
        if (features.Length != labels.Length * cin)
            throw new ArgumentException($"features hold {features.Length} values, expected {labels.Length} samples x C_in {cin}");
        if (labels.Length == 0) throw new ArgumentException("no training samples");
        if (seenClasses.Length == 0) throw new ArgumentException("no seen classes");
        foreach (var y in labels.Concat(seenClasses))
            if ((uint)y >= (uint)text.Classes) throw new ArgumentException($"class id {y} has no text features (table has {text.Classes} classes)");
        _labels = labels; _seen = seenClasses; _text = text;
        var fp = Training.DataFingerprint.Create();
        fp.Add(features); fp.Add(labels); fp.Add(seenClasses); fp.Add(text.Fingerprint);
        DataFingerprint = fp.Value;
        Optimizer = new DiTOptimizer(model, config.AdamW);
        Rng = new Rng(config.Seed);
        _step = new TdsmStep(model, config.Batch, text.Classes);
        int b = config.Batch;
        var o = model.Ops;
        // The training set, its labels and the seen-class list live on the backend; a step
        // uploads only the B sample indices of its batch.
        _featuresT = o.Allocate(labels.Length, cin);
        o.Upload(features, _featuresT);
        _labelsT = o.Allocate(labels.Length);
        o.Upload(labels.Select(v => (float)v).ToArray(), _labelsT);
        _seenT = o.Allocate(seenClasses.Length);
        o.Upload(seenClasses.Select(v => (float)v).ToArray(), _seenT);
        _batchIndex = o.Allocate(MaxQueuedSteps, b);   // the sample indices of each queued step
        _negIndex = o.Allocate(b);
        _lossLog = o.Allocate(MaxQueuedSteps, 3);     // [L, L_diff, L_TD] of each queued step
        _hostIndex = new float[MaxQueuedSteps * b];
        _hostLoss = new float[MaxQueuedSteps * 3];
        Order = Shuffled(labels.Length);
    }

    private int[] Shuffled(int n)
    {
        var order = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--) { int j = Rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
        return order;
    }

    /// <summary>Restores the data order (from a checkpoint).</summary>
    public void RestoreOrder(int[] order, int cursor)
    {
        if (order.Length != _labels.Length || cursor < 0 || cursor > order.Length)
            throw new ArgumentException($"checkpoint data order has {order.Length} entries (cursor {cursor}) but the training set has {_labels.Length} samples");
        Order = order; Cursor = cursor;
    }

    /// <summary>The learning rate the next step will use.</summary>
    public double NextLearningRate => CosineSchedule.LearningRate(Config.Lr, Optimizer.StepCount, Config.Warmup, Config.Iterations);

    /// <summary>One iteration (<see cref="TrainSteps"/> with a count of 1): waits for its loss.</summary>
    public LossPoint TrainStep() => TrainSteps(1)[0];

    /// <summary>
    /// <paramref name="count"/> iterations, each: the batch indices from the host's epoch order;
    /// eps, t and the negatives drawn on the backend from the counter-based generator keyed by
    /// (seed, step); forward, TD loss, backward, AdamW. The loss scalars stay on the backend until
    /// the end of each group of up to <see cref="MaxQueuedSteps"/> steps, then come back together.
    /// </summary>
    public LossPoint[] TrainSteps(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var points = new LossPoint[count];
        for (int done = 0; done < count;)
        {
            int n = Math.Min(MaxQueuedSteps, count - done);
            Queue(n, points.AsSpan(done, n));
            done += n;
        }
        return points;
    }

    private void Queue(int n, Span<LossPoint> points)
    {
        int b = Config.Batch, cin = Model.Config.InChannels;
        var o = Model.Ops;
        // The parameters change only through AdamW until the read-back: a tier may keep a derived copy (the GPU's bf16 weights).
        using var bound = o.BindParameters(Model.Parameters);
        for (int i = 0; i < n * b; i++)
        {
            if (Cursor == Order.Length) { Order = Shuffled(_labels.Length); Cursor = 0; }
            _hostIndex[i] = Order[Cursor++];
        }
        o.Upload(_hostIndex.AsSpan(0, n * b), o.View(_batchIndex, 0, n, b));
        var lrs = new double[n];
        for (int s = 0; s < n; s++)
        {
            var batchIndex = o.View(_batchIndex, s * b, b);
            o.GatherRows(_featuresT, batchIndex, _step.X0, cin);
            o.GatherRows(_labelsT, batchIndex, _step.Y, 1);
            ulong stream = (ulong)Optimizer.StepCount * 4;
            o.SampleNormal(_step.Eps, Config.Seed, stream);
            o.SampleBelow(_step.T, Model.Config.Steps, Config.Seed, stream + 1);
            o.SampleBelow(_negIndex, _seen.Length, Config.Seed, stream + 2);
            o.GatherRows(_seenT, _negIndex, _step.YNeg, 1);
            lrs[s] = NextLearningRate;
            Model.ZeroGradients();
            _step.RunStaged(_text, Config.Margin, Config.Lambda, backward: true, o.View(_lossLog, s * 3, 3));
            Optimizer.Step(lrs[s]);
        }
        o.Download(o.View(_lossLog, 0, n, 3), _hostLoss.AsSpan(0, n * 3));
        int first = Optimizer.StepCount - n + 1;
        for (int s = 0; s < n; s++)
            points[s] = new LossPoint(first + s, lrs[s], _hostLoss[3 * s], _hostLoss[3 * s + 1], _hostLoss[3 * s + 2]);
    }
}
