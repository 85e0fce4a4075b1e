using Tdsm.Formats;
using Tdsm.StGcn;

namespace Tdsm.Tests.StGcn;

/// <summary>
/// Whole-model backward against finite differences of the loss for a config the fixture does not
/// cover (identity residual, odd T, stride 2 with conv residual), on both tiers; and the parity
/// check's handling of a config that disagrees with the file.
/// </summary>
public class StGcnModelGradTests
{
    private static readonly StGcnConfig Cfg = new(3, 4, [new(3, 4, 1, false), new(4, 4, 1, true), new(4, 6, 2, true)]);

    [TestCase("reference")]
    [TestCase("cpu")]
    public void ModelGradientsMatchFiniteDifferences(string backend)
    {
        int n = 3, t = 7, m = 2;
        var rng = new Random(17);
        var x = new float[n * 3 * t * 25 * m];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        int[] y = [2, 0, 3];
        var model = new StGcnModel(Cfg, StGcnParity.Backend(backend), seed: 8);
        // perturb importance and BN affine so no gradient is trivially structured
        for (int i = 0; i < model.Parameters.Length; i++) model.Parameters[i] += (float)(0.1 * (rng.NextDouble() * 2 - 1));
        var buffers = (float[])model.Buffers.Clone();
        double Loss()
        {
            buffers.CopyTo(model.Buffers, 0); // training-mode forward updates running stats; keep the start state
            return model.Forward(x, y, n, t, m, training: true);
        }
        model.ZeroGradients();
        Loss();
        model.Backward();
        var grad = (float[])model.Gradients.Clone();
        const float h = 5e-4f;
        int checkedCount = 0, tight = 0;
        foreach (var p in model.Layout.Parameters)
        {
            // three elements of every parameter tensor
            for (int s = 0; s < 3; s++)
            {
                int i = p.Offset + rng.Next(p.Length);
                float old = model.Parameters[i];
                model.Parameters[i] = old + h; double lp = Loss();
                model.Parameters[i] = old - h; double lm = Loss();
                model.Parameters[i] = old;
                double fd = (lp - lm) / (2 * h);
                // A float32 FD through ReLU kinks is noisy: every element within a loose bound (a wiring
                // error is off by ~100%), and most (measured 94 and 89 of 105 on reference and cpu) within a tight one.
                Assert.That(Math.Abs(grad[i] - fd), Is.Not.NaN.And.LessThanOrEqualTo(1e-3 + 5e-2 * Math.Abs(fd)), $"{p.Name} element {i - p.Offset}: analytic {grad[i]}, FD {fd}");
                if (Math.Abs(grad[i] - fd) <= 2e-5 + 1e-2 * Math.Abs(fd)) tight++;
                checkedCount++;
            }
        }
        Assert.That(checkedCount, Is.EqualTo(3 * model.Layout.Parameters.Count));
        TestContext.Out.WriteLine($"{tight} of {checkedCount} elements within 2e-5 + 1% of the finite difference");
        Assert.That(tight, Is.GreaterThanOrEqualTo(0.75 * checkedCount));
    }

    [Test]
    public void ParityRejectsAFileWhoseTensorsDisagreeWithItsConfig()
    {
        var src = SafeTensorsFile.Read(TestPaths.Fixture("stgcn_small.safetensors"));
        var dir = Path.Combine(Path.GetTempPath(), "tdsm-stgcn-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, "wrong.safetensors");
            var meta = new Dictionary<string, string> { ["config"] = src.Metadata["config"].Replace("[8, 16, 2, true]", "[8, 12, 2, true]", StringComparison.Ordinal) };
            SafeTensorsFile.Write(path, src.Tensors, meta);
            var ex = Assert.Throws<TensorFormatException>(() => StGcnParity.Run(path, "reference"));
            Assert.That(ex!.Message, Does.Contain("wrong.safetensors").And.Contain("param.blocks.2.gcn.weight").And.Contain("expected [36,8,1,1]"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void UnknownBackendIsAClearError()
    {
        var ex = Assert.Throws<ArgumentException>(() => StGcnParity.Backend("tpu"));
        Assert.That(ex!.Message, Does.Contain("unknown ST-GCN backend 'tpu'"));
    }
}
