using System.Diagnostics;
using System.Globalization;
using Tdsm.Data;

namespace Tdsm.Trainer;

/// <summary><c>synth</c>: writes the synthetic NTU-format action dataset, or renders a preview PNG of some classes.</summary>
public sealed class SynthCommand : ICommand
{
    public string Name => "synth";
    public string Summary => "write the synthetic 48-class NTU-format skeleton dataset (or --preview a class as a PNG)";
    public string Help => """
        usage: synth --out DIR [--seed S] [--samples-per-class N] [--frames T] [--max-length L] [--raw]
               synth --preview CLASS[,CLASS...] --png FILE [--seed S] [--frames T] [--max-length L] [--snapshots K] [--sample I]

        Writes DIR/data.npy (N, 3, T, 25, 2) float32, DIR/label.npy (N,) int64 (sample i has class i % 48),
        DIR/synth.csv (idx,label; 1-based), DIR/synth_llm.txt (one description per line),
        DIR/label_splits/{ru8,rs40,ru12,rs36}.npy and DIR/meta.json. Same seed -> identical bytes.

          --seed S               generator seed (default 1)
          --samples-per-class N  sequences per class (default 200)
          --frames T             frames per sequence array, NTU uses 300 (default 300)
          --max-length L         longest action in frames at 30 fps (default 120)
          --raw                  keep camera coordinates (default: NTU pre_normalization applied)
          --preview CLASSES      class ids (0-based) or label phrases, comma-separated: render instead of writing
          --png FILE             where the preview goes
          --snapshots K          frames drawn per class (default 8)
          --sample I             which repetition of each class to draw (default 0)
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        var preview = args.Get("--preview");
        var cfg = new SynthConfig(
            Seed: args.GetSeed("--seed", 1),
            SamplesPerClass: args.GetInt("--samples-per-class", 200),
            Frames: args.GetInt("--frames", 300),
            Normalize: !args.Flag("--raw"),
            MaxLength: args.GetInt("--max-length", 120));
        if (preview is not null) return Preview(args, cfg, preview, stdout);
        var dir = args.Require("--out");
        args.EnsureAllUsed();
        try { cfg.Validate(); }
        catch (ArgumentException e) { throw new CommandLineException(e.Message); }
        // The array is written in one file: refuse up front what the disk cannot hold (instead of a partial temp file).
        long bytes = (long)cfg.Count * cfg.SampleSize * sizeof(float);
        string full = Path.GetFullPath(dir);
        // The mount that holds the folder: the drive whose root is the longest prefix of the path.
        var drive = DriveInfo.GetDrives().Where(d => d.IsReady && full.StartsWith(d.RootDirectory.FullName, StringComparison.Ordinal))
            .MaxBy(d => d.RootDirectory.FullName.Length);
        if (drive is not null && bytes > drive.AvailableFreeSpace)
            throw new CommandLineException(string.Create(CultureInfo.InvariantCulture,
                $"the data would take {bytes / 1e9:F1} GB ({cfg.Count} sequences of {cfg.SampleSize} floats) and {drive.RootDirectory.FullName} has {drive.AvailableFreeSpace / 1e9:F1} GB free; lower --samples-per-class or --frames"));
        var sw = Stopwatch.StartNew();
        var bar = new ProgressBar(stderr, "synth");
        SyntheticDataset.Write(dir, cfg, bar.Report);
        bar.Done();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {cfg.Count} sequences ({SyntheticActions.Count} classes x {cfg.SamplesPerClass}, T={cfg.Frames}, {(cfg.Normalize ? "normalized" : "raw")}) to {dir} in {sw.Elapsed.TotalSeconds:F1} s"));
        return 0;
    }

    private static int Preview(CommandArgs args, SynthConfig cfg, string preview, TextWriter stdout)
    {
        var png = args.Require("--png");
        int snapshots = args.GetInt("--snapshots", 8), rep = args.GetInt("--sample", 0);
        args.EnsureAllUsed();
        var ids = preview.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ResolveClass).ToList();
        var samples = new List<float[]>();
        var lengths = new List<int>();
        foreach (int id in ids)
        {
            long index = (long)rep * SyntheticActions.Count + id;
            var x = new float[cfg.SampleSize];
            lengths.Add(SyntheticDataset.GenerateRaw(cfg, index, x));
            SkeletonPreprocessing.PreNormalize(x, cfg.Frames);
            samples.Add(x);
            stdout.WriteLine($"row {samples.Count}: class {id} '{SyntheticActions.Classes[id].Label}' ({lengths[^1]} frames)");
        }
        SkeletonPreview.Render(samples, cfg.Frames, lengths, snapshots).Save(png);
        stdout.WriteLine($"wrote {png}");
        return 0;
    }

    private static int ResolveClass(string s)
    {
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            return id < SyntheticActions.Count ? id : throw new CommandLineException($"class id {id} is out of range 0..{SyntheticActions.Count - 1}");
        var c = SyntheticActions.Classes.FirstOrDefault(c => string.Equals(c.Label, s, StringComparison.OrdinalIgnoreCase));
        return c?.Id ?? throw new CommandLineException($"no synthetic class '{s}' (use an id 0..{SyntheticActions.Count - 1} or a label phrase from synth.csv)");
    }
}

