using ILGPU;
using ILGPU.Runtime;
using Tdsm.Kernels.StGcn;

namespace Tdsm.Gpu.Tests;

/// <summary>The group-per-channel reduction of the ST-GCN channel partials, on the simulator (and CUDA when present).</summary>
[TestFixture("simulator")]
[TestFixture("cuda")]
[NonParallelizable]
public class ChannelReduceTests(string device) : DeviceFixture(device)
{
    [Test]
    public void ReduceRowsSumsEveryPartialRowPerChannel([Values(1, 700, 1100)] int rows)
    {
        var acc = Device.Accelerator;
        const int c = 3;
        var rng = new Random(3);
        var p0 = Enumerable.Range(0, rows * c).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var p1 = Enumerable.Range(0, rows * c).Select(_ => rng.NextDouble()).ToArray();
        using var b0 = acc.Allocate1D(p0);
        using var b1 = acc.Allocate1D(p1);
        using var o0 = acc.Allocate1D<double>(c);
        using var o1 = acc.Allocate1D<double>(c);
        var kernel = acc.LoadStreamKernel<ArrayView<double>, ArrayView<double>, ArrayView<double>, ArrayView<double>, int, int, int>(ChannelStats.ReduceRows);
        kernel(new KernelConfig(c, ChannelStats.ReduceThreads), b0.View, b1.View, o0.View, o1.View, rows, c, 1);
        var got0 = o0.GetAsArray1D();
        var got1 = o1.GetAsArray1D();
        for (int ci = 0; ci < c; ci++)
        {
            double want0 = 0, want1 = 0;
            for (int r = 0; r < rows; r++) { want0 += p0[ci * rows + r]; want1 += p1[ci * rows + r]; }   // (C, R)
            // float64 sums of a few hundred terms in another order: agreement to ~1e-13.
            Assert.That(got0[ci], Is.EqualTo(want0).Within(1e-12), $"p0 channel {ci}");
            Assert.That(got1[ci], Is.EqualTo(want1).Within(1e-12), $"p1 channel {ci}");
        }
    }
}
