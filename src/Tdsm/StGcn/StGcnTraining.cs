namespace Tdsm.StGcn;

/// <summary>Learning-rate schedule of encoder pre-training.</summary>
public enum LrSchedule
{
    /// <summary>lr = base * 0.5 * (1 + cos(pi * step / totalSteps)), per step.</summary>
    Cosine,

    /// <summary>lr = base * gamma^(number of milestone epochs passed).</summary>
    Step,
}

/// <summary>
/// Encoder pre-training settings: SGD with Nesterov momentum 0.9, weight decay 1e-4 on every
/// parameter (as torch.optim.SGD over model.parameters()), base lr 0.1, cosine decay by default.
/// Augmentation (random rotation about the vertical axis and a random shift) is off by default.
/// </summary>
public sealed record StGcnTrainOptions
{
    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 30;
    /// <summary>Samples per step (the last incomplete batch of an epoch is dropped).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Base learning rate.</summary>
    public double BaseLr { get; init; } = 0.1;
    /// <summary>Nesterov momentum.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>L2 weight decay added to the gradient.</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>Decay schedule.</summary>
    public LrSchedule Schedule { get; init; } = LrSchedule.Cosine;
    /// <summary>Epochs at which <see cref="LrSchedule.Step"/> multiplies the lr by <see cref="StepGamma"/>.</summary>
    public IReadOnlyList<int> StepMilestones { get; init; } = [10, 50];
    /// <summary>Step-decay factor.</summary>
    public double StepGamma { get; init; } = 0.1;
    /// <summary>Random rotation (+-<see cref="AugmentMaxAngle"/> rad about y) and shift (+-<see cref="AugmentMaxShift"/>).</summary>
    public bool Augment { get; init; }
    /// <summary>Rotation range in radians.</summary>
    public double AugmentMaxAngle { get; init; } = 0.3;
    /// <summary>Shift range in input units.</summary>
    public double AugmentMaxShift { get; init; } = 0.1;
    /// <summary>Seed of the shuffling and augmentation.</summary>
    public int Seed { get; init; }

    /// <summary>These options, or an <see cref="ArgumentException"/> naming the first setting out of range.</summary>
    public StGcnTrainOptions Validated()
    {
        static void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"encoder training: {what}"); }
        Check(Epochs > 0, $"epochs must be positive, got {Epochs}");
        Check(BatchSize >= 2, $"batch size must be at least 2 (BatchNorm), got {BatchSize}");
        Check(BaseLr > 0 && double.IsFinite(BaseLr), $"lr must be a positive number, got {BaseLr}");
        Check(Momentum >= 0 && Momentum < 1, $"momentum must be in [0, 1), got {Momentum}");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"weight decay must be 0 or more, got {WeightDecay}");
        Check(StepGamma > 0 && double.IsFinite(StepGamma), $"step gamma must be positive, got {StepGamma}");
        return this;
    }

    /// <summary>The lr at optimiser step <paramref name="step"/> of <paramref name="totalSteps"/> in epoch <paramref name="epoch"/>.</summary>
    public double LrAt(int step, int totalSteps, int epoch) => Schedule switch
    {
        LrSchedule.Cosine => BaseLr * 0.5 * (1 + Math.Cos(Math.PI * step / Math.Max(1, totalSteps))),
        _ => BaseLr * Math.Pow(StepGamma, StepMilestones.Count(mi => epoch >= mi)),
    };
}

/// <summary>SGD with Nesterov momentum and L2 weight decay, PyTorch semantics (dampening 0):
/// d = g + wd p; buf = mu buf + d; p -= lr (d + mu buf). <see cref="Update"/> is the loop every host
/// tier's <see cref="IStGcnOps.SgdNesterovStep"/> runs; an instance owns a momentum buffer over host arrays.</summary>
public sealed class SgdNesterov(int count, double momentum, double weightDecay)
{
    private const int Chunk = 65536;
    private readonly float[] _buf = new float[count];

