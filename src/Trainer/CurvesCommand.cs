using System.Globalization;
using Tdsm.Data;

namespace Tdsm.Trainer;

/// <summary>
/// `curves`: compares two loss curves (loss.csv from `train`, e.g. the CPU tier's reference run and
/// the same command on the GPU) window by window, or summarises one curve.
/// </summary>
public sealed class CurvesCommand : ICommand
{
    public string Name => "curves";
    public string Summary => "compare two loss curves (loss.csv) window by window, or summarise one";
    public string Help => """
        usage: curves --a A.csv [--b B.csv] [--column loss] [--window 100] [--skip 2] [--tolerance 0.05]

        Reads loss.csv files as `train` writes them (header step,lr,loss,diffusion,triplet,seconds;
        only step and the compared column are required; steps strictly increasing). Steps are
        grouped into windows of --window steps (1..W, W+1..2W, ...) over the steps both curves
        cover; for each window it prints the mean of --column for A and B, B-A and (B-A)/|A|.
        Verdict PASS (exit 0) when every window after the first --skip ones has |relative
        difference| <= --tolerance and both curves fall (last window's mean below the first's);
        FAIL (exit 1) otherwise. A seconds column gives each curve's ms/iteration after its first
        logged step. With only --a: the windowed means of that curve, its fall and ms/iteration.
        Use `train --log-every 1` so each window holds every step.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string pathA = args.Require("--a");
        string? pathB = args.Get("--b");
        string column = args.Get("--column") ?? "loss";
        int window = args.GetInt("--window", 100), skip = args.GetInt("--skip", 2);
        double tolerance = args.GetDouble("--tolerance", 0.05);
        args.EnsureAllUsed();
        if (window <= 0 || skip < 0 || !(tolerance >= 0)) throw new CommandLineException("--window must be positive, --skip and --tolerance non-negative");

        var a = LossCurve.Load(pathA, column);
        var b = pathB is null ? null : LossCurve.Load(pathB, column);
        int last = b is null ? a.Steps[^1] : Math.Min(a.Steps[^1], b.Steps[^1]);
        var wa = a.WindowMeans(window, last);
        var wb = b?.WindowMeans(window, last);
        stdout.WriteLine($"curves: A = {Describe(a)}");
        if (b is not null) stdout.WriteLine($"        B = {Describe(b)}");
        string tol = b is null ? "" : string.Create(CultureInfo.InvariantCulture, $", tolerance {Pct(tolerance, 1)} after the first {skip} window(s)");
        stdout.WriteLine($"column '{column}', windows of {window} steps up to step {last}{tol}");
        stdout.WriteLine(b is null ? $"{"window",6} {"steps",13} {"A mean",10}" : $"{"window",6} {"steps",13} {"A mean",10} {"B mean",10} {"B-A",10} {"rel",8}");
        var rows = new List<WindowRow>();
        for (int w = 0; w < wa.Length; w++)
        {
            // Windows where a curve logged no step are left out (e.g. --log-every 100 with --window 50).
            if (wa[w].Count == 0 || (wb is not null && wb[w].Count == 0)) continue;
            var row = new WindowRow(w, w * window + 1, Math.Min((w + 1) * window, last), wa[w].Mean, wb is null ? double.NaN : wb[w].Mean);
            rows.Add(row);
            stdout.WriteLine(b is null
                ? string.Create(CultureInfo.InvariantCulture, $"{w + 1,6} {$"{row.First}-{row.Last}",13} {row.A,10:F5}")
                : string.Create(CultureInfo.InvariantCulture, $"{w + 1,6} {$"{row.First}-{row.Last}",13} {row.A,10:F5} {row.B,10:F5} {row.B - row.A,10:F5} {Pct(row.Relative),8}"));
        }
        if (rows.Count == 0) throw new DataFormatException($"{pathA}{(pathB is null ? "" : " and " + pathB)}: no window holds logged steps of both curves up to step {last}");

        bool fallsA = Falls(rows, r => r.A, out string fallA);
        stdout.WriteLine($"A: {fallA}{Speed(a)}");
        if (b is null) return 0;

        bool fallsB = Falls(rows, r => r.B, out string fallB);
        stdout.WriteLine($"B: {fallB}{Speed(b)}");
        var judged = rows.Where(r => r.Index >= skip).ToList();
        if (judged.Count == 0)
        {
            stdout.WriteLine($"verdict: FAIL (no window after the first {skip} to compare; the curves share {last} steps)");
            return 1;
        }
        var worst = judged.OrderByDescending(r => double.IsNaN(r.Relative) ? double.PositiveInfinity : Math.Abs(r.Relative)).First();
        bool within = judged.All(r => Math.Abs(r.Relative) <= tolerance); // NaN compares false: a non-finite window fails
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"max |rel| over windows {skip + 1}-{rows[^1].Index + 1}: {Pct(Math.Abs(worst.Relative))} at window {worst.Index + 1} (steps {worst.First}-{worst.Last})"));
        bool pass = within && fallsA && fallsB;
        var why = new List<string>();
        if (!within) why.Add($"a window differs by more than {Pct(tolerance, 1)}");
        if (!fallsA) why.Add("A does not fall");
        if (!fallsB) why.Add("B does not fall");
        stdout.WriteLine(pass
            ? string.Create(CultureInfo.InvariantCulture, $"verdict: PASS (windowed means within {Pct(tolerance, 1)} after the first {skip} window(s); both curves fall)")
            : $"verdict: FAIL ({string.Join("; ", why)})");
        return pass ? 0 : 1;
    }

    /// <summary>0.0512 -> "5.12%" (the invariant culture's P format puts a space before the sign).</summary>
    private static string Pct(double x, int decimals = 2) => (x * 100).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + "%";

    private sealed record WindowRow(int Index, int First, int Last, double A, double B)
    {
        public double Relative => (B - A) / Math.Abs(A);
    }

    private static bool Falls(List<WindowRow> rows, Func<WindowRow, double> mean, out string text)
    {
        double first = mean(rows[0]), last = mean(rows[^1]);
        bool falls = last < first; // false for NaN
        text = string.Create(CultureInfo.InvariantCulture,
            $"window {rows[0].Index + 1} mean {first:F5} -> window {rows[^1].Index + 1} mean {last:F5} ({(falls ? "falls" : "does not fall")} {Pct((first - last) / Math.Abs(first), 1)})");
        return falls;
    }

    private static string Describe(LossCurve c) =>
        $"{c.Path} ({c.Steps.Length} points, steps {c.Steps[0]}-{c.Steps[^1]})";

    private static string Speed(LossCurve c) => c.MsPerIteration() is double ms
        ? string.Create(CultureInfo.InvariantCulture, $"; {ms:F2} ms/iteration after step {c.Steps[0]}") : "";
}

/// <summary>One loss curve read from a CSV file: the logged steps, one value column, and the optional wall-clock column.</summary>
public sealed record LossCurve(string Path, int[] Steps, double[] Values, double[]? Seconds)
{
    /// <summary>
    /// Reads a CSV with a header naming its columns ("step" and <paramref name="column"/> required, "seconds" optional).
    /// </summary>
    /// <exception cref="DataFormatException">Names the file and the line: missing column, wrong field count, a value that is not a number, steps not increasing.</exception>
    public static LossCurve Load(string path, string column)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0) throw new DataFormatException($"{path}: empty file, expected a header line such as step,lr,loss,diffusion,triplet,seconds");
        var header = lines[0].Split(',').Select(h => h.Trim()).ToArray();
        int iStep = Array.IndexOf(header, "step"), iValue = Array.IndexOf(header, column), iSec = Array.IndexOf(header, "seconds");
        if (iStep < 0 || iValue < 0)
            throw new DataFormatException($"{path}:1: header '{ErrorText.Excerpt(lines[0])}' has no '{(iStep < 0 ? "step" : column)}' column");
        var steps = new List<int>();
        var values = new List<double>();
        var seconds = new List<double>();
        for (int n = 1; n < lines.Length; n++)
        {
            if (lines[n].Trim().Length == 0) continue;
            var f = lines[n].Split(',');
            if (f.Length != header.Length)
                throw new DataFormatException($"{path}:{n + 1}: expected {header.Length} fields like the header, got {f.Length}");
            if (!int.TryParse(f[iStep], NumberStyles.Integer, CultureInfo.InvariantCulture, out int step) || step < 1)
                throw new DataFormatException($"{path}:{n + 1}: step '{ErrorText.Excerpt(f[iStep])}' is not a positive integer");
            if (steps.Count > 0 && step <= steps[^1])
                throw new DataFormatException($"{path}:{n + 1}: step {step} does not follow step {steps[^1]} (steps must increase)");
            // NaN / Infinity parse: a diverged run is a curve that fails the comparison, not a bad file.
            if (!double.TryParse(f[iValue], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                throw new DataFormatException($"{path}:{n + 1}: {column} '{f[iValue]}' is not a number");
            double s = double.NaN;
            if (iSec >= 0 && !double.TryParse(f[iSec], NumberStyles.Float, CultureInfo.InvariantCulture, out s))
                throw new DataFormatException($"{path}:{n + 1}: seconds '{f[iSec]}' is not a number");
            steps.Add(step);
            values.Add(v);
            seconds.Add(s);
        }
        if (steps.Count == 0) throw new DataFormatException($"{path}: no data lines after the header");
        return new LossCurve(path, [.. steps], [.. values], iSec >= 0 ? [.. seconds] : null);
    }

    /// <summary>Mean value and point count per window of <paramref name="window"/> steps (window w holds steps wW+1..(w+1)W) up to <paramref name="lastStep"/>.</summary>
    public (double Mean, int Count)[] WindowMeans(int window, int lastStep)
    {
        int count = (lastStep + window - 1) / window;
        var sum = new double[count];
        var n = new int[count];
        for (int i = 0; i < Steps.Length && Steps[i] <= lastStep; i++)
        {
            int w = (Steps[i] - 1) / window;
            sum[w] += Values[i];
            n[w]++;
        }
        return sum.Select((s, w) => (n[w] == 0 ? double.NaN : s / n[w], n[w])).ToArray();
    }

    /// <summary>Wall time per iteration from the first logged step to the last (null without a seconds column or with one point).</summary>
    public double? MsPerIteration() =>
        Seconds is null || Steps.Length < 2 ? null : (Seconds[^1] - Seconds[0]) * 1000 / (Steps[^1] - Steps[0]);
}
