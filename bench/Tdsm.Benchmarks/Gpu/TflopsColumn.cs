using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Tdsm.Benchmarks.Gpu;

/// <summary>TFLOP/s = 2·M·N·K / mean time, read from a "MxNxK layout" Shape parameter.</summary>
public sealed class TflopsColumn : IColumn
{
    public string Id => "TFLOPS";
    public string ColumnName => "TFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "2·M·N·K / mean time";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var shape = benchmarkCase.Parameters["Shape"] as string;
        var report = summary[benchmarkCase];
        if (shape is null || report?.ResultStatistics is null) return "-";
        var d = shape.Split(' ')[0].Split('x').Select(double.Parse).ToArray();
        double seconds = report.ResultStatistics.Mean * 1e-9;
        return (2 * d[0] * d[1] * d[2] / seconds / 1e12).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
