using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tdsm.Evaluation;
using Tdsm.Formats;
using Tdsm.Training;

namespace Tdsm.Trainer.Reporting;

/// <summary>
/// Writes a run folder's report: <c>report.json</c>, <c>report.md</c> and the plots
/// (<c>loss_curves.png</c>, <c>per_class_accuracy.png</c>, <c>confusion_matrix.png</c>, and
/// <c>baseline_confusion_matrix.png</c> when the baseline's matrix is given). Text files are written
/// atomically.
/// </summary>
public static class ReportWriter
{
    /// <summary>File names inside the run folder.</summary>
    public const string JsonFile = "report.json", MarkdownFile = "report.md", LossPlot = "loss_curves.png",
        PerClassPlot = "per_class_accuracy.png", ConfusionPlot = "confusion_matrix.png", BaselineConfusionPlot = "baseline_confusion_matrix.png";

    /// <summary>Writes everything and returns the paths written.</summary>
    /// <param name="runDir">The run folder (created if missing).</param>
    /// <param name="report">The numbers.</param>
    /// <param name="curve">TDSM's logged loss points (may be empty: no loss plot).</param>
    /// <param name="confusion">TDSM's zero-shot confusion matrix over the unseen classes (null: no per-class or confusion plots).</param>
    /// <param name="baselineConfusion">The baseline's, same classes (optional).</param>
    /// <param name="classNames">Name of each class id (index = id); ids beyond it are shown as numbers.</param>
    public static IReadOnlyList<string> Write(string runDir, RunReport report, IReadOnlyList<LossPoint> curve,
        ConfusionMatrix? confusion = null, ConfusionMatrix? baselineConfusion = null, IReadOnlyList<string>? classNames = null)
    {
        Directory.CreateDirectory(runDir);
        if (confusion is not null && baselineConfusion is not null && !confusion.Classes.SequenceEqual(baselineConfusion.Classes))
            throw new ArgumentException("the TDSM and baseline confusion matrices cover different classes");
        string Name(int id) => classNames is not null && id >= 0 && id < classNames.Count ? classNames[id] : id.ToString(CultureInfo.InvariantCulture);
        var written = new List<string>();

        var json = ToJson(report, confusion, baselineConfusion, Name);
        var jsonPath = Path.Combine(runDir, JsonFile);
        AtomicFile.Write(jsonPath, s => { using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }); json.WriteTo(w); });
        written.Add(jsonPath);

        if (curve.Count > 0) { var p = Path.Combine(runDir, LossPlot); Plots.LossCurves(p, curve, report.Title); written.Add(p); }
        if (confusion is not null)
        {
            var names = confusion.Classes.Select(Name).ToArray();
            var p = Path.Combine(runDir, PerClassPlot);
            Plots.PerClassAccuracy(p, names, confusion.PerClassAccuracy(), baselineConfusion?.PerClassAccuracy());
            written.Add(p);
            p = Path.Combine(runDir, ConfusionPlot);
            Plots.Confusion(p, names, confusion.Counts, $"TDSM zero-shot confusion (top-1 {report.ZslTop1 * 100:F1}%)");
            written.Add(p);
            if (baselineConfusion is not null)
            {
                p = Path.Combine(runDir, BaselineConfusionPlot);
                Plots.Confusion(p, names, baselineConfusion.Counts, $"Baseline zero-shot confusion (top-1 {report.BaselineTop1 * 100:F1}%)");
                written.Add(p);
            }
        }

        var mdPath = Path.Combine(runDir, MarkdownFile);
        var md = Markdown(report, confusion, baselineConfusion, Name, written.Select(Path.GetFileName).Where(f => f!.EndsWith(".png", StringComparison.Ordinal)).ToList()!);
        AtomicFile.Write(mdPath, s => s.Write(Encoding.UTF8.GetBytes(md)));
        written.Insert(1, mdPath);
        return written;
    }

    /// <summary>The report.json tree.</summary>
    public static JsonObject ToJson(RunReport r, ConfusionMatrix? confusion = null, ConfusionMatrix? baselineConfusion = null, Func<int, string>? name = null)
    {
        name ??= id => id.ToString(CultureInfo.InvariantCulture);
        var o = new JsonObject
        {
            ["title"] = r.Title,
            ["zsl_top1"] = r.ZslTop1,
            ["baseline_top1"] = r.BaselineTop1,
            ["chance"] = r.Chance,
            ["num_unseen"] = r.NumUnseen,
            ["seed"] = r.Seed,
            ["backend"] = r.Backend,
            ["stage_seconds"] = new JsonObject(r.Stages.Select(s => KeyValuePair.Create(s.Name, (JsonNode?)JsonValue.Create(Math.Round(s.Seconds, 3))))),
            ["total_seconds"] = Math.Round(r.TotalSeconds, 3),
        };
        if (r.UnseenClasses is not null) o["unseen_classes"] = new JsonArray([.. r.UnseenClasses.Select(c => (JsonNode?)JsonValue.Create(c))]);
        if (r.Gzsl is not null) o["gzsl"] = Gzsl(r.Gzsl);
        if (r.BaselineGzsl is not null) o["baseline_gzsl"] = Gzsl(r.BaselineGzsl);
        if (r.Seeds is { Count: > 0 } seeds)
        {
            o["seeds"] = new JsonArray([.. seeds.Select(s =>
            {
                var e = new JsonObject { ["seed"] = s.Seed, ["zsl_top1"] = s.ZslTop1, ["baseline_top1"] = s.BaselineTop1 };
                if (s.Gzsl is not null) e["gzsl"] = Gzsl(s.Gzsl);
                if (s.BaselineGzsl is not null) e["baseline_gzsl"] = Gzsl(s.BaselineGzsl);
                return (JsonNode?)e;
            })]);
            var multi = new JsonObject { ["zsl_top1"] = Ms(r.ZslOverSeeds!.Value), ["baseline_top1"] = Ms(r.BaselineOverSeeds!.Value) };
            if (seeds.All(s => s.Gzsl is not null)) multi["gzsl_harmonic"] = Ms(MeanStd.Of(seeds.Select(s => s.Gzsl!.HarmonicMean)));
            if (seeds.All(s => s.BaselineGzsl is not null)) multi["baseline_gzsl_harmonic"] = Ms(MeanStd.Of(seeds.Select(s => s.BaselineGzsl!.HarmonicMean)));
            o["multi_seed"] = multi;
        }
        if (confusion is not null) o["per_class"] = PerClass(confusion, name);
        if (baselineConfusion is not null) o["baseline_per_class"] = PerClass(baselineConfusion, name);
        if (r.Notes.Count > 0) o["notes"] = new JsonArray([.. r.Notes.Select(n => (JsonNode?)JsonValue.Create(n))]);
        o["configs"] = JsonSerializer.SerializeToNode(r.Configs);
        return o;

        static JsonObject Gzsl(GzslResult g) => new()
        {
            ["seen"] = g.SeenAccuracy, ["unseen"] = g.UnseenAccuracy, ["harmonic"] = g.HarmonicMean, ["gamma"] = g.Gamma,
            ["seen_samples"] = g.SeenSamples, ["unseen_samples"] = g.UnseenSamples,
        };
        static JsonObject Ms(MeanStd m) => new() { ["mean"] = m.Mean, ["std"] = m.Std, ["n"] = m.Count };
    }

    private static JsonArray PerClass(ConfusionMatrix cm, Func<int, string> name)
    {
        var acc = cm.PerClassAccuracy();
        var support = cm.Support;
        return new JsonArray([.. cm.Classes.Select((c, i) => (JsonNode?)new JsonObject
        {
            ["class"] = c, ["name"] = name(c), ["samples"] = support[i], ["accuracy"] = double.IsNaN(acc[i]) ? null : acc[i],
        })]);
    }

    /// <summary>The report.md text.</summary>
    public static string Markdown(RunReport r, ConfusionMatrix? confusion, ConfusionMatrix? baselineConfusion, Func<int, string> name, IReadOnlyList<string> plots)
    {
        var inv = CultureInfo.InvariantCulture;
        string P(double x) => double.IsNaN(x) ? "–" : (100 * x).ToString("F2", inv) + "%";
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"# {r.Title}").AppendLine();
        sb.AppendLine(inv, $"Backend `{r.Backend}`, seed {r.Seed}, {r.NumUnseen} unseen classes, total {r.TotalSeconds:F1} s.").AppendLine();
        sb.AppendLine("| model | ZSL top-1 | GZSL seen | GZSL unseen | GZSL H |").AppendLine("| --- | ---: | ---: | ---: | ---: |");
        sb.AppendLine(inv, $"| TDSM | {P(r.ZslTop1)} | {G(r.Gzsl, g => g.SeenAccuracy)} | {G(r.Gzsl, g => g.UnseenAccuracy)} | {G(r.Gzsl, g => g.HarmonicMean)} |");
        sb.AppendLine(inv, $"| direct-alignment baseline | {P(r.BaselineTop1)} | {G(r.BaselineGzsl, g => g.SeenAccuracy)} | {G(r.BaselineGzsl, g => g.UnseenAccuracy)} | {G(r.BaselineGzsl, g => g.HarmonicMean)} |");
        sb.AppendLine(inv, $"| chance (1/{r.NumUnseen}) | {P(r.Chance)} | | | |").AppendLine();
        var gammas = new[] { (r.Gzsl, "TDSM"), (r.BaselineGzsl, "baseline") }.Where(g => g.Item1 is not null)
            .Select(g => string.Create(inv, $"{g.Item1!.Gamma:G4} ({g.Item2})")).ToList();
        if (gammas.Count > 0)
            sb.AppendLine(inv, $"GZSL: every seen + unseen class is a candidate; calibrated stacking (γ penalises seen classes) with γ = {string.Join(", ", gammas)}, chosen on seen-class validation data only.").AppendLine();
        if (r.Seeds is { Count: > 0 } seeds)
        {
            sb.AppendLine(inv, $"## Over {seeds.Count} seeds").AppendLine();
            sb.AppendLine("| seed | TDSM top-1 | baseline top-1 |").AppendLine("| ---: | ---: | ---: |");
            foreach (var s in seeds) sb.AppendLine(inv, $"| {s.Seed} | {P(s.ZslTop1)} | {P(s.BaselineTop1)} |");
            sb.AppendLine(inv, $"| mean ± std | {r.ZslOverSeeds!.Value.Scale(100).ToString("F2")} | {r.BaselineOverSeeds!.Value.Scale(100).ToString("F2")} |").AppendLine();
        }
        if (confusion is not null)
        {
            var a = confusion.PerClassAccuracy();
            var b = baselineConfusion?.PerClassAccuracy();
            var support = confusion.Support;
            sb.AppendLine("## Per unseen class").AppendLine();
            sb.AppendLine("| id | class | samples | TDSM | baseline |").AppendLine("| ---: | --- | ---: | ---: | ---: |");
            for (int i = 0; i < confusion.Classes.Count; i++)
                sb.AppendLine(inv, $"| {confusion.Classes[i]} | {name(confusion.Classes[i]).Replace("|", "\\|", StringComparison.Ordinal)} | {support[i]} | {P(a[i])} | {(b is null ? "–" : P(b[i]))} |");
            sb.AppendLine();
        }
        sb.AppendLine("## Stages").AppendLine().AppendLine("| stage | seconds |").AppendLine("| --- | ---: |");
        foreach (var s in r.Stages) sb.AppendLine(inv, $"| {s.Name} | {s.Seconds:F1} |");
        sb.AppendLine();
        if (r.Notes.Count > 0) { sb.AppendLine("## Notes").AppendLine(); foreach (var n in r.Notes) sb.AppendLine(inv, $"- {n}"); sb.AppendLine(); }
        if (plots.Count > 0) { sb.AppendLine("## Plots").AppendLine(); foreach (var p in plots) sb.AppendLine(inv, $"![{p}]({p})"); sb.AppendLine(); }
        sb.AppendLine("The full configuration is in report.json (`configs`).");
        return sb.ToString();

        string G(GzslResult? g, Func<GzslResult, double> f) => g is null ? "–" : P(f(g));
    }
}
