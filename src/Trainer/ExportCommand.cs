using System.Globalization;
using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.Text;

namespace Tdsm.Trainer;

/// <summary>`export`: a run's features, text features and class table in the layout the Python ZSAR / TDSM code reads.</summary>
public sealed class ExportCommand : ICommand
{
    public string Name => "export";
    public string Summary => "write a run's features + text features + class table for the official Python code";
    public string Help => """
        usage: export --run RUN_DIR --out DIR
               export --features DIR --text-features FILE --out DIR

        Writes DIR/features/ (SynSE layout: train.npy, train_label.npy, ztest.npy, z_label.npy,
        gtest.npy, g_label.npy), DIR/text_features.npy ((C, 36, D) float32: rows 0..34 token
        features, row 35 the global feature, as TDSM consumes them), DIR/classes.csv (idx,label
        1-based, the class_lists format) and, for a run, DIR/unseen.npy (the unseen class ids, int64),
        so the same data can go through the official Python code for a same-data comparison.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string? run = args.Get("--run");
        string featuresDir = args.Get("--features") ?? (run is null ? throw new CommandLineException("give --run or --features") : Path.Combine(run, "features"));
        string textPath = args.Get("--text-features") ?? (run is null ? throw new CommandLineException("--text-features is required without --run") : Path.Combine(run, "text_features.safetensors"));
        string outDir = args.Require("--out");
        args.EnsureAllUsed();

        var feats = SynseFeatures.Load(featuresDir);
        var text = ClassTextFeatures.Load(textPath);
        var unseen = run is null ? null : EvalCommand.ReadUnseen(Path.Combine(run, "report.json")); // read before anything is written
        feats.Save(Path.Combine(outDir, "features"));
        Npy.Write(Path.Combine(outDir, "text_features.npy"), [text.Count, ClassTextFeatures.Rows, text.Width], text.Data);
        var names = text.Names.Count == text.Count ? text.Names : Enumerable.Range(0, text.Count).Select(i => $"class {i}").ToArray();
        ClassList.WriteCsv(Path.Combine(outDir, "classes.csv"), names);
        if (unseen is not null) Npy.Write(Path.Combine(outDir, "unseen.npy"), [unseen.Length], unseen.Select(id => (long)id).ToArray());
        else File.Delete(Path.Combine(outDir, "unseen.npy")); // an earlier export's list would not belong to these features
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"export: {feats.Train.Count} train / {feats.ZTest.Count} ztest features ({feats.Train.Dim}-d), text features ({text.Count}, 36, {text.Width}) -> {outDir}"));
        return 0;
    }
}
