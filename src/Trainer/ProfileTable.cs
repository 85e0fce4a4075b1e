using Tdsm.Ops;

namespace Tdsm.Trainer;

/// <summary>Prints an <see cref="OpTimeline"/> profile: the ops that took most of the time, then the shares by op family.</summary>
public static class ProfileTable
{
    private const int Shown = 30;

    /// <summary>Rows per step (or per call): totals divided by <paramref name="per"/>; the op family is the name up to its first space.</summary>
    public static void Print(TextWriter stdout, IReadOnlyList<OpTime> rows, int per, string title)
    {
        double total = rows.Sum(r => r.Milliseconds);
        stdout.WriteLine($"{title}: {total / per:F2} ms, {rows.Sum(r => r.Calls) / (double)per:F0} ops");
        stdout.WriteLine($"  {"op (sizes)",-58} {"calls",7} {"ms",9} {"share",7}");
        foreach (var r in rows.Take(Shown))
            stdout.WriteLine($"  {r.Op,-58} {r.Calls / (double)per,7:F0} {r.Milliseconds / per,9:F3} {r.Milliseconds / total,7:P1}");
        if (rows.Count > Shown)
        {
            var rest = rows.Skip(Shown).ToArray();
            stdout.WriteLine($"  {$"({rest.Length} more)",-58} {rest.Sum(r => r.Calls) / (double)per,7:F0} {rest.Sum(r => r.Milliseconds) / per,9:F3} {rest.Sum(r => r.Milliseconds) / total,7:P1}");
        }
        // The families issue 9 asks to fuse or speed up: every size of an op together.
        stdout.WriteLine("  by op family: " + string.Join(", ", rows.GroupBy(r => r.Op.Split(' ')[0])
            .Select(g => (g.Key, Ms: g.Sum(r => r.Milliseconds))).OrderByDescending(g => g.Ms)
            .Select(g => $"{g.Key} {g.Ms / total:P0}")));
    }
}
