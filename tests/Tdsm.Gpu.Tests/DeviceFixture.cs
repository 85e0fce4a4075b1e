namespace Tdsm.Gpu.Tests;

/// <summary>
/// Base of the fixtures that run once on ILGPU's CPU simulator ("simulator", in CI) and once on
/// CUDA ("cuda", skipped cleanly without a device): opens the device before the fixture's tests and
/// disposes it (after whatever <see cref="OnClose"/> releases) at the end.
/// </summary>
public abstract class DeviceFixture(string device)
{
    /// <summary>The open device (the simulator or CUDA device 0).</summary>
    protected GpuDevice Device { get; private set; } = null!;

    [OneTimeSetUp]
    public void OpenDevice()
    {
        if (device == "cuda" && !GpuDevice.CudaAvailable()) Assert.Ignore("no CUDA device on this machine");
        Device = device == "cuda" ? GpuDevice.OpenCuda() : GpuDevice.OpenSimulator();
        OnOpen(Device);
    }

    /// <summary>
    /// Makes this fixture's device the thread's current one before each test. ILGPU binds the accelerator created last;
    /// the device runner (Tdsm.Tests.Device) runs some tests after other fixtures opened and closed their own devices.
    /// </summary>
    [SetUp]
    public void BindDevice() => Device?.Accelerator.Bind();

    [OneTimeTearDown]
    public void CloseDevice()
    {
        if (Device is null) return;
        OnClose();
        Device.Dispose();
    }

    /// <summary>Creates what the fixture's tests share on the device.</summary>
    protected virtual void OnOpen(GpuDevice device) { }

    /// <summary>Releases it (device buffers before the device).</summary>
    protected virtual void OnClose() { }
}

/// <summary>A <see cref="DeviceFixture"/> with one <see cref="GpuOps"/> on the device.</summary>
public abstract class GpuOpsFixture(string device) : DeviceFixture(device)
{
    /// <summary>The GPU tier's op set.</summary>
    protected GpuOps Gpu { get; private set; } = null!;

    protected override void OnOpen(GpuDevice device) => Gpu = new GpuOps(device);

    protected override void OnClose() => Gpu?.Dispose();
}

/// <summary>A <see cref="DeviceFixture"/> with one ST-GCN op set (<see cref="StGcn.StGcnGpuOps"/>) on the device.</summary>
public abstract class StGcnOpsFixture(string device) : DeviceFixture(device)
{
    /// <summary>The GPU tier's ST-GCN op set.</summary>
    protected StGcn.StGcnGpuOps Gpu { get; private set; } = null!;

    protected override void OnOpen(GpuDevice device) => Gpu = new StGcn.StGcnGpuOps(device);

    protected override void OnClose() => Gpu?.Dispose();
}

/// <summary>The order of the GPU visit's test run (Tdsm.Tests.Device), which NUnit's own runner does not use.</summary>
public static class DeviceOrder
{
    /// <summary>
    /// The category of tests that launch kernels never run on a GPU before (the wgmma kernels): the device runner runs
    /// them after all the others, so that a fault of theirs cannot cost the other tests their results.
    /// </summary>
    public const string RunLast = "RunLastOnDevice";
}
