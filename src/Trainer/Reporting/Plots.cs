using ScottPlot;
using Tdsm.Training;

namespace Tdsm.Trainer.Reporting;

/// <summary>The report's PNG plots (ScottPlot 5, rendered headless through SkiaSharp).</summary>
public static class Plots
{
    /// <summary>Total, diffusion and triplet loss against the optimiser step.</summary>
    public static void LossCurves(string path, IReadOnlyList<LossPoint> curve, string title)
    {
        var plt = new Plot();
        double[] steps = [.. curve.Select(p => (double)p.Step)];
        foreach (var (label, f) in new (string, Func<LossPoint, double>)[] { ("total", p => p.Loss), ("diffusion", p => p.Diffusion), ("triplet", p => p.Triplet) })
        {
            var line = plt.Add.ScatterLine(steps, [.. curve.Select(f)]);
            line.LegendText = label;
            line.LineWidth = 2;
        }
        plt.Title($"{title}: training loss");
        plt.XLabel("step");
        plt.YLabel("loss");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, 900, 500);
    }

    /// <summary>Bars of per-class accuracy (percent), TDSM and optionally the baseline side by side, labelled with class names.</summary>
    public static void PerClassAccuracy(string path, IReadOnlyList<string> names, IReadOnlyList<double> tdsm, IReadOnlyList<double>? baseline)
    {
        var plt = new Plot();
        int k = names.Count;
        double width = baseline is null ? 0.8 : 0.4;
        var series = new List<(string Label, IReadOnlyList<double> Acc, Color Color, double Offset)> { ("TDSM", tdsm, Colors.SteelBlue, baseline is null ? 0 : -0.2) };
        if (baseline is not null) series.Add(("baseline", baseline, Colors.DarkOrange, 0.2));
        foreach (var (label, acc, color, offset) in series)
        {
            var bars = plt.Add.Bars(Enumerable.Range(0, k).Select(i => new Bar
            {
                Position = i + offset, Value = double.IsNaN(acc[i]) ? 0 : 100 * acc[i], Size = width, FillColor = color, LineWidth = 0,
            }).ToList());
            bars.LegendText = label;
        }
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. Enumerable.Range(0, k).Select(i => (double)i)], [.. names.Select(Short)]);
        plt.Axes.Bottom.TickLabelStyle.Rotation = -45;
        plt.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plt.Axes.Bottom.MinimumSize = 160;
        plt.Axes.SetLimitsY(0, 105);
        plt.Axes.SetLimitsX(-0.7, k - 0.3);
        plt.YLabel("top-1 accuracy (%)");
        plt.Title("Zero-shot accuracy per unseen class");
        if (baseline is not null) plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, Math.Max(700, 60 * k + 200), 550);
    }

    /// <summary>Row-normalised confusion heatmap (rows = true class, columns = predicted), counts written in the cells when there are few classes.</summary>
    public static void Confusion(string path, IReadOnlyList<string> names, int[,] counts, string title)
    {
        int k = names.Count;
        var norm = new double[k, k];
        for (int t = 0; t < k; t++)
        {
            double row = 0;
            for (int p = 0; p < k; p++) row += counts[t, p];
            for (int p = 0; p < k; p++) norm[t, p] = row > 0 ? counts[t, p] / row : 0;
        }
        var plt = new Plot();
        var hm = plt.Add.Heatmap(norm);
        hm.Colormap = new ScottPlot.Colormaps.Viridis();
        hm.ManualRange = new ScottPlot.Range(0, 1); // the same colours in every report
        // Position spans the cell centres: cell (t, p) is centred on x = p, y = k−1−t (row 0 at the top).
        hm.Position = new CoordinateRect(0, k - 1, 0, k - 1);
        plt.Add.ColorBar(hm);
        if (k <= 24)
            for (int t = 0; t < k; t++)
                for (int p = 0; p < k; p++)
                {
                    if (counts[t, p] == 0) continue;
                    var txt = plt.Add.Text(counts[t, p].ToString(System.Globalization.CultureInfo.InvariantCulture), p, k - 1 - t);
                    txt.LabelFontColor = norm[t, p] > 0.6 ? Colors.Black : Colors.White;
                    txt.LabelAlignment = Alignment.MiddleCenter;
                    txt.LabelFontSize = k <= 12 ? 14 : 10;
                }
        double[] pos = [.. Enumerable.Range(0, k).Select(i => (double)i)];
        string[] shortNames = [.. names.Select(Short)];
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(pos, shortNames);
        plt.Axes.Bottom.TickLabelStyle.Rotation = -45;
        plt.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plt.Axes.Bottom.MinimumSize = 160;
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. pos.Select(y => k - 1 - y)], shortNames);
        plt.Axes.SetLimits(-0.5, k - 0.5, -0.5, k - 0.5);
        plt.XLabel("predicted");
        plt.YLabel("true");
        plt.Title($"{title}\ncolour = fraction of the true class");
        int size = Math.Max(650, 40 * k + 300);
        plt.SavePng(path, size + 120, size);
    }

    // Long NTU names ("put on a shoe") stay readable; very long ones are cut.
    private static string Short(string s) => s.Length <= 28 ? s : s[..27] + "…";
}
