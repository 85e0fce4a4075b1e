using Tdsm.Inference;
using Tdsm.Trainer;

namespace Tdsm.Tests.Inference;

/// <summary>The trainer's bundle command writes a folder that ActionRecognizer.Load reads.</summary>
public class BundleCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void UntrainedSmallBundleLoadsAndCheckpointBundleCopiesIt()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tdsm-bundle-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (code, stdout, err) = Run("bundle", "--untrained", "small", "--no-text", "--seed", "3", "--out", dir);
            Assert.That(code, Is.Zero, err);
            Assert.That(stdout, Does.Contain("hidden 128, depth 4, features 256, 3 test noises; text encoder no"));
            var r = ActionRecognizer.Load(dir);
            Assert.That(r.Config, Is.EqualTo(Tdsm.Model.DiTConfig.Small));

            string copy = dir + "-copy";
            (code, _, err) = Run("bundle", "--model", Path.Combine(dir, ActionRecognizer.ModelFileName), "--no-text", "--out", copy);
            Assert.That(code, Is.Zero, err);
            Assert.That(File.ReadAllBytes(Path.Combine(copy, ActionRecognizer.ModelFileName)), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir, ActionRecognizer.ModelFileName))));
            Directory.Delete(copy, true);

            (code, _, err) = Run("bundle", "--model", Path.Combine(dir, "missing.safetensors"), "--no-text", "--out", copy);
            Assert.That(code, Is.EqualTo(1));
            Assert.That(err, Does.Contain("missing.safetensors"));

            // An encoder or class features that do not fit the DiT are refused with their own path, before anything
            // is written: the output folder is not even created.
            string notAnEncoder = Path.Combine(dir, ActionRecognizer.ModelFileName);
            (code, _, err) = Run("bundle", "--model", notAnEncoder, "--encoder", notAnEncoder, "--no-text", "--out", copy);
            Assert.That(code, Is.EqualTo(1));
            Assert.That(err, Does.Contain(notAnEncoder));
            string narrow = Path.Combine(dir, "narrow.safetensors");
            new Tdsm.Text.ClassTextFeatures(["a", "b"], new float[2 * Tdsm.Text.ClassTextFeatures.Rows * 5], 5).Save(narrow);
            (code, _, err) = Run("bundle", "--model", notAnEncoder, "--classes", narrow, "--no-text", "--out", copy);
            Assert.That(code, Is.EqualTo(1));
            Assert.That(err, Does.Contain(narrow).And.Contain("class features are 5 wide, the DiT's cond_size is 768"));
            Assert.That(Directory.Exists(copy), Is.False, "nothing written");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    /// <summary>Rewriting a bundle folder drops the parts of the earlier bundle this call does not write (an encoder of
    /// another width would not fit the new model).</summary>
    [Test]
    public void RewritingABundleDropsPartsItDoesNotWrite()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tdsm-bundle-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(dir);
            string enc = Path.Combine(dir, "enc256.safetensors");
            Tdsm.StGcn.StGcnCheckpoint.Save(enc, new Tdsm.StGcn.StGcnModel(new Tdsm.StGcn.StGcnConfig(3, 2, [new Tdsm.StGcn.BlockSpec(3, 256, 1, false)]), new Tdsm.StGcn.StGcnCpuOps(), 1));
            string bundle = Path.Combine(dir, "b");
            var (code, _, err) = Run("bundle", "--untrained", "small", "--no-text", "--encoder", enc, "--out", bundle);
            Assert.That(code, Is.Zero, err);
            Assert.That(File.Exists(Path.Combine(bundle, ActionRecognizer.EncoderFileName)), Is.True);

            var tiny = new Tdsm.Model.DiT(Tdsm.Model.DiTConfig.Tiny, new Tdsm.Reference.ReferenceOps());
            var p = new float[tiny.Layout.Count];
            new Tdsm.Tensors.Rng(5).FillNormal(p, 0.02);
            tiny.LoadParameters(p);
            string model = Path.Combine(dir, "tiny.safetensors");
            Tdsm.Training.Checkpoint.SaveModel(model, tiny, Tdsm.Training.Checkpoint.DrawTestNoise(3, 128, 5));
            (code, _, err) = Run("bundle", "--model", model, "--no-text", "--out", bundle);
            Assert.That(code, Is.Zero, err);
            Assert.That(File.Exists(Path.Combine(bundle, ActionRecognizer.EncoderFileName)), Is.False, "the 256-wide encoder of the earlier bundle is gone");
            Assert.That(ActionRecognizer.Load(bundle).FeatureSize, Is.EqualTo(128));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
