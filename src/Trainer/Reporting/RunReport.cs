using Tdsm.Evaluation;

namespace Tdsm.Trainer.Reporting;

/// <summary>Wall-clock seconds of one pipeline stage (e.g. "synth", "encode-text", "train", "eval").</summary>
public sealed record StageTime(string Name, double Seconds);

/// <summary>One seed's results in a multi-seed run.</summary>
public sealed record SeedResult(ulong Seed, double ZslTop1, double BaselineTop1, GzslResult? Gzsl = null, GzslResult? BaselineGzsl = null);

/// <summary>
/// What a run reports (written by <see cref="ReportWriter"/>). Accuracies are fractions in [0, 1];
/// <see cref="Chance"/> = 1 / <see cref="NumUnseen"/>. <see cref="Seeds"/> (optional) holds every
/// seed of a multi-seed run, whose mean ± std go into the report; the top-level numbers are then
/// those of <see cref="Seed"/>. <see cref="Configs"/> is any JSON-serialisable tree (e.g.
/// <c>{"run": RunConfig.ToDictionary()}</c>).
/// </summary>
public sealed record RunReport(
    double ZslTop1, double BaselineTop1, int NumUnseen, ulong Seed, string Backend,
    IReadOnlyList<StageTime> Stages, IReadOnlyDictionary<string, object?> Configs)
{
    /// <summary>1 / number of unseen classes: top-1 of a uniform random guess.</summary>
    public double Chance => NumUnseen > 0 ? 1.0 / NumUnseen : double.NaN;

    /// <summary>A short name of the run (the title of report.md).</summary>
    public string Title { get; init; } = "TDSM run";

    /// <summary>The unseen classes' ids, in the confusion matrices' order.</summary>
    public IReadOnlyList<int>? UnseenClasses { get; init; }

    /// <summary>TDSM's GZSL numbers, when evaluated.</summary>
    public GzslResult? Gzsl { get; init; }

    /// <summary>The baseline's GZSL numbers, when evaluated.</summary>
    public GzslResult? BaselineGzsl { get; init; }

    /// <summary>Every seed of a multi-seed run.</summary>
    public IReadOnlyList<SeedResult>? Seeds { get; init; }

    /// <summary>Free-form lines for report.md (data source, what was shortened and why, ...).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Total of the stage times.</summary>
    public double TotalSeconds => Stages.Sum(s => s.Seconds);

    /// <summary>Mean ± std of TDSM's top-1 over <see cref="Seeds"/>; null without seeds.</summary>
    public MeanStd? ZslOverSeeds => Seeds is { Count: > 0 } s ? MeanStd.Of(s.Select(r => r.ZslTop1)) : null;

    /// <summary>Mean ± std of the baseline's top-1 over <see cref="Seeds"/>; null without seeds.</summary>
    public MeanStd? BaselineOverSeeds => Seeds is { Count: > 0 } s ? MeanStd.Of(s.Select(r => r.BaselineTop1)) : null;
}
