using Tdsm.Gpu;
using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>Backend names from the command line, including the tensor-core precisions of the GPU tier.</summary>
public class BackendsTests
{
    [TestCase("gpu-sim", GemmPrecision.Fp32)]
    [TestCase("gpu-sim-bf16", GemmPrecision.Bf16)]
    [TestCase("gpu-sim-tf32", GemmPrecision.Tf32)]
    public void SimulatorNamesCarryTheirPrecision(string name, GemmPrecision precision)
    {
        var ops = Backends.Create(name);
        try
        {
            Assert.That(ops, Is.InstanceOf<GpuOps>());
            Assert.That(((GpuOps)ops).GemmPrecision, Is.EqualTo(precision));
            Assert.That(ops.Name, Is.EqualTo(name), "the tier name reports the precision, so eval --compare output is unambiguous");
        }
        finally { Backends.Release(ops); }
    }

    [Test]
    public void UnknownNamesAreRefusedWithTheList()
    {
        var ex = Assert.Throws<CommandLineException>(() => Backends.Create("gpu-fp16"));
        Assert.That(ex!.Message, Does.Contain("unknown backend 'gpu-fp16'").And.Contain("gpu-bf16"));
        Assert.That(Backends.IsCuda("gpu-bf16") && Backends.IsCuda("gpu") && !Backends.IsCuda("gpu-sim-bf16"), Is.True);
    }
}
