using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Gpu;

/// <summary>
/// One ILGPU context and accelerator: a CUDA device in production, or ILGPU's CPU simulator
/// (NVIDIA-like: warp 32, groups up to 1024 threads) for tests on machines without a GPU.
/// Dispose after every buffer made on it.
/// </summary>
public sealed class GpuDevice : IDisposable
{
    public Context Context { get; }
    public Accelerator Accelerator { get; }

    /// <summary>True for a real CUDA device, false for the CPU simulator.</summary>
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

    private GpuDevice(Context context, Accelerator accelerator) { Context = context; Accelerator = accelerator; }

    /// <summary>True when a CUDA device can be opened here.</summary>
    public static bool CudaAvailable()
    {
        try
        {
            using var ctx = Context.Create(b => b.Cuda());
            return ctx.GetCudaDevices().Count > 0;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or InvalidOperationException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Opens CUDA device <paramref name="index"/> with O2 optimisation and precise math;
    /// <paramref name="profiling"/> allows profiling markers (<see cref="GpuOpClock"/>, bench --profile).
    /// </summary>
    /// <exception cref="InvalidOperationException">No CUDA device exists.</exception>
    public static GpuDevice OpenCuda(int index = 0, bool profiling = false)
    {
        var ctx = Context.Create(b =>
        {
            b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2).Math(MathMode.Default);
            if (profiling) b.Profiling();
        });
        if (ctx.GetCudaDevices().Count <= index)
        {
            ctx.Dispose();
            throw new InvalidOperationException($"no CUDA device {index} (found {ctx.GetCudaDevices().Count}); use --backend cpu on machines without an NVIDIA GPU");
        }
        return new GpuDevice(ctx, ctx.CreateCudaAccelerator(index));
    }

    /// <summary>The CPU simulator with bounds assertions on (slow: tests at tiny sizes only); <paramref name="profiling"/> as for CUDA.</summary>
    public static GpuDevice OpenSimulator(bool profiling = false)
    {
        var ctx = Context.Create(b =>
        {
            b.CPU(CPUDeviceKind.Nvidia).EnableAlgorithms().Assertions();
            if (profiling) b.Profiling();
        });
        return new GpuDevice(ctx, ctx.CreateCPUAccelerator(0));
    }

    /// <summary>CUDA when available, else the simulator.</summary>
    public static GpuDevice OpenBest() => CudaAvailable() ? OpenCuda() : OpenSimulator();

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}
