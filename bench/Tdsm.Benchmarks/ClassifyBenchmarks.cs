using BenchmarkDotNet.Attributes;
using Tdsm.Inference;
using Tdsm.Model;
using Tdsm.Tensors;
using Tdsm.Text;

namespace Tdsm.Benchmarks;

/// <summary>
/// End-to-end latency of classifying one skeleton feature against K candidates (3 test noises,
/// so 3·K DiT rows), feature input, random weights, through the allocation-free overload. The
/// candidate set (text features and per-class constants) is built once in the setup.
/// </summary>
/// <remarks>Small runs many invocations per iteration (the allocation column is then a per-call
/// average over many calls); the paper config (seconds per call) runs one invocation per iteration.</remarks>
public abstract class ClassifyBenchmarks
{
    /// <summary>"Small" or "PaperMiniLM".</summary>
    public abstract string Config { get; set; }

    [Params(5, 20, 60)]
    public int Candidates { get; set; }

    private ActionRecognizer _r = null!;
    private CandidateSet _set = null!;
    private float[] _x = [];
    private ClassScore[] _ranked = [];

    [GlobalSetup]
    public void Setup()
    {
        var cfg = Config == "Small" ? DiTConfig.Small : DiTConfig.PaperMiniLM;
        var p = new float[DiT.BuildLayout(cfg).Count];
        new Rng(1).FillNormal(p, 0.02);
        var noise = new float[3 * cfg.InChannels];
        new Rng(2).FillNormal(noise);
        _r = ActionRecognizer.FromParameters(cfg, p, noise);
        var text = new float[Candidates * ClassTextFeatures.Rows * cfg.CondSize];
        new Rng(3).FillNormal(text);
        _set = _r.CreateCandidates(new ClassTextFeatures(Enumerable.Range(0, Candidates).Select(i => $"class {i}").ToArray(), text, cfg.CondSize));
        _x = new float[cfg.InChannels];
        new Rng(4).FillNormal(_x);
        _ranked = new ClassScore[Candidates];
    }

    [Benchmark]
    public int Classify() => _r.Classify(_x, _set, _ranked);
}

/// <summary><see cref="ClassifyBenchmarks"/> at <see cref="DiTConfig.Small"/>.</summary>
[MemoryDiagnoser]
[Config(typeof(ShortConfig))]
public class ClassifySmallBenchmarks : ClassifyBenchmarks
{
    [Params("Small")]
    public override string Config { get; set; } = "Small";
}

/// <summary><see cref="ClassifyBenchmarks"/> at <see cref="DiTConfig.PaperMiniLM"/> (random weights).</summary>
[MemoryDiagnoser]
[Config(typeof(LongOpConfig))]
public class ClassifyPaperBenchmarks : ClassifyBenchmarks
{
    [Params("PaperMiniLM")]
    public override string Config { get; set; } = "PaperMiniLM";
}
