using System.Diagnostics;
using System.Globalization;
using Tdsm.Data;

namespace Tdsm.Trainer;

/// <summary><c>ntu-preprocess</c>: a folder of raw NTU .skeleton files -> the standard (N, 3, 300, 25, 2) arrays.</summary>
public sealed class NtuPreprocessCommand : ICommand
{
    public string Name => "ntu-preprocess";
    public string Summary => "convert raw NTU .skeleton files to preprocessed .npy arrays (xsub/xview/xset), resumable";
    public string Help => """
        usage: ntu-preprocess --raw DIR --out DIR [--benchmark xsub|xview|xset] [--ntu120] [--missing FILE[,FILE]] [--frames T] [--chunk N]

        Reads every DIR/*.skeleton, skips samples in the missing-skeleton lists, keeps the 2 most active
        bodies, pads to T frames (300) and applies pre_normalization (Shift-GCN). Writes
        OUT/{train,val}_data.npy (N, 3, T, 25, 2) float32, OUT/{train,val}_label.npy (0-based action ids)
        and OUT/{train,val}_names.txt. Finished chunks are kept in OUT/.parts, so a rerun resumes.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        var raw = args.Require("--raw");
        var outDir = args.Require("--out");
        var bench = (args.Get("--benchmark") ?? "xsub") switch
        {
            "xsub" => NtuBenchmark.CrossSubject,
            "xview" => NtuBenchmark.CrossView,
            "xset" => NtuBenchmark.CrossSetup,
            var b => throw new CommandLineException($"--benchmark must be xsub, xview or xset, got '{b}'"),
        };
        bool ntu120 = args.Flag("--ntu120");
        var missing = args.Get("--missing")?.Split(',', StringSplitOptions.RemoveEmptyEntries);
        int frames = args.GetInt("--frames", 300), chunk = args.GetInt("--chunk", 500);
        if (frames is < 1 or > 10_000) throw new CommandLineException($"--frames must be 1 to 10000 (NTU sequences are padded to 300), got {frames}");
        if (chunk < 1) throw new CommandLineException($"--chunk must be a positive number of samples, got {chunk}");
        var o = new NtuConvertOptions(bench, ntu120, frames, chunk, missing);
        args.EnsureAllUsed();
        var sw = Stopwatch.StartNew();
        var bar = new ProgressBar(stderr, "ntu-preprocess");
        NtuConvertResult r;
        try { r = NtuFolderConverter.Convert(raw, outDir, o, bar.Report); }
        catch (SkeletonFormatException e)
        {
            bar.Done();
            stderr.WriteLine($"ntu-preprocess: {e.Message} (finished chunks are kept; rerun to resume)");
            return 1;
        }
        bar.Done();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"train {r.Train}, val {r.Val}, skipped {r.SkippedMissing} missing-skeleton samples, {r.ChunksReused} chunks reused; {sw.Elapsed.TotalSeconds:F1} s"));
        return 0;
    }
}
