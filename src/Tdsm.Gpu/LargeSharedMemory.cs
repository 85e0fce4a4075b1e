using System.Runtime.InteropServices;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Gpu;

/// <summary>
/// Lets a loaded CUDA kernel launch with more dynamic shared memory than the 48 KB a block has by default (Hopper: up to
/// the device's opt-in limit, 227 KB). Two things stand in the way: the driver needs the function's
/// <c>CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES</c> raised (<c>cuFuncSetAttribute</c>, on ILGPU's public
/// <see cref="CudaKernel.FunctionPtr"/>), and ILGPU 1.5.3's launcher refuses any launch above
/// <see cref="Accelerator.MaxSharedMemoryPerGroup"/>, which reads the device's <c>MaxSharedMemoryPerGroup</c>: its setter is
/// protected, so it is raised to the opt-in limit by reflection. Used for <see cref="Kernels.TensorCoreGemm.KernelWgmmaDeep"/>.
/// </summary>
public static class LargeSharedMemory
{
    private const int FuncMaxDynamicSharedSizeBytes = 8;           // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    private const int DeviceMaxSharedMemoryPerBlockOptIn = 97;     // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN

    // The driver as KernelResources reaches it (the library name the driver installs).
    [DllImport("libcuda.so.1")]
    private static extern int cuFuncSetAttribute(IntPtr function, int attribute, int value);

    [DllImport("libcuda.so.1")]
    private static extern int cuDeviceGetAttribute(out int value, int attribute, int device);

    /// <summary>
    /// Allows <paramref name="kernel"/> (loaded on <paramref name="accelerator"/>) <paramref name="bytes"/> of dynamic shared
    /// memory per block. A CPU accelerator (the simulator) needs nothing.
    /// </summary>
    /// <exception cref="NotSupportedException">The device's opt-in limit is below <paramref name="bytes"/>.</exception>
    /// <exception cref="InvalidOperationException">A driver call failed (its CUresult in the message), or this ILGPU has no settable device limit.</exception>
    public static void Allow(Accelerator accelerator, Kernel kernel, int bytes)
    {
        if (accelerator is not CudaAccelerator cuda) return;
        cuda.Bind();
        Check(cuDeviceGetAttribute(out int optIn, DeviceMaxSharedMemoryPerBlockOptIn, cuda.DeviceId), "cuDeviceGetAttribute(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)");
        if (bytes > optIn) throw new NotSupportedException($"{cuda.Name}: a block may have at most {optIn:N0} bytes of shared memory, {bytes:N0} asked");
        Check(cuFuncSetAttribute(((CudaKernel)kernel).FunctionPtr, FuncMaxDynamicSharedSizeBytes, bytes), $"cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, {bytes})");
        if (cuda.MaxSharedMemoryPerGroup >= bytes) return;
        var setter = LaunchLimitSetter ?? throw new InvalidOperationException("LargeSharedMemory: this ILGPU's Device.MaxSharedMemoryPerGroup has no setter");
        setter.Invoke(cuda.Device, [optIn]);
    }

    /// <summary>
    /// The protected setter of <see cref="Device.MaxSharedMemoryPerGroup"/>, which ILGPU's launcher reads (through
    /// <see cref="Accelerator.MaxSharedMemoryPerGroup"/>) to refuse launches; null in an ILGPU without one.
    /// </summary>
    public static System.Reflection.MethodInfo? LaunchLimitSetter { get; } =
        typeof(Device).GetProperty(nameof(Device.MaxSharedMemoryPerGroup))?.GetSetMethod(nonPublic: true);

    private static void Check(int result, string call)
    {
        if (result != 0) throw new InvalidOperationException($"LargeSharedMemory: {call} returned CUresult {result}");
    }
}
