using System.Diagnostics;
using System.Globalization;
using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.Ops;
using Tdsm.StGcn;
using Tdsm.Tensors;

namespace Tdsm.Trainer;

/// <summary>
/// Seen-class pre-training of the ST-GCN skeleton encoder, frozen feature extraction, and a
/// training-step timer. Data come as .npy: x (N, 3, T, 25, M) float32, labels (N) original class ids,
/// seen (S) the split's seen class ids. Unseen-class training samples are dropped before training.
/// </summary>
public sealed class PretrainEncoderCommand : ICommand
{
    public string Name => "pretrain-encoder";
    public string Summary => "train the ST-GCN encoder on seen classes, write it and its features";
    public string Help => """
        usage: pretrain-encoder --train-x X.npy --train-y Y.npy --seen SEEN.npy --out ENCODER.safetensors
                                [--test-x X.npy --test-y Y.npy] [--features-dir DIR]
                                [--config small|paper] [--epochs 30] [--batch 32] [--lr 0.1]
                                [--schedule cosine|step] [--augment] [--seed 0] [--backend cpu|reference|gpu[-sim][-bf16|-tf32]]
               pretrain-encoder --bench [--config small|paper] [--n 32] [--t 64] [--m 2] [--classes 55]
                                [--steps 3] [--warmup 1] [--backend cpu|reference|gpu[-sim][-bf16|-tf32]] [--profile]

        Optimiser: SGD, Nesterov momentum 0.9, weight decay 1e-4, base lr 0.1, cosine decay per step
        (or --schedule step: x0.1 at epochs 10 and 50). The last incomplete batch of an epoch is dropped.
        --features-dir writes, from the frozen encoder in eval mode, the SynSE / SA-DVAE folder layout:
        train.npy / train_label.npy (seen-class training samples), and with --test-x: ztest.npy / z_label.npy
        (unseen-class test samples, ZSL) and gtest.npy / g_label.npy (all test samples, GZSL); features
        (N, D) float32, labels original 0-based class ids (int64).
        --bench times training steps on random data and prints ms per step, after --warmup untimed ones (1:
        enough on the GPU, where the first compiles the kernels; the CPU tier's first few steps still run
        code the JIT has not optimised yet, so use --warmup 3 there for the steady state); --profile then runs as many
        more steps with a mark after every op (CUDA events on the GPU, the host clock otherwise) and prints
        each op and layer size with its calls, ms and share per step, then the shares by op family.
        With tensor-core convolutions (gpu-bf16, gpu-tf32) the steps are then timed again with the kernels
        compiled for the other occupancy (1 or 2 blocks per SM; the same results), and with gpu-bf16 once more with
        the stride-1 products off packed operands (PackedConv; TDSM_PACKED_CONVS=0 turns it off for a whole run).
        --backend gpu runs the whole encoder on the CUDA device (parameters, optimiser state and activations
        device-resident; per step the batch goes up and the loss comes back); gpu-sim runs the same kernels on
        ILGPU's CPU simulator (very slow: tiny sizes only). gpu-bf16 / gpu-tf32 (gpu-sim-bf16 / gpu-sim-tf32) run the
        convolutions on tensor cores (operands rounded to bf16 / tf32, fp32 accumulation).
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string backend = args.Get("--backend") ?? "cpu";
        string configName = args.Get("--config") ?? "small";
        if (args.Flag("--bench"))
        {
            bool profile = args.Flag("--profile");
            int bn = args.GetInt("--n", 32), bt = args.GetInt("--t", 64), bm = args.GetInt("--m", 2), classes = args.GetInt("--classes", 55), steps = args.GetInt("--steps", 3),
                warmup = args.GetInt("--warmup", 1);
            args.EnsureAllUsed();
            if (steps <= 0 || warmup < 0) throw new CommandLineException($"pretrain-encoder --bench: --steps must be positive and --warmup at least 0 (got {steps}, {warmup})");
            if (bn < 2 || bt < 1 || bm is not (1 or 2) || classes < 2)
                throw new CommandLineException($"pretrain-encoder --bench: needs --n >= 2 (BatchNorm), --t >= 1, --m 1 or 2 and --classes >= 2 (got {bn}, {bt}, {bm}, {classes})");
            if (Backends.ParseGpu(backend) is { } benchGpu)
            {
                using var benchDevice = Backends.OpenDevice(benchGpu.Simulator, profiling: profile);
                using var benchOps = new Tdsm.Gpu.StGcn.StGcnGpuOps(benchDevice) { ConvPrecision = benchGpu.Precision };
                return Bench(Config(configName, classes), benchOps, profile ? new Tdsm.Gpu.GpuOpClock(benchDevice) : null, bn, bt, bm, steps, warmup, stdout);
            }
            return Bench(Config(configName, classes), StGcnParity.Backend(backend), profile ? new HostOpClock() : null, bn, bt, bm, steps, warmup, stdout);
        }
        string trainX = args.Require("--train-x"), trainY = args.Require("--train-y"), seenPath = args.Require("--seen"), outPath = args.Require("--out");
        string? testX = args.Get("--test-x"), testY = args.Get("--test-y"), featDir = args.Get("--features-dir");
        var opts = new StGcnTrainOptions
        {
            Epochs = args.GetInt("--epochs", 30),
            BatchSize = args.GetInt("--batch", 32),
            BaseLr = args.GetDouble("--lr", 0.1),
            Schedule = (args.Get("--schedule") ?? "cosine") switch
            {
                "cosine" => LrSchedule.Cosine,
                "step" => LrSchedule.Step,
                var s => throw new CommandLineException($"--schedule expects cosine or step, got '{s}'"),
            },
            Augment = args.Flag("--augment"),
            Seed = args.GetIntSeed("--seed", 0),
        };
        args.EnsureAllUsed();
        if ((testX is null) != (testY is null)) throw new CommandLineException("--test-x and --test-y go together");
        opts.Validated();

        var map = new SeenClassMap(LabelSplit.ReadIds(seenPath, "the seen-class list"));
        // Everything read or written after training is checked before it: a bad test set or output folder must not
        // cost the epochs first.
        if (testX is not null)
        {
            using var probe = OpenSet(testX, testY!, out _, out _, out _);
        }
        if (featDir is not null && File.Exists(featDir)) throw new CommandLineException($"--features-dir {featDir} is a file, expected a folder");
        // Samples are read from disk batch by batch (NpySamples): NTU-scale arrays need not fit in memory.
        using var x = OpenSet(trainX, trainY, out var y, out int t, out int mm);
        var seenIdx = Enumerable.Range(0, y.Length).Where(i => map.IsSeen(y[i])).ToArray();
        var xs = new IndexedSamples(x, seenIdx);
        var ys = seenIdx.Select(i => map.ToLocal(y[i])).ToArray();
        stdout.WriteLine($"train: {ys.Length} seen-class samples of {y.Length} ({map.Count} seen classes), T={t}, M={mm}");
        var gpu = Backends.ParseGpu(backend);
        using var device = gpu is null ? null : Backends.OpenDevice(gpu.Value.Simulator);
        using var gpuOps = device is null ? null : new Tdsm.Gpu.StGcn.StGcnGpuOps(device) { ConvPrecision = gpu!.Value.Precision };
        var model = new StGcnModel(Config(configName, map.Count), (IStGcnOps?)gpuOps ?? StGcnParity.Backend(backend), opts.Seed);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"encoder: {configName} on {model.Name}, {model.Layout.ParameterCount} parameters, {model.Config.ForwardFlops(opts.BatchSize, t, mm) / 1e9:F2} GFLOP per forward of a batch"));
        StGcnTraining.Train(model, xs, ys, t, mm, opts, stdout);
        StGcnCheckpoint.Save(outPath, model, Enumerable.Range(0, map.Count).Select(map.ToOriginal).ToArray());
        stdout.WriteLine($"wrote {outPath}");

        if (featDir is not null)
        {
            Directory.CreateDirectory(featDir);
            WriteFeatures(model, xs, ys.Select(map.ToOriginal).ToArray(), t, mm, featDir, "train", "train_label", stdout);
        }
        if (testX is not null)
        {
            using var tx = OpenSet(testX, testY!, out var ty, out int tt, out int tm);
            var seenTest = Enumerable.Range(0, ty.Length).Where(i => map.IsSeen(ty[i])).ToArray();
            if (seenTest.Length > 0)
            {
                var pred = StGcnTraining.Predict(model, new IndexedSamples(tx, seenTest), tt, tm);
                double acc = seenTest.Where((i, j) => pred[j] == map.ToLocal(ty[i])).Count() / (double)seenTest.Length;
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seen-class test accuracy: {acc:P2} ({seenTest.Length} samples)"));
            }
            if (featDir is not null)
            {
                var unseen = Enumerable.Range(0, ty.Length).Where(i => !map.IsSeen(ty[i])).ToArray();
                WriteFeatures(model, new IndexedSamples(tx, unseen), unseen.Select(i => ty[i]).ToArray(), tt, tm, featDir, "ztest", "z_label", stdout);
                WriteFeatures(model, tx, ty, tt, tm, featDir, "gtest", "g_label", stdout);
            }
        }
        return 0;
    }

    private static StGcnConfig Config(string name, int classes) => name switch
    {
        "small" => StGcnConfig.Small(classes),
        "paper" => StGcnConfig.Paper(classes),
        _ => throw new CommandLineException($"--config expects small or paper, got '{name}'"),
    };

    /// <summary>Opens an (N, 3, T, 25, M) float .npy for reading by sample, with its N labels.</summary>
    internal static NpySamples OpenSet(string xPath, string yPath, out int[] y, out int t, out int m)
    {
        var xs = new NpySamples(xPath);
        try
        {
            var shape = xs.Shape;
            if (shape.Count != 5 || shape[1] != 3 || shape[3] != 25)
                throw new TensorFormatException(xPath, $"shape [{string.Join(",", shape)}], expected (N, 3, T, 25, M)");
            y = LabelSplit.ReadIds(yPath, "a label file");
            if (y.Length != shape[0]) throw new TensorFormatException(yPath, $"{y.Length} labels, expected {shape[0]} (the samples in {xPath})");
            (t, m) = (shape[2], shape[4]);
            return xs;
        }
        catch
        {
            xs.Dispose();
            throw;
        }
    }

    private static void WriteFeatures(StGcnModel model, ISampleSource x, int[] labels, int t, int m, string dir, string name, string labelName, TextWriter stdout)
    {
        var f = StGcnTraining.ExtractFeatures(model, x, t, m);
        Npy.Write(Path.Combine(dir, name + ".npy"), [labels.Length, model.Config.FeatureDim], f);
        Npy.Write(Path.Combine(dir, labelName + ".npy"), [labels.Length], labels.Select(v => (long)v).ToArray());
        stdout.WriteLine($"wrote {name}.npy ({labels.Length} x {model.Config.FeatureDim}) and {labelName}.npy");
    }

    // Times `steps` training steps after `warmup` untimed ones; with a clock, then profiles `steps` more through ProfiledStGcnOps.
    private static int Bench(StGcnConfig cfg, IStGcnOps ops, IOpClock? clock, int n, int t, int m, int steps, int warmup, TextWriter stdout)
    {
        var profiled = clock is null ? null : new ProfiledStGcnOps(ops, clock);
        var model = new StGcnModel(cfg, (IStGcnOps?)profiled ?? ops, seed: 1);
        var rng = new Random(2);
        var x = new float[n * cfg.InChannels * t * cfg.V * m];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var y = Enumerable.Range(0, n).Select(i => i % cfg.NumClass).ToArray();
        var sgd = model.CreateSgd(0.9, 1e-4);
        void Step()
        {
            model.ZeroGradients();
            model.Forward(x, y, n, t, m, training: true); // returns the loss, so the step's forward has finished
            model.Backward();
            sgd(0.1);
            _ = model.Logits; // a download: waits for the device to finish the step
        }
        // warmup + steps steps, the first `warmup` warming up (JIT, kernel compiles, buffer allocation) and not counted: sorted ms.
        List<double> TimeSteps()
        {
            var ms = new List<double>();
            for (int s = 0; s < warmup + steps; s++)
            {
                var sw = Stopwatch.StartNew();
                Step();
                if (s >= warmup) ms.Add(sw.Elapsed.TotalMilliseconds);
            }
            ms.Sort();
            return ms;
        }
        var times = TimeSteps();
        double flops = 3 * cfg.ForwardFlops(n, t, m);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"stgcn train step on '{model.Name}': {cfg.Layers.Count} blocks, {model.Layout.ParameterCount} params, N={n} T={t} M={m}: " +
            $"median {times[times.Count / 2]:F0} ms (min {times[0]:F0}, {steps} steps), ~{flops / 1e9:F1} GFLOP/step (3x forward), " +
            $"{flops / (times[times.Count / 2] * 1e6):F1} GFLOP/s, {Environment.ProcessorCount} cores"));
        if (profiled is not null)
        {
            profiled.Timeline.Begin();
            for (int s = 0; s < steps; s++) Step();
            ProfileTable.Print(stdout, profiled.Timeline.Collect(), steps, $"stgcn train step profile ({steps} more steps, per step)");
        }
        if (ops is Tdsm.Gpu.StGcn.StGcnGpuOps gpu && gpu.ConvPrecision != Tdsm.Gpu.GemmPrecision.Fp32)
        {
            // The same steps once more under another setting of the tensor-core convolutions: "median X ms (min Y, N steps)".
            string TimedWith(Action change, Action restore)
            {
                change();
                try
                {
                    var alt = TimeSteps();
                    return string.Create(CultureInfo.InvariantCulture, $"median {alt[alt.Count / 2]:F0} ms (min {alt[0]:F0}, {steps} steps)");
                }
                finally { restore(); }
            }
            string median = string.Create(CultureInfo.InvariantCulture, $"{times[times.Count / 2]:F0} ms");
            // Bounded for the other occupancy (same bits, other registers).
            int usual = gpu.TensorCoreGroupsPerSM, other = 3 - usual;
            stdout.WriteLine($"stgcn train step with the tensor-core convolutions compiled for {other} block(s) per SM: " +
                $"{TimedWith(() => gpu.TensorCoreGroupsPerSM = other, () => gpu.TensorCoreGroupsPerSM = usual)} vs {median} for {usual}");
            if (gpu.ConvPrecision == Tdsm.Gpu.GemmPrecision.Bf16 && gpu.PackedConvs)
            {
                // The stride-1 products on packed operands (PackedConv, the default) against TensorCoreConv's gathering kernels.
                long before = gpu.PackedConvLaunches;
                Step();
                long perStep = gpu.PackedConvLaunches - before;
                stdout.WriteLine($"stgcn train step: {perStep} conv products per step on packed operands (PackedConv); all on the gathering kernels instead: " +
                    $"{TimedWith(() => gpu.PackedConvs = false, () => gpu.PackedConvs = true)} vs {median}");
                if (gpu.PackedWeightGrads)
                    stdout.WriteLine("stgcn train step with the temporal weight gradients on the gathering kernels (the other products packed): " +
                        $"{TimedWith(() => gpu.PackedWeightGrads = false, () => gpu.PackedWeightGrads = true)} vs {median}");
                // The packed products staged by cp.async (KernelLdMatrixShiftedAsync / TapRowsAsync) against register staging.
                bool async = gpu.AsyncPackedConvs;
                stdout.WriteLine($"stgcn train step with the packed products staged {(async ? "through registers" : "by cp.async")}: " +
                    $"{TimedWith(() => gpu.AsyncPackedConvs = !async, () => gpu.AsyncPackedConvs = async)} vs {median} {(async ? "by cp.async" : "through registers")} (TDSM_CONV_ASYNC)");
                // On Hopper: the packed products on wgmma (KernelWgmmaShifted / TapRows) against the kernels above.
                bool wgmma = gpu.WgmmaPackedConvs;
                // Last, and caught: a kernel never run on a GPU before cannot cost the lines above.
                if (gpu.SupportsWgmma)
                {
                    try
                    {
                        stdout.WriteLine($"stgcn train step with the packed products {(wgmma ? "off" : "on")} wgmma: " +
                            $"{TimedWith(() => gpu.WgmmaPackedConvs = !wgmma, () => gpu.WgmmaPackedConvs = wgmma)} vs {median} {(wgmma ? "on" : "off")} wgmma (TDSM_CONV_WGMMA)");
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        stdout.WriteLine($"stgcn train step with the packed products on wgmma: FAILED: {e.GetType().Name}: {e.Message}");
                    }
                }
            }
            stdout.WriteLine(Tdsm.Gpu.LiftedKernels.Summary());
        }
        return 0;
    }
}

/// <summary>
/// The ST-GCN op set with an <see cref="OpTimeline"/> (for --bench --profile): runs another tier and
/// records every op with the sizes that say which layer it is; CUDA events on the GPU, the host clock
/// on the CPU tiers.
/// </summary>
internal sealed class ProfiledStGcnOps(IStGcnOps inner, IOpClock clock) : IStGcnOps
{
    public OpTimeline Timeline { get; } = new(clock);
    public string Name => inner.Name;

    private void Done(string op) => Timeline.Record(op);
    private static string Conv(string op, int cin, int cout, int t, int stride) =>
        string.Create(CultureInfo.InvariantCulture, $"{op} {cin}->{cout} T{t}{(stride > 1 ? $" s{stride}" : "")}");

    public Tensor Allocate(int length) => inner.Allocate(length);
    public Tensor Adopt(float[] host) => inner.Adopt(host);
    public Tensor View(Tensor storage, int offset, int length) => inner.View(storage, offset, length);
    public void Free(Tensor t) => inner.Free(t);
    public void Upload(ReadOnlySpan<float> source, Tensor destination) { inner.Upload(source, destination); Done("Upload"); }
    public void Download(Tensor source, Span<float> destination) { inner.Download(source, destination); Done("Download"); }
    public void Zero(Tensor t) { inner.Zero(t); Done("Zero"); }

    public void InputToBnLayout(Tensor x, Tensor y, int n, int c, int t, int v, int m) { inner.InputToBnLayout(x, y, n, c, t, v, m); Done("Layout"); }
    public void InputToBnLayoutBackward(Tensor dy, Tensor dx, int n, int c, int t, int v, int m) { inner.InputToBnLayoutBackward(dy, dx, n, c, t, v, m); Done("LayoutBackward"); }
    public void BnToBlockLayout(Tensor x, Tensor y, int b, int c, int t, int v) { inner.BnToBlockLayout(x, y, b, c, t, v); Done("Layout"); }
    public void BnToBlockLayoutBackward(Tensor dy, Tensor dx, int b, int c, int t, int v) { inner.BnToBlockLayoutBackward(dy, dx, b, c, t, v); Done("LayoutBackward"); }

    public void BatchNormTrainForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor saveMean, Tensor saveRstd,
        Tensor runMean, Tensor runVar, int b, int c, int l, double eps, double momentum)
    {
        inner.BatchNormTrainForward(x, gamma, beta, y, saveMean, saveRstd, runMean, runVar, b, c, l, eps, momentum);
        Done($"BatchNormTrain C{c} L{l}");
    }

    public void BatchNormEvalForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor runMean, Tensor runVar, int b, int c, int l, double eps)
    {
        inner.BatchNormEvalForward(x, gamma, beta, y, runMean, runVar, b, c, l, eps);
        Done($"BatchNormEval C{c} L{l}");
    }

    public void BatchNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveRstd, Tensor dx, Tensor dGamma, Tensor dBeta, int b, int c, int l)
    {
        inner.BatchNormBackward(dy, x, gamma, saveMean, saveRstd, dx, dGamma, dBeta, b, c, l);
        Done($"BatchNormBackward C{c} L{l}");
    }

    public void Conv1x1Forward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int stride)
    {
        inner.Conv1x1Forward(x, w, bias, y, b, cin, cout, t, v, stride);
        Done(Conv("Conv1x1", cin, cout, t, stride));
    }

    public void Conv1x1Backward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int stride)
    {
        inner.Conv1x1Backward(dy, x, w, dx, dW, dBias, b, cin, cout, t, v, stride);
        Done(Conv("Conv1x1Backward", cin, cout, t, stride));
    }

    public void GraphAggregateForward(Tensor y, Tensor a, Tensor imp, Tensor o, int b, int k, int c, int t, int v)
    {
        inner.GraphAggregateForward(y, a, imp, o, b, k, c, t, v);
        Done($"GraphAggregate C{c} T{t}");
    }

    public void GraphAggregateBackward(Tensor dO, Tensor y, Tensor a, Tensor imp, Tensor dy, Tensor dImp, int b, int k, int c, int t, int v)
    {
        inner.GraphAggregateBackward(dO, y, a, imp, dy, dImp, b, k, c, t, v);
        Done($"GraphAggregateBackward C{c} T{t}");
    }

    public void TemporalConvForward(Tensor x, Tensor w, Tensor bias, Tensor y, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        inner.TemporalConvForward(x, w, bias, y, b, cin, cout, t, v, kt, stride);
        Done(Conv("TemporalConv", cin, cout, t, stride));
    }

    public void TemporalConvBackward(Tensor dy, Tensor x, Tensor w, Tensor dx, Tensor dW, Tensor dBias, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        inner.TemporalConvBackward(dy, x, w, dx, dW, dBias, b, cin, cout, t, v, kt, stride);
        Done(Conv("TemporalConvBackward", cin, cout, t, stride));
    }

    public void ReluForward(Tensor x, Tensor y) { inner.ReluForward(x, y); Done("Relu"); }
    public void ReluBackward(Tensor dy, Tensor y, Tensor dx) { inner.ReluBackward(dy, y, dx); Done("ReluBackward"); }
    public void ResidualReluForward(Tensor a, Tensor? r, Tensor y) { inner.ResidualReluForward(a, r, y); Done("ResidualRelu"); }
    public void ResidualReluBackward(Tensor dy, Tensor y, Tensor da, Tensor? dr) { inner.ResidualReluBackward(dy, y, da, dr); Done("ResidualReluBackward"); }
    public void AddInPlace(Tensor source, Tensor destination) { inner.AddInPlace(source, destination); Done("AddInPlace"); }
    public void PoolForward(Tensor x, Tensor f, int n, int m, int c, int l) { inner.PoolForward(x, f, n, m, c, l); Done("Pool"); }
    public void PoolBackward(Tensor df, Tensor dx, int n, int m, int c, int l) { inner.PoolBackward(df, dx, n, m, c, l); Done("PoolBackward"); }

    public double CrossEntropy(Tensor logits, ReadOnlySpan<int> labels, Tensor dLogits, int n, int k)
    {
        double r = inner.CrossEntropy(logits, labels, dLogits, n, k);
        Done("CrossEntropy");
        return r;
    }

    public void SgdNesterovStep(Tensor p, Tensor g, Tensor buf, double lr, double momentum, double weightDecay)
    {
        inner.SgdNesterovStep(p, g, buf, lr, momentum, weightDecay);
        Done("SgdNesterov");
    }
}
