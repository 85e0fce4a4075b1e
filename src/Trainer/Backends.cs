using Tdsm.Cpu;
using Tdsm.Gpu;
using Tdsm.Ops;
using Tdsm.Reference;

namespace Tdsm.Trainer;

/// <summary>Maps a backend name from the command line to an op set.</summary>
public static class Backends
{
    public const string Names = "reference, cpu, gpu (CUDA) or gpu-sim (ILGPU's CPU simulator, slow, for debugging kernels); " +
        "gpu-bf16 / gpu-tf32 (and gpu-sim-bf16 / gpu-sim-tf32) run the GPU tier's GEMMs on tensor cores with bf16 / tf32 operands";

    public static IOps Create(string name)
    {
        if (name is "reference") return new ReferenceOps();
        if (name is "cpu") return new CpuOps();
        // gpu[-sim][-bf16|-tf32]
        var precision = GemmPrecision.Fp32;
        string device = name;
        if (name.EndsWith("-bf16", StringComparison.Ordinal)) { precision = GemmPrecision.Bf16; device = name[..^5]; }
        else if (name.EndsWith("-tf32", StringComparison.Ordinal)) { precision = GemmPrecision.Tf32; device = name[..^5]; }
        var ops = device switch
        {
            "gpu" => GpuDevice.CudaAvailable()
                ? new GpuOps(GpuDevice.OpenCuda())
                : throw new CommandLineException("no CUDA device found; use --backend cpu (or gpu-sim to run the GPU kernels on ILGPU's CPU simulator)"),
            "gpu-sim" => new GpuOps(GpuDevice.OpenSimulator()),
            _ => throw new CommandLineException($"unknown backend '{name}' (expected {Names})"),
        };
        ops.GemmPrecision = precision;
        return ops;
    }

    /// <summary>True for the names that open a CUDA device (gpu, gpu-bf16, gpu-tf32).</summary>
    public static bool IsCuda(string name) => name is "gpu" or "gpu-bf16" or "gpu-tf32";

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
