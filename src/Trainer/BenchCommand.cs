using System.Globalization;
using System.Diagnostics;
using Tdsm.Gpu;
using Tdsm.Model;
using Tdsm.Ops;
using Tdsm.Tensors;
using Tdsm.Training;

namespace Tdsm.Trainer;

/// <summary>`bench`: end-to-end timing of the TDSM training step and all-candidate inference on random data.</summary>
public sealed class BenchCommand : ICommand
{
    public string Name => "bench";
    public string Summary => "time the training step and zero-shot inference at a model config (ms/step, rows/s, memory)";
    public string Help => """
        usage: bench [--config paper|paper-minilm|small|tiny] [--hidden H] [--depth D] [--heads N] [--in-channels C] [--cond D]
                     [--backend cpu|gpu|gpu-bf16|gpu-tf32|gpu-sim|reference]
                     [--batch B] [--steps N] [--warmup W] [--infer-samples S] [--infer-classes K]
                     [--noises J] [--chunk-rows R] [--seed S] [--precision fp32|bf16|tf32] [--profile N]

        Times, on random features and random text features (timings do not depend on values):
          - the training step (forward of 2B rows, TD loss, backward, AdamW): median and mean ms
            over --steps steps after --warmup untimed ones, each waiting for its loss; then --steps
            more queued back to back as the training loop runs them (ms/step of the whole group);
          - all-candidate zero-shot inference: S samples x K classes x J noises DiT rows through
            the network in equal chunks of at most R rows, reported as rows per second;
          - memory: on the GPU the peak of tensor memory this program held on the device, on the
            CPU the process's peak working set.
        --profile N then runs N more training steps and one more inference call with a mark after
        every op (a CUDA event on the GPU) and prints where the time went: each op and size with its
        calls, ms and share, then the shares by op family. An op is charged from the previous mark to
        its own, so on the GPU idle gaps while the host launches count against the op that waited. On the GPU
        each product ("GEMM <kernel> MxNxK <layout>") and each bf16 pack pass inside an op has a row of its own,
        the op's row keeping the rest (bias sums, other kernels); with --precision bf16 the training steps and
        the inference call are then profiled once more on packed operands (the LdMatrix kernel, the default
        of train and eval, or the one TDSM_PACKED_GEMM names).
        --precision bf16 or tf32 (GPU backends only) runs the GEMMs on tensor cores with bf16 / tf32
        operands and fp32 accumulation; fp32 (the default) is the SIMT kernel the parity checks use.
        With bf16, inference is then timed again for each kernel on packed bf16 operands (weights packed
        once per call, LN-modulate's outputs cast by that kernel, other activations packed before each
        product; GpuOps.PackedGemm), with its score differences, and then --steps queued training steps
        each (weights from the bf16 copy AdamW keeps, dy's rows and columns packed in one pass for the
        backward's two products, the other operands packed before each product). TDSM_BENCH_SKIP_PACKED=
        Wgmma,WgmmaDeep (kernel names, comma-separated) leaves those kernels out: the GPU visit does so
        for a kernel that its GEMM probe found failing, whose fault would cost the runs after it.
        Defaults are the paper setting (issue 6): --config paper --batch 256 (512 rows), inference
        128 samples x 60 classes x 3 noises, --chunk-rows 2048. `tiny` is the default run's DiT (C_in 128,
        cond 768, hidden 64, depth 2, 4 heads; the run trains it at --batch 64); --hidden, --depth, --heads,
        --in-channels and --cond override the preset's numbers.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string configName = args.Get("--config") ?? "paper";
        string backend = args.Get("--backend") ?? "cpu";
        int batch = args.GetInt("--batch", 256);
        int steps = args.GetInt("--steps", 10);
        int warmup = args.GetInt("--warmup", 2);
        int samples = args.GetInt("--infer-samples", 128);
        int classes = args.GetInt("--infer-classes", 60);
        int noises = args.GetInt("--noises", 3);
        int chunk = args.GetInt("--chunk-rows", 2048);
        ulong seed = args.GetSeed("--seed", 0);
        string precision = args.Get("--precision") ?? "fp32";
        int profileSteps = args.GetInt("--profile", 0);
        int? hidden = args.GetIntOrNull("--hidden"), depth = args.GetIntOrNull("--depth"), heads = args.GetIntOrNull("--heads");
        int? inChannels = args.GetIntOrNull("--in-channels"), cond = args.GetIntOrNull("--cond");
        args.EnsureAllUsed();
        if (precision is not ("fp32" or "bf16" or "tf32")) throw new CommandLineException($"unknown precision '{precision}' (expected fp32, bf16 or tf32)");
        var cfg = configName switch
        {
            "paper" => DiTConfig.Paper,
            "paper-minilm" => DiTConfig.PaperMiniLM,
            "small" => DiTConfig.Small,
            "tiny" => DiTConfig.Tiny,
            _ => throw new CommandLineException($"unknown config '{configName}' (expected paper, paper-minilm, small or tiny)"),
        };
        cfg = cfg with
        {
            Hidden = hidden ?? cfg.Hidden, Depth = depth ?? cfg.Depth, Heads = heads ?? cfg.Heads,
            InChannels = inChannels ?? cfg.InChannels, CondSize = cond ?? cfg.CondSize,
        };
        try { cfg = cfg.Validated(); }
        catch (ArgumentException e) { throw new CommandLineException($"bench: {e.Message}"); }
        if (batch <= 0 || steps <= 0 || warmup < 0 || samples <= 0 || classes <= 0 || noises <= 0 || chunk <= 0 || profileSteps < 0)
            throw new CommandLineException("sizes must be positive");
        // Packed kernels to leave out of the bf16 runs (read now: a wrong name must not surface after minutes of timing).
        var skip = (Environment.GetEnvironmentVariable("TDSM_BENCH_SKIP_PACKED") ?? "")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(name => GpuOps.TryParsePackedGemm(name, out var k) ? k
                : throw new CommandLineException($"TDSM_BENCH_SKIP_PACKED: '{name}' is not a packed kernel (expected names among {string.Join(", ", Enum.GetNames<PackedGemmKernel>())})"))
            .ToHashSet();

        // --precision P selects the backend name gpu[-sim]-P (see Backends.ParseGpu).
        if (precision != "fp32")
        {
            var gpu = Backends.ParseGpu(backend) ?? throw new CommandLineException($"--precision {precision} needs a GPU backend (got '{backend}')");
            backend = (gpu.Simulator ? "gpu-sim-" : "gpu-") + precision;
        }
        var raw = Backends.Create(backend, profiling: profileSteps > 0);
        // The headline figures on fp32 operands, so that the packed-operand lines below compare against them
        // (train, eval and run use GpuOps' default, the packed LdMatrix kernel).
        if (raw is GpuOps unpacked) unpacked.PackedGemm = PackedGemmKernel.Off;
        try
        {
            stdout.WriteLine($"bench: {configName} {cfg} on '{raw.Name}'{(raw is GpuOps g ? $" ({g.Device.Accelerator.Name}, {g.GemmPrecision} GEMMs)" : $" ({Environment.ProcessorCount} cores)")}");
            // --profile: the model runs on a wrapper that marks the queue after every op while a profiled span is open.
            ProfiledOps? profiler = profileSteps > 0 ? new ProfiledOps(raw, raw is GpuOps gp ? new GpuOpClock(gp.Device) : new HostOpClock()) : null;
            // On the GPU every product and bf16 pack pass inside an op gets its own row (GpuOps.DetailMark).
            if (profiler is not null && raw is GpuOps detailed) detailed.DetailMark = profiler.Timeline.Record;
            IOps ops = profiler ?? raw;
            var rng = new Rng(seed);
            var model = new DiT(cfg, ops);
            var init = new float[model.Layout.Count];
            rng.FillNormal(init, 0.02);
            model.LoadParameters(init);
            var text = new float[classes * cfg.Tokens * cfg.CondSize];
            rng.FillNormal(text);
            var table = new TextTable(ops, text, classes, cfg.Tokens, cfg.CondSize);
            int n = Math.Max(batch, 4 * batch);
            var feats = new float[n * cfg.InChannels];
            rng.FillNormal(feats);
            var labels = Enumerable.Range(0, n).Select(i => i % classes).ToArray();

            int packedTrainSteps = precision == "bf16" ? 3 * (1 + steps) + profileSteps : 0; // the packed-operand runs at the end
            var trainer = new TdsmTrainer(model, new TrainConfig(Iterations: warmup + 2 * steps + profileSteps + packedTrainSteps, Batch: batch, Warmup: 1, Seed: seed), feats, labels, table,
                Enumerable.Range(0, classes).ToArray());
            trainer.TrainSteps(warmup);
            var times = new List<double>();
            for (int i = 0; i < steps; i++)
            {
                var sw = Stopwatch.StartNew();
                var p = trainer.TrainStep(); // returns after the loss came back: the step is complete on the device
                times.Add(sw.Elapsed.TotalMilliseconds);
                stdout.WriteLine($"  step {p.Step,4}: {times[^1],9:F1} ms  loss {p.Loss:F5}");
            }
            times.Sort();
            stdout.WriteLine($"train step (batch {batch} = {2 * batch} rows): median {times[times.Count / 2]:F1} ms, mean {times.Average():F1} ms, min {times[0]:F1} ms (loss read back after each step)");
            // The training loop's way: steps queued back to back, the losses read back once per group.
            var swq = Stopwatch.StartNew();
            var queued = trainer.TrainSteps(steps);
            double perStep = swq.Elapsed.TotalMilliseconds / steps;
            stdout.WriteLine($"train steps queued ({steps} steps, one loss read-back per {TdsmTrainer.MaxQueuedSteps}): {perStep:F1} ms/step, last loss {queued[^1].Loss:F5}");
            if (profiler is not null)
            {
                profiler.Timeline.Begin();
                trainer.TrainSteps(profileSteps);
                ProfileTable.Print(stdout, profiler.Timeline.Collect(), profileSteps, $"train step profile ({profileSteps} queued steps, per step)");
            }

            long trainPeak = raw is GpuOps gt ? gt.PeakAllocatedBytes : 0;
            var scorer = new ZeroShotScorer(model, chunk);
            var x = new float[samples * cfg.InChannels];
            rng.FillNormal(x);
            var eps = Checkpoint.DrawTestNoise(noises, cfg.InChannels, seed);
            scorer.Score(x.AsSpan(0, Math.Min(samples, 2) * cfg.InChannels), Math.Min(samples, 2), table, eps); // warm-up (kernel compilation)
            var swi = Stopwatch.StartNew();
            var reference = scorer.Score(x, samples, table, eps);
            double sec = swi.Elapsed.TotalSeconds;
            long rows = (long)samples * classes * noises;
            stdout.WriteLine($"inference ({samples} samples x {classes} classes x {noises} noises = {rows} rows): {sec * 1000:F0} ms, {rows / sec:F0} rows/s");
            if (profiler is not null)
            {
                profiler.Timeline.Begin();
                scorer.Score(x, samples, table, eps);
                ProfileTable.Print(stdout, profiler.Timeline.Collect(), 1, "inference profile (one Score call)");
            }
            const double GiB = 1024.0 * 1024 * 1024;
            if (raw is GpuOps gpu)
            {
                stdout.WriteLine($"peak device tensor memory: training {trainPeak / GiB:F2} GiB (parameters, gradients, Adam moments, activations, GEMM workspaces); " +
                    $"with inference {gpu.PeakAllocatedBytes / GiB:F2} GiB (+ {chunk}-row forward-only workspace and class constants) of {gpu.Device.Accelerator.MemorySize / GiB:F1} GiB");
                stdout.WriteLine($"joint attention: {gpu.TiledAttentionLaunches} launches on the register-tiled kernels so far " +
                    $"({(gpu.UsesTiledAttention(cfg.LocalTokens, cfg.Hidden, cfg.Heads) ? "the default for this config" : "not taken at this config: scalar kernels")})");
            }
            else
                stdout.WriteLine($"peak process working set: {Process.GetCurrentProcess().PeakWorkingSet64 / GiB:F2} GiB");
            int failed = 0;
            if (raw is GpuOps packable && packable.GemmPrecision == GemmPrecision.Bf16)
            {
                // Last, so that a fault in these kernels cannot cost the figures above, and the riskier kernel (ldmatrix)
                // last in each loop. First, for each packed-operand kernel, the same inference call with the weights and
                // activations packed as bf16 pairs (same bits by construction; the differences are printed, not
                // assumed); then, since training changes the parameters that comparison needs, queued training steps
                // inside the trainer's BindParameters scope (the weights from the bf16 copy AdamW keeps, the other
                // operands packed before each product, across their columns for dx and dW).
                // The wgmma kernels (Hopper only) last: the newest, and on another GPU they fail at once and say why.
                var kinds = new[] { PackedGemmKernel.Packed, PackedGemmKernel.LdMatrix, PackedGemmKernel.LdMatrixWide, PackedGemmKernel.LdMatrixAsync, PackedGemmKernel.LdMatrixWideAsync,
                    PackedGemmKernel.Wgmma, PackedGemmKernel.WgmmaDeep };
                if (skip.Count > 0)
                {
                    kinds = kinds.Where(k => !skip.Contains(k)).ToArray();
                    stdout.WriteLine($"packed kernels left out (TDSM_BENCH_SKIP_PACKED): {string.Join(", ", skip)}");
                }
                // A failure is reported and the next kernel still tried (after a CUDA fault that fails too, and says so).
                void Try(PackedGemmKernel kind, string what, Action run)
                {
                    packable.PackedGemm = kind;
                    try { run(); }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        failed++;
                        stdout.WriteLine($"{what} (packed bf16 operands, {kind}): FAILED: {e.GetType().Name}: {e.Message}");
                    }
                    finally { packable.PackedGemm = PackedGemmKernel.Off; }
                }
                foreach (var kind in kinds)
                    Try(kind, "inference", () =>
                    {
                        scorer.Score(x.AsSpan(0, Math.Min(samples, 2) * cfg.InChannels), Math.Min(samples, 2), table, eps); // compiles the kernels
                        long products = packable.PackedProducts, mlps = packable.PackedMlps;
                        var swp = Stopwatch.StartNew();
                        var packed = scorer.Score(x, samples, table, eps);
                        double psec = swp.Elapsed.TotalSeconds;
                        double maxDiff = 0;
                        for (int i = 0; i < samples; i++)
                            for (int k = 0; k < classes; k++) maxDiff = Math.Max(maxDiff, Math.Abs(packed.Scores[i, k] - reference.Scores[i, k]));
                        int differ = packed.Predictions.Where((p, i) => p != reference.Predictions[i]).Count();
                        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"inference (packed bf16 operands, {kind}): {psec * 1000:F0} ms, {rows / psec:F0} rows/s ({sec / psec:F2}x); " +
                            $"{packable.PackedProducts - products} products packed ({packable.PackedMlps - mlps} MLPs fused); vs fp32 operands: " +
                            $"max |score diff| {maxDiff:G3}, {differ} of {samples} predictions differ"));
                    });
                foreach (var kind in kinds)
                    Try(kind, "train steps queued", () =>
                    {
                        trainer.TrainSteps(1); // compiles the training kernels
                        long products = packable.PackedProducts, adamw = packable.PackedAdamWSteps;
                        var swt = Stopwatch.StartNew();
                        var points = trainer.TrainSteps(steps);
                        double ms = swt.Elapsed.TotalMilliseconds / steps;
                        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"train steps queued (packed bf16 operands, {kind}): {ms:F1} ms/step ({perStep / ms:F2}x the queued fp32-operand steps), " +
                            $"last loss {points[^1].Loss:F5}; per step {(packable.PackedProducts - products) / steps} products packed, " +
                            $"{(packable.PackedAdamWSteps - adamw) / steps} AdamW launches writing the bf16 weights"));
                    });
                stdout.WriteLine($"peak device tensor memory with packed operands: {packable.PeakAllocatedBytes / GiB:F2} GiB (+ the packed parameters and the largest packed operands)");
                stdout.WriteLine(LiftedKernels.Summary());
                if (profiler is not null)
                {
                    // Where the default bf16 path (packed operands; the kernel TDSM_PACKED_GEMM names, the device's default without
                    // it) spends its time: products, packs and the rest.
                    var deviceDefault = GpuOps.DefaultPackedGemm(packable.Device.Accelerator);
                    var profiled = GpuOps.PackedGemmSetting(Environment.GetEnvironmentVariable("TDSM_PACKED_GEMM"), deviceDefault);
                    if (profiled == PackedGemmKernel.Off) profiled = deviceDefault;
                    Try(profiled, "train step profile", () =>
                    {
                        profiler.Timeline.Begin();
                        trainer.TrainSteps(profileSteps);
                        ProfileTable.Print(stdout, profiler.Timeline.Collect(), profileSteps, $"train step profile, packed bf16 operands ({profiled}) ({profileSteps} queued steps, per step)");
                    });
                    Try(profiled, "inference profile", () =>
                    {
                        profiler.Timeline.Begin();
                        scorer.Score(x, samples, table, eps);
                        ProfileTable.Print(stdout, profiler.Timeline.Collect(), 1, $"inference profile, packed bf16 operands ({profiled}) (one Score call)");
                    });
                }
            }
            if (failed > 0) stderr.WriteLine($"bench: {failed} packed-operand run(s) failed (above)");
            return failed > 0 ? 1 : 0;
        }
        finally { Backends.Release(raw); }
    }
}