    /// <summary>One update of <paramref name="p"/> with gradient <paramref name="g"/> (same layout).</summary>
    public void Step(float[] p, float[] g, double lr)
    {
        if (p.Length != _buf.Length || g.Length != _buf.Length)
            throw new ArgumentException($"SGD: {p.Length} parameters and {g.Length} gradients, expected {_buf.Length}");
        ParallelUpdate(p, g, _buf, lr, momentum, weightDecay);
    }

    /// <summary><see cref="Update"/> in parallel chunks (elementwise, so the result is the serial one bit for bit).</summary>
    public static void ParallelUpdate(ArraySegment<float> p, ArraySegment<float> g, ArraySegment<float> buf, double lr, double momentum, double weightDecay) =>
        Parallel.For(0, (p.Count + Chunk - 1) / Chunk, c =>
        {
            int start = c * Chunk, len = Math.Min(p.Count - start, Chunk);
            Update(p.AsSpan(start, len), g.AsSpan(start, len), buf.AsSpan(start, len), lr, momentum, weightDecay);
        });

    /// <summary>One update of p with gradient g and momentum buffer buf (same length), float32 arithmetic.</summary>
    public static void Update(Span<float> p, ReadOnlySpan<float> g, Span<float> buf, double lr, double momentum, double weightDecay)
    {
        float mu = (float)momentum, wd = (float)weightDecay, a = (float)lr;
        for (int i = 0; i < p.Length; i++)
        {
            float d = g[i] + wd * p[i];
            float b = mu * buf[i] + d;
            buf[i] = b;
            p[i] -= a * (d + mu * b);
        }
    }
}

/// <summary>Loss and accuracy of one epoch.</summary>
public sealed record EpochStats(int Epoch, double MeanLoss, double Accuracy, double LastLr, double Seconds);

/// <summary>
/// Seen-class pre-training and frozen feature extraction, data-agnostic: x is (N, C, T, V, M)
/// float32 and labels are training labels 0..NumClass-1 (use <see cref="SeenClassMap"/> to get them).
/// </summary>
public static class StGcnTraining
{
    /// <summary>Trains <paramref name="model"/> in place with cross-entropy on its tier (on a device, call
    /// <see cref="StGcnModel.SyncToHost"/> to see the state in its host arrays); returns per-epoch stats.
    /// <paramref name="progress"/>, when given, is called after every step with (step, total steps, mean loss of the epoch so far).</summary>
    public static IReadOnlyList<EpochStats> Train(StGcnModel model, float[] x, int[] labels, int n, int t, int m,
        StGcnTrainOptions options, TextWriter? log = null, Action<int, int, double>? progress = null)
    {
        var cfg = model.Config;
        if (x.Length != (long)n * cfg.InChannels * t * cfg.V * m) throw new ArgumentException($"train: x holds {x.Length} values, expected N*C*T*V*M = {n}*{cfg.InChannels}*{t}*{cfg.V}*{m}");
        return Train(model, new Tdsm.Data.ArraySamples(x, cfg.InChannels * t * cfg.V * m), labels, t, m, options, log, progress);
    }

