using System.Diagnostics;
using System.Globalization;

namespace Tdsm.Trainer;

/// <summary>
/// A one-line progress bar with elapsed time, ETA and a status text (e.g. the running loss).
/// On a terminal it redraws in place at most 10 times a second; when the output is redirected it
/// prints a fresh line every 10% so logs stay readable. The ETA is the rate since the first progress
/// times the work left: the first unit (JIT compilation, kernel builds, allocations) is not taken as the
/// pace of the rest, so there is no ETA until a second report. <paramref name="clock"/> (seconds since
/// the start) is for tests.
/// </summary>
public sealed class ProgressBar(TextWriter w, string label, Func<double>? clock = null)
{
    private readonly Stopwatch _sw = Stopwatch.StartNew();
    private readonly bool _interactive = ReferenceEquals(w, Console.Out) && !Console.IsOutputRedirected;
    private long _lastMs = -1000;
    private int _lastDecile = -1;
    // The first report with progress: its time and count, from which the rate is measured.
    private double _firstSeconds = -1;
    private long _firstDone;

    public TimeSpan Elapsed => TimeSpan.FromSeconds(Seconds);

    private double Seconds => clock?.Invoke() ?? _sw.Elapsed.TotalSeconds;

    public void Report(long done, long total) => Report(done, total, "");

    public void Report(int done, int total) => Report((long)done, total, "");

    public void Report(long done, long total, string status)
    {
        double f = total == 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        double elapsed = Seconds;
        if (_firstSeconds < 0 && done > 0) { _firstSeconds = elapsed; _firstDone = done; }
        if (_interactive)
        {
            long ms = (long)(elapsed * 1000);
            if (ms - _lastMs < 100 && done < total) return;
            _lastMs = ms;
        }
        else
        {
            int decile = (int)(f * 10);
            if (decile == _lastDecile && done < total) return;
            _lastDecile = decile;
        }
        int filled = (int)(f * 30);
        string eta = done > _firstDone && done < total && _firstSeconds >= 0
            ? $" eta {Format((elapsed - _firstSeconds) / (done - _firstDone) * (total - done))}" : "";
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{label} [{new string('#', filled)}{new string('.', 30 - filled)}] {done}/{total} {Format(elapsed)}{eta}{(status.Length > 0 ? "  " + status : "")}");
        if (_interactive) w.Write("\r" + line.PadRight(Console.WindowWidth > 0 ? Math.Min(Console.WindowWidth - 1, 160) : 0));
        else w.WriteLine(line);
    }

    private static string Format(double seconds) =>
        seconds >= 3600 ? $"{(int)(seconds / 3600)}h{(int)(seconds % 3600 / 60):00}m" : seconds >= 60 ? $"{(int)(seconds / 60)}m{(int)(seconds % 60):00}s" : $"{seconds:F0}s";

    public void Done()
    {
        if (_interactive) w.WriteLine();
    }
}
