using System.Globalization;
using System.Text.RegularExpressions;

namespace Tdsm.Data;

/// <summary>The ids encoded in an NTU sample name <c>SsssCcccPpppRrrrAaaa</c> (setup, camera,
/// performer, replication, action; all 1-based as in the name).</summary>
public sealed partial record NtuSampleName(string Name, int Setup, int Camera, int Performer, int Replication, int Action)
{
    [GeneratedRegex(@"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")]
    private static partial Regex Pattern();

    /// <summary>0-based class id (action - 1).</summary>
    public int Label => Action - 1;

    /// <summary>Parses a sample name or a file name/path like <c>.../S001C001P001R001A001.skeleton</c>.</summary>
    /// <exception cref="FormatException">The name does not follow the NTU pattern.</exception>
    public static NtuSampleName Parse(string nameOrPath)
    {
        string name = Path.GetFileName(nameOrPath);
        int dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0) name = name[..dot];
        var m = Pattern().Match(name);
        if (!m.Success) throw new FormatException($"'{nameOrPath}' is not an NTU sample name (expected SsssCcccPpppRrrrAaaa, e.g. S001C001P001R001A001)");
        int G(int i) => int.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture);
        return new NtuSampleName(name, G(1), G(2), G(3), G(4), G(5));
    }
}

/// <summary>The standard NTU evaluation protocols.</summary>
public enum NtuBenchmark
{
    /// <summary>Cross-subject: training performers listed in <see cref="NtuProtocols.TrainingSubjects60"/> / <see cref="NtuProtocols.TrainingSubjects120"/>.</summary>
    CrossSubject,
    /// <summary>Cross-view (NTU-60): cameras 2 and 3 train, camera 1 tests.</summary>
    CrossView,
    /// <summary>Cross-setup (NTU-120): even setup ids train, odd ones test.</summary>
    CrossSetup,
}

/// <summary>Training/test membership for the standard protocols, and the official missing-skeleton lists.</summary>
public static class NtuProtocols
{
    /// <summary>NTU RGB+D 60 cross-subject training performers.</summary>
    public static readonly IReadOnlySet<int> TrainingSubjects60 = new HashSet<int>
    { 1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38 };

    /// <summary>NTU RGB+D 120 cross-subject training performers (the 60-list plus the new ones).</summary>
    public static readonly IReadOnlySet<int> TrainingSubjects120 = new HashSet<int>
    {
        1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52, 53, 54, 55, 56,
        57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
    };

    /// <summary>NTU-60 cross-view training cameras.</summary>
    public static readonly IReadOnlySet<int> TrainingCameras = new HashSet<int> { 2, 3 };

    /// <summary>Whether <paramref name="s"/> is a training sample under <paramref name="benchmark"/>.
    /// <paramref name="ntu120"/> picks the NTU-120 subject list for cross-subject.</summary>
    public static bool IsTraining(NtuSampleName s, NtuBenchmark benchmark, bool ntu120) => benchmark switch
    {
        NtuBenchmark.CrossSubject => (ntu120 ? TrainingSubjects120 : TrainingSubjects60).Contains(s.Performer),
        NtuBenchmark.CrossView => TrainingCameras.Contains(s.Camera),
        NtuBenchmark.CrossSetup => s.Setup % 2 == 0,
        _ => throw new ArgumentOutOfRangeException(nameof(benchmark), benchmark, null),
    };

    /// <summary>Reads an official <c>*_samples_with_missing_skeletons.txt</c>: every line that is a sample name
    /// (the two prose header lines are skipped).</summary>
    public static HashSet<string> ReadMissingList(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: missing-skeleton list not found", path);
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 20 && line[0] == 'S' && line[4] == 'C') set.Add(line);
        }
        return set;
    }
}
