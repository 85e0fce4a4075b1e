using Tdsm.Cpu;
using Tdsm.Gpu;
using Tdsm.Ops;
using Tdsm.Reference;

namespace Tdsm.Trainer;

/// <summary>Maps a backend name from the command line to an op set.</summary>
public static class Backends
{
    public const string Names = "reference, cpu, gpu (CUDA) or gpu-sim (ILGPU's CPU simulator, slow, for debugging kernels)";

    public static IOps Create(string name) => name switch
    {
        "reference" => new ReferenceOps(),
        "cpu" => new CpuOps(),
        "gpu" => GpuDevice.CudaAvailable()
            ? new GpuOps(GpuDevice.OpenCuda())
            : throw new CommandLineException("no CUDA device found; use --backend cpu (or gpu-sim to run the GPU kernels on ILGPU's CPU simulator)"),
        "gpu-sim" => new GpuOps(GpuDevice.OpenSimulator()),
        _ => throw new CommandLineException($"unknown backend '{name}' (expected {Names})"),
    };

    /// <summary>Releases what <see cref="Create"/> opened (device buffers, then the device).</summary>
    public static void Release(IOps ops)
    {
        if (ops is GpuOps g)
        {
            var device = g.Device;
            g.Dispose();
            device.Dispose();
        }
    }
}
