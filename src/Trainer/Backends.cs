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

    /// <param name="name">A backend name (<see cref="Names"/>).</param>
    /// <param name="profiling">Open a GPU device with profiling markers allowed (bench --profile).</param>
    public static IOps Create(string name, bool profiling = false)
    {
        if (name is "reference") return new ReferenceOps();
        if (name is "cpu") return new CpuOps();
        var gpu = ParseGpu(name) ?? throw new CommandLineException($"unknown backend '{name}' (expected {Names})");
        return new GpuOps(OpenDevice(gpu.Simulator, profiling)) { GemmPrecision = gpu.Precision };
    }

    /// <summary>
    /// gpu[-sim][-bf16|-tf32]: whether the name runs on the simulator and the precision of the GEMMs (the ST-GCN's
    /// convolutions); null for any other name.
    /// </summary>
    public static (bool Simulator, GemmPrecision Precision)? ParseGpu(string name)
    {
        var precision = GemmPrecision.Fp32;
        string device = name;
        if (name.EndsWith("-bf16", StringComparison.Ordinal)) { precision = GemmPrecision.Bf16; device = name[..^5]; }
        else if (name.EndsWith("-tf32", StringComparison.Ordinal)) { precision = GemmPrecision.Tf32; device = name[..^5]; }
        return device switch
        {
            "gpu" => (false, precision),
            "gpu-sim" => (true, precision),
            _ => null,
        };
    }

    /// <summary>The simulator, or CUDA device 0 with a clear error when there is none.</summary>
    public static GpuDevice OpenDevice(bool simulator, bool profiling = false)
    {
        if (simulator) return GpuDevice.OpenSimulator(profiling);
        if (!GpuDevice.CudaAvailable())
            throw new CommandLineException("no CUDA device found; use --backend cpu (or gpu-sim to run the GPU kernels on ILGPU's CPU simulator)");
        return GpuDevice.OpenCuda(profiling: profiling);
    }

    /// <summary>Refuses an unknown backend name before any work (a typo found after a long scoring pass wastes it), and a
    /// CUDA backend on a machine without CUDA.</summary>
    public static void Check(string name, string option = "--backend")
    {
        if (name is "reference" or "cpu" || ParseGpu(name) is { Simulator: true }) return;
        if (ParseGpu(name) is null) throw new CommandLineException($"{option}: unknown backend '{name}' (expected {Names})");
        if (!GpuDevice.CudaAvailable()) throw new CommandLineException($"{option} {name}: no CUDA device found; use cpu (or gpu-sim to run the GPU kernels on ILGPU's CPU simulator)");
    }

    /// <summary>True for the names that open a CUDA device (gpu, gpu-bf16, gpu-tf32).</summary>
    public static bool IsCuda(string name) => ParseGpu(name) is { Simulator: false };

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
