using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.StGcn;

namespace Tdsm.Trainer;

/// <summary>`extract`: a frozen ST-GCN encoder (eval mode) turns skeleton arrays into features in the SynSE layout.</summary>
public sealed class ExtractCommand : ICommand
{
    public string Name => "extract";
    public string Summary => "encode skeleton arrays with a trained ST-GCN into SynSE-layout features (train / ztest / gtest)";
    public string Help => """
        usage: extract --encoder ENCODER.safetensors --train-x X.npy --train-y Y.npy --test-x X.npy --test-y Y.npy
                       --unseen FILE.npy --out DIR

        Runs the frozen encoder (eval mode: BatchNorm running statistics) on (N, 3, T, 25, M) skeleton
        arrays and writes DIR/train.npy + train_label.npy (training samples of the seen classes only),
        ztest.npy + z_label.npy (test samples of the unseen classes) and gtest.npy + g_label.npy (every
        test sample, for generalised ZSL). Features are (N, D) float32, labels the original 0-based
        class ids (int64): the layout SynSE / SA-DVAE / the official TDSM code read.
        An encoder written by pretrain-encoder or run records the classes it was trained on
        (metadata "seen_classes"); an --unseen list naming one of them is refused.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string encoderPath = args.Require("--encoder");
        string trainX = args.Require("--train-x"), trainY = args.Require("--train-y");
        string testX = args.Require("--test-x"), testY = args.Require("--test-y");
        string unseenPath = args.Require("--unseen");
        string outDir = args.Require("--out");
        args.EnsureAllUsed();

        var model = StGcnCheckpoint.Load(encoderPath, new StGcnCpuOps());
        var unseen = LabelSplit.ReadIds(unseenPath).ToHashSet();
        if (unseen.Count == 0) throw new DataFormatException($"{unseenPath}: no unseen classes");
        // Zero-shot features must come from an encoder that never saw the unseen classes (checked when the encoder says
        // which classes it was trained on: pretrain-encoder and run record them).
        if (StGcnCheckpoint.ReadSeenClasses(encoderPath) is { } trainedOn && trainedOn.Where(unseen.Contains).ToArray() is { Length: > 0 } leaked)
            throw new DataFormatException($"{unseenPath}: class{(leaked.Length > 1 ? "es" : "")} {string.Join(", ", leaked)} unseen here, but {encoderPath} was trained on {(leaked.Length > 1 ? "them" : "it")}: the zero-shot test would see classes the encoder learned");
        LabeledFeatures Encode(string xPath, string yPath, Func<int, bool> keep)
        {
            // Read by sample from disk: arrays of any size (NTU-60 xsub at T = 300 is about 7 GB).
            using var x = PretrainEncoderCommand.OpenSet(xPath, yPath, out var y, out int t, out int m);
            var idx = Enumerable.Range(0, y.Length).Where(i => keep(y[i])).ToArray();
            var bar = new ProgressBar(stdout, $"extract {Path.GetFileName(xPath)}");
            var f = StGcnTraining.ExtractFeatures(model, new IndexedSamples(x, idx), t, m);
            int d = model.Config.FeatureDim;
            if (Tdsm.Tensors.Finite.IndexOfNonFinite(f) is var bad and >= 0)
                throw new DataFormatException($"{xPath}: sample {idx[bad / d]} gives a non-finite feature (its coordinates hold a NaN or an infinity)");
            bar.Report(idx.Length, idx.Length, "sequences");
            bar.Done();
            return new LabeledFeatures(f, model.Config.FeatureDim, idx.Select(i => y[i]).ToArray());
        }
        using (var probe = PretrainEncoderCommand.OpenSet(testX, testY, out var testLabels, out _, out _))
        {
            var present = testLabels.ToHashSet();
            if (unseen.FirstOrDefault(c => !present.Contains(c), -1) is var missing && missing >= 0)
                throw new DataFormatException($"{unseenPath}: unseen class {missing} has no sample in {testY}");
        }
        var train = Encode(trainX, trainY, c => !unseen.Contains(c));
        var gtest = Encode(testX, testY, _ => true);
        var feats = new SynseFeatures(train, gtest.WhereLabel(unseen.Contains), gtest);
        feats.Save(outDir);
        stdout.WriteLine($"extract: train {train.Count} x {train.Dim}, ztest {feats.ZTest.Count}, gtest {gtest.Count} -> {outDir}");
        return 0;
    }
}
