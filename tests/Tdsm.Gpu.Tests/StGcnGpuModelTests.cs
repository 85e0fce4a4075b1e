using System.Diagnostics;
using Tdsm.Formats;
using Tdsm.Gpu.StGcn;
using Tdsm.StGcn;
using Tdsm.Tests;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// The whole device-resident ST-GCN: the golden fixture stgcn_small.safetensors (training-mode forward,
/// backward, running statistics, eval-mode forward) through <see cref="StGcnModel"/> on <see cref="StGcnGpuOps"/> with the
/// fixture's tolerances, and a short training run on the device against the same run on the reference tier.
/// On the simulator (measured on the shared 2-core machine: fixture 25-35 s, training run 8-18 s) and on CUDA when present.
/// </summary>
[TestFixture("simulator")]
[TestFixture("cuda")]
[NonParallelizable]
public class StGcnGpuModelTests(string device) : DeviceFixture(device)
{
    [Test]
    public void FixtureParity()
    {
        var f = SafeTensorsFile.Read(TestPaths.Fixture("stgcn_small.safetensors"));
        using var ops = new StGcnGpuOps(Device);
        var sw = Stopwatch.StartNew();
        var report = StGcnParity.RunTensors(f, ops);
        var w = new StringWriter();
        report.Write(w);
        TestContext.Out.WriteLine(w.ToString());
        TestContext.Out.WriteLine($"fixture parity on {report.Backend}: {sw.Elapsed.TotalSeconds:F1} s");
        Assert.That(report.Backend, Is.EqualTo(Device.IsCuda ? "gpu" : "gpu-sim"));
        Assert.That(report.Rows.Where(r => !r.Pass).Select(r => $"{r.Name}: {r.RelError:E2} > {r.Tolerance:E0}"), Is.Empty);
        Assert.That(report.Rows, Has.Count.GreaterThan(30));
    }

    [Test]
    public void TrainingOnTheDeviceMatchesTheReferenceTier()
    {
        // No residual, conv residual with stride 2, identity residual: every join of the model.
        var cfg = new StGcnConfig(3, 4, [new BlockSpec(3, 6, 1, false), new BlockSpec(6, 10, 2, true), new BlockSpec(10, 10, 1, true)]);
        int n = 4, t = 5, m = 2;
        var rng = new Random(3);
        var x = new float[n * 3 * t * 25 * m];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        int[] y = [0, 3, 2, 1];
        var opts = new StGcnTrainOptions { Epochs = 1, BatchSize = 2, BaseLr = 0.05, Seed = 5 };

        var host = new StGcnModel(cfg, new StGcnReferenceOps(), seed: 9);
        var hostStats = StGcnTraining.Train(host, x, y, n, t, m, opts);
        using var ops = new StGcnGpuOps(Device);
        var onDevice = new StGcnModel(cfg, ops, seed: 9);
        var gpuStats = StGcnTraining.Train(onDevice, x, y, n, t, m, opts);
        onDevice.SyncToHost();

        Assert.That(hostStats.Select(s => s.MeanLoss).All(double.IsFinite), Is.True, "host losses finite (NaN on both would compare equal)");
        for (int e = 0; e < hostStats.Count; e++)
            Assert.That(gpuStats[e].MeanLoss, Is.EqualTo(hostStats[e].MeanLoss).Within(1e-4 * Math.Abs(hostStats[e].MeanLoss)), $"epoch {e + 1} loss");
        Assert.That(RelError(onDevice.Parameters, host.Parameters), Is.Not.NaN.And.LessThan(1e-4), "parameters after 2 SGD steps");
        Assert.That(RelError(onDevice.Buffers, host.Buffers), Is.Not.NaN.And.LessThan(1e-4), "running statistics");
        Assert.That(onDevice.Parameters, Is.Not.EqualTo(new StGcnModel(cfg, new StGcnReferenceOps(), seed: 9).Parameters), "training changed the parameters");

        var fh = StGcnTraining.ExtractFeatures(host, x, n, t, m, batchSize: 4);
        var fg = StGcnTraining.ExtractFeatures(onDevice, x, n, t, m, batchSize: 4);
        Assert.That(RelError(fg, fh), Is.Not.NaN.And.LessThan(1e-4), "eval features");
    }

    private static double RelError(float[] a, float[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
        return Math.Sqrt(num / Math.Max(den, 1e-30));
    }
}
