namespace Tdsm.Parity;

/// <summary>One compared group: its name, how many tensors, the worst relative error and the tolerance.</summary>
public sealed record ParityGroup(string Name, int Tensors, double MaxRelativeError, double Tolerance, string WorstTensor)
{
    /// <summary>True when the worst error is within tolerance.</summary>
    public bool Passed => MaxRelativeError <= Tolerance && !double.IsNaN(MaxRelativeError);
}

/// <summary>The result of a parity run against a golden fixture.</summary>
public sealed class ParityReport
{
    private readonly List<ParityGroup> _groups = [];
    private readonly List<string> _notes = [];

    public string Fixture { get; }
    public string Backend { get; }
    public IReadOnlyList<ParityGroup> Groups => _groups;
    public bool Passed => _groups.Count > 0 && _groups.All(g => g.Passed);

    public ParityReport(string fixture, string backend) { Fixture = fixture; Backend = backend; }

    /// <summary>Adds a group built from (tensor name, relative error) pairs.</summary>
    public void Add(string group, double tolerance, IEnumerable<(string Name, double Error)> errors)
    {
        var list = errors.ToList();
        if (list.Count == 0) throw new InvalidOperationException($"parity group '{group}' compared no tensors");
        var worst = list.MaxBy(e => double.IsNaN(e.Error) ? double.PositiveInfinity : e.Error);
        _groups.Add(new ParityGroup(group, list.Count, worst.Error, tolerance, worst.Name));
    }

    /// <summary>An informational line printed after the groups; it does not affect the verdict.</summary>
    public void Note(string text) => _notes.Add(text);

    /// <summary>‖a − b‖ / ‖b‖ over a whole tensor (‖a − b‖ when b is all zeros).</summary>
    public static double RelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        if (actual.Length != expected.Length) return double.PositiveInfinity;
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double d = actual[i] - expected[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary>The report as aligned text lines, one per group, then a verdict.</summary>
    public IEnumerable<string> Lines()
    {
        yield return $"parity: {Fixture} on backend '{Backend}'";
        foreach (var g in _groups)
            yield return $"  {(g.Passed ? "ok  " : "FAIL")} {g.Name,-28} tensors {g.Tensors,4}  max rel err {g.MaxRelativeError,10:0.000e+00}  tol {g.Tolerance:0e+00}  (worst: {g.WorstTensor})";
        foreach (var n in _notes) yield return "  note: " + n;
        var failed = _groups.Where(g => !g.Passed).Select(g => g.Name).ToList();
        yield return failed.Count == 0 ? "parity: all groups within tolerance" : $"parity: FAILED groups: {string.Join(", ", failed)}";
    }
}
