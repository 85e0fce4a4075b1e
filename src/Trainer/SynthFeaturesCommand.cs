using System.Globalization;
using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.Tensors;
using Tdsm.Text;

namespace Tdsm.Trainer;

/// <summary>
/// `synth-features`: a seeded synthetic feature set for `train` at any widths (e.g. the paper's
/// C_in 256 and cond 2048 on the GPU machine, which has no data): class text features, skeleton
/// features that depend on them, and an unseen-class list. Same options -> identical bytes.
/// </summary>
public sealed class SynthFeaturesCommand : ICommand
{
    public string Name => "synth-features";
    public string Summary => "write seeded synthetic skeleton features + class text features for `train` (any widths)";
    public string Help => """
        usage: synth-features --out DIR [--classes 60] [--unseen 5] [--train-per-class 100]
                              [--test-per-class 20] [--dim 256] [--text-width 2048] [--noise 0.5] [--seed 0]

        Writes DIR/features/ (SynSE layout: train.npy + train_label.npy of the seen classes,
        ztest.npy + z_label.npy of the unseen ones), DIR/text_features.safetensors (C, 36, W) and
        DIR/unseen.npy, i.e. everything `train` reads:
          train --features DIR/features --text-features DIR/text_features.safetensors --unseen DIR/unseen.npy ...
        Text rows are N(0, 1). Class c's skeleton features are P·g_c/sqrt(W) + noise·N(0, 1), with
        g_c its global text row (row 35) and P a fixed N(0, 1) (dim, W) matrix, so the features
        carry the class's text. The unseen classes are a seeded random choice.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string dir = args.Require("--out");
        int classes = args.GetInt("--classes", 60), unseen = args.GetInt("--unseen", 5);
        int trainPer = args.GetInt("--train-per-class", 100), testPer = args.GetInt("--test-per-class", 20);
        int dim = args.GetInt("--dim", 256), width = args.GetInt("--text-width", 2048);
        double noise = args.GetDouble("--noise", 0.5);
        ulong seed = args.GetSeed("--seed", 0);
        args.EnsureAllUsed();
        if (classes < 2 || unseen < 1 || unseen >= classes)
            throw new CommandLineException($"need 2 or more classes and 1..classes-1 unseen ones, got --classes {classes} --unseen {unseen}");
        if (trainPer < 1 || testPer < 1 || dim < 1 || width < 1 || noise < 0)
            throw new CommandLineException("--train-per-class, --test-per-class, --dim and --text-width must be positive, --noise non-negative");

        var rng = new Rng(seed);
        var text = new float[classes * ClassTextFeatures.Rows * width];
        rng.FillNormal(text);
        var proj = new float[dim * width];
        rng.FillNormal(proj, 1 / Math.Sqrt(width));
        // means is (classes, dim): P·g_c / sqrt(W).
        var means = new float[classes * dim];
        for (int c = 0; c < classes; c++)
        {
            var g = text.AsSpan((c * ClassTextFeatures.Rows + ClassTextFeatures.GlobalRow) * width, width);
            for (int i = 0; i < dim; i++)
            {
                double s = 0;
                var p = proj.AsSpan(i * width, width);
                for (int j = 0; j < width; j++) s += p[j] * g[j];
                means[c * dim + i] = (float)s;
            }
        }
        var order = Enumerable.Range(0, classes).ToArray();
        for (int i = classes - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
        var unseenIds = order[..unseen].Order().ToArray();
        var seenIds = Enumerable.Range(0, classes).Except(unseenIds).ToArray();

        LabeledFeatures Sample(int[] ids, int per)
        {
            var labels = ids.SelectMany(c => Enumerable.Repeat(c, per)).ToArray();
            var x = new float[labels.Length * dim];
            rng.FillNormal(x, noise);
            for (int r = 0; r < labels.Length; r++)
                for (int i = 0; i < dim; i++) x[r * dim + i] += means[labels[r] * dim + i];
            return new LabeledFeatures(x, dim, labels);
        }
        var train = Sample(seenIds, trainPer);
        var ztest = Sample(unseenIds, testPer);

        Directory.CreateDirectory(dir);
        new SynseFeatures(train, ztest, null).Save(Path.Combine(dir, "features"));
        var names = Enumerable.Range(0, classes).Select(c => $"synthetic class {c}").ToArray();
        new ClassTextFeatures(names, text, width, new Dictionary<string, string> { ["source"] = $"synth-features seed {seed}" })
            .Save(Path.Combine(dir, "text_features.safetensors"));
        Npy.Write(Path.Combine(dir, "unseen.npy"), [unseen], unseenIds.Select(c => (long)c).ToArray());
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"synth-features: {classes} classes ({unseen} unseen: {string.Join(",", unseenIds)}), {train.Count} train / {ztest.Count} ztest samples of dim {dim}, text width {width}, seed {seed} -> {dir}"));
        return 0;
    }
}
