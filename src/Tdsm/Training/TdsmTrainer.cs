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
/// AdamW with warm-up + cosine decay. The epoch order comes from a seeded <see cref="Rng"/> whose
/// state is part of the checkpoint with the order itself, so a resumed run continues bit-for-bit
/// on the CPU tiers.
/// </summary>
public sealed class TdsmTrainer
{
    private readonly int[] _labels;
    private readonly int[] _seen;
    private readonly TextTable _text;
    private readonly TdsmStep _step;
    private readonly Tensor _featuresT, _labelsT, _seenT, _batchIndex, _negIndex;
    private readonly float[] _hostIndex;

    public DiT Model { get; }
    public DiTOptimizer Optimizer { get; }
    public TrainConfig Config { get; }
    public Rng Rng { get; }

    /// <summary>The current epoch's sample order and the position in it.</summary>
    public int[] Order { get; private set; }
    public int Cursor { get; set; }

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
        Optimizer = new DiTOptimizer(model, config.AdamW);
        Rng = new Rng(config.Seed);
        _step = new TdsmStep(model, config.Batch);
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
        _batchIndex = o.Allocate(b);
        _negIndex = o.Allocate(b);
        _hostIndex = new float[b];
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

    /// <summary>
    /// One iteration: the batch indices come from the host's epoch order; eps, t and the
    /// negatives are drawn on the backend from the counter-based generator keyed by (seed, step),
    /// then forward, TD loss, backward, AdamW.
    /// </summary>
    public LossPoint TrainStep()
    {
        int b = Config.Batch, cin = Model.Config.InChannels;
        var o = Model.Ops;
        for (int i = 0; i < b; i++)
        {
            if (Cursor == Order.Length) { Order = Shuffled(_labels.Length); Cursor = 0; }
            _hostIndex[i] = Order[Cursor++];
        }
        o.Upload(_hostIndex, _batchIndex);
        o.GatherRows(_featuresT, _batchIndex, _step.X0, cin);
        o.GatherRows(_labelsT, _batchIndex, _step.Y, 1);
        ulong stream = (ulong)Optimizer.StepCount * 4;
        o.SampleNormal(_step.Eps, Config.Seed, stream);
        o.SampleBelow(_step.T, Model.Config.Steps, Config.Seed, stream + 1);
        o.SampleBelow(_negIndex, _seen.Length, Config.Seed, stream + 2);
        o.GatherRows(_seenT, _negIndex, _step.YNeg, 1);
        double lr = NextLearningRate;
        Model.ZeroGradients();
        var loss = _step.RunStaged(_text, Config.Margin, Config.Lambda, backward: true);
        Optimizer.Step(lr);
        return new LossPoint(Optimizer.StepCount, lr, loss.Loss, loss.Diffusion, loss.Triplet);
    }
}