    /// <summary>The same over samples read one batch at a time (e.g. <see cref="Tdsm.Data.NpySamples"/> for arrays larger than memory).</summary>
    public static IReadOnlyList<EpochStats> Train(StGcnModel model, Tdsm.Data.ISampleSource x, int[] labels, int t, int m,
        StGcnTrainOptions options, TextWriter? log = null, Action<int, int, double>? progress = null)
    {
        var cfg = model.Config;
        int n = x.Count, sample = cfg.InChannels * t * cfg.V * m;
        if (x.SampleSize != sample) throw new ArgumentException($"train: samples hold {x.SampleSize} values, expected C*T*V*M = {cfg.InChannels}*{t}*{cfg.V}*{m}");
        if (labels.Length != n) throw new ArgumentException($"train: {labels.Length} labels for {n} samples");
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= cfg.NumClass) throw new ArgumentException($"train: label {labels[i]} of sample {i} is outside 0..{cfg.NumClass - 1}");
        options.Validated();
        int bs = Math.Min(options.BatchSize, n);
        if (bs < 2) throw new ArgumentException($"train: batch size {bs} (BatchNorm needs at least 2 samples)");
        if (bs < options.BatchSize) log?.WriteLine($"batch {options.BatchSize} > {n} samples: one batch of {bs} per epoch");
        int stepsPerEpoch = n / bs, total = stepsPerEpoch * options.Epochs, step = 0;
        var sgd = model.CreateSgd(options.Momentum, options.WeightDecay);
        var rng = new Random(options.Seed);
        var order = Enumerable.Range(0, n).ToArray();
        var bx = new float[bs * sample];
        var by = new int[bs];
        var stats = new List<EpochStats>();
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            rng.Shuffle(order);
            double lossSum = 0, lr = 0;
            int correct = 0, seen = 0;
            for (int s = 0; s < stepsPerEpoch; s++)
            {
                for (int j = 0; j < bs; j++)
                {
                    int i = order[s * bs + j];
                    x.Read(i, bx.AsSpan(j * sample, sample));
                    by[j] = labels[i];
                    if (options.Augment) Augment(bx.AsSpan(j * sample, sample), cfg.InChannels, t * cfg.V * m, rng, options);
                }
                lr = options.LrAt(step, total, epoch);
                model.ZeroGradients();
                double loss = model.Forward(bx, by, bs, t, m, training: true);
                // Stop at the first non-finite loss: nothing is saved from a diverged run (the caller writes the encoder after Train).
                if (!double.IsFinite(loss)) throw new StGcnDivergedException(epoch + 1, step + 1, loss, lr);
                lossSum += loss;
                correct += CountCorrect(model.Logits, by, cfg.NumClass);
                seen += bs;
                model.Backward();
                sgd(lr);
                step++;
                progress?.Invoke(step, total, lossSum / (s + 1));
            }
            var e = new EpochStats(epoch + 1, lossSum / Math.Max(1, stepsPerEpoch), (double)correct / Math.Max(1, seen), lr, sw.Elapsed.TotalSeconds);
            stats.Add(e);
            log?.WriteLine(FormattableString.Invariant($"epoch {e.Epoch,3}: loss {e.MeanLoss:F4} train acc {e.Accuracy:P1} lr {e.LastLr:G3} ({e.Seconds:F1} s)"));
        }
        return stats;
    }

    // Rotation about the vertical (y) axis and a shift, the same for every frame/joint/person of a sample
    // s (C, T, V, M) with rest = T*V*M; all-zero points (absent persons, padding) stay zero.
    internal static void Augment(Span<float> s, int c, int rest, Random rng, StGcnTrainOptions o)
    {
        if (c < 3) return;
        double ang = (rng.NextDouble() * 2 - 1) * o.AugmentMaxAngle;
        float cos = (float)Math.Cos(ang), sin = (float)Math.Sin(ang);
        float sx = (float)((rng.NextDouble() * 2 - 1) * o.AugmentMaxShift), sy = (float)((rng.NextDouble() * 2 - 1) * o.AugmentMaxShift), sz = (float)((rng.NextDouble() * 2 - 1) * o.AugmentMaxShift);
        var xs = s.Slice(0, rest); var ys = s.Slice(rest, rest); var zs = s.Slice(2 * rest, rest);
        for (int i = 0; i < rest; i++)
        {
            float x = xs[i], z = zs[i];
            if (x == 0 && ys[i] == 0 && z == 0) continue; // padding (absent person / frame) stays zero
            xs[i] = cos * x + sin * z + sx;
            zs[i] = -sin * x + cos * z + sz;
            ys[i] += sy;
        }
    }

    private static int CountCorrect(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int k)
    {
        int correct = 0;
        for (int i = 0; i < labels.Length; i++) if (ArgMax(logits.Slice(i * k, k)) == labels[i]) correct++;
        return correct;
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int j = 1; j < v.Length; j++) if (v[j] > v[best]) best = j;
        return best;
    }

    /// <summary>
    /// The frozen encoder in eval mode (running statistics, no parameter change): features z_x
    /// (N, FeatureDim) of x (N, C, T, V, M), computed in batches of <paramref name="batchSize"/>.
    /// </summary>
    public static float[] ExtractFeatures(StGcnModel model, float[] x, int n, int t, int m, int batchSize = 64) =>
        RunEval(model, Source(model, x, n, t, m), t, m, batchSize, features: true);

    /// <summary>Eval-mode features of samples read one batch at a time.</summary>
    public static float[] ExtractFeatures(StGcnModel model, Tdsm.Data.ISampleSource x, int t, int m, int batchSize = 64) =>
        RunEval(model, x, t, m, batchSize, features: true);

    /// <summary>Eval-mode class predictions (argmax of the logits), batched.</summary>
    public static int[] Predict(StGcnModel model, float[] x, int n, int t, int m, int batchSize = 64) =>
        Predict(model, Source(model, x, n, t, m), t, m, batchSize);

    /// <summary>Eval-mode class predictions of samples read one batch at a time.</summary>
    public static int[] Predict(StGcnModel model, Tdsm.Data.ISampleSource x, int t, int m, int batchSize = 64)
    {
        var logits = RunEval(model, x, t, m, batchSize, features: false);
        int k = model.Config.NumClass;
        return Enumerable.Range(0, x.Count).Select(i => ArgMax(logits.AsSpan(i * k, k))).ToArray();
    }

    private static Tdsm.Data.ISampleSource Source(StGcnModel model, float[] x, int n, int t, int m)
    {
        var cfg = model.Config;
        if (x.Length != (long)n * cfg.InChannels * t * cfg.V * m) throw new ArgumentException($"x holds {x.Length} values, expected N*C*T*V*M = {n}*{cfg.InChannels}*{t}*{cfg.V}*{m}");
        return new Tdsm.Data.ArraySamples(x, cfg.InChannels * t * cfg.V * m);
    }

    private static float[] RunEval(StGcnModel model, Tdsm.Data.ISampleSource x, int t, int m, int batchSize, bool features)
    {
        var cfg = model.Config;
        int n = x.Count, sample = cfg.InChannels * t * cfg.V * m, width = features ? cfg.FeatureDim : cfg.NumClass;
        if (x.SampleSize != sample) throw new ArgumentException($"samples hold {x.SampleSize} values, expected C*T*V*M = {cfg.InChannels}*{t}*{cfg.V}*{m}");
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var result = new float[(long)n * width];
        var batch = new float[Math.Min(batchSize, n) * sample];
        for (int s = 0; s < n; s += batchSize)
        {
            int bs = Math.Min(batchSize, n - s);
            for (int j = 0; j < bs; j++) x.Read(s + j, batch.AsSpan(j * sample, sample));
            model.Forward(batch.AsSpan(0, bs * sample), default, bs, t, m, training: false);
            (features ? model.Features : model.Logits).CopyTo(result.AsSpan(s * width, bs * width));
        }
        return result;
    }
}

/// <summary>Encoder pre-training stopped at a non-finite loss.</summary>
public sealed class StGcnDivergedException(int epoch, int step, double loss, double lr)
    : Exception(FormattableString.Invariant($"encoder training diverged: loss {loss} at epoch {epoch}, step {step} (lr {lr:G3}); no encoder was written. A lower --lr usually helps."))
{
    /// <summary>1-based epoch of the bad step.</summary>
    public int Epoch { get; } = epoch;

    /// <summary>1-based optimiser step whose loss is not finite.</summary>
    public int Step { get; } = step;
}
