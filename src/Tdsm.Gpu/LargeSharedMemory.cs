using System.Reflection;
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
internal static class LargeSharedMemory
{
    private const int FuncMaxDynamicSharedSizeBytes = 8;           // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    private const int DeviceMaxSharedMemoryPerBlockOptIn = 97;     // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int FuncSetAttribute(IntPtr function, int attribute, int value);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int DeviceGetAttribute(out int value, int attribute, int device);

    private static (FuncSetAttribute Set, DeviceGetAttribute Get)? _driver;

    // The driver's two entry points (libcuda.so.1 as the driver installs it, or the unversioned name ILGPU loads).
    private static (FuncSetAttribute Set, DeviceGetAttribute Get) Driver()
    {
        if (_driver is { } d) return d;
        IntPtr lib = IntPtr.Zero;
        foreach (var name in new[] { "libcuda.so.1", "libcuda.so", "nvcuda.dll" })
            if (NativeLibrary.TryLoad(name, out lib)) break;
        if (lib == IntPtr.Zero) throw new DllNotFoundException("LargeSharedMemory: the CUDA driver library (libcuda.so.1, libcuda.so or nvcuda.dll) was not found");
        T Fn<T>(string export) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(lib, export));
        var driver = (Fn<FuncSetAttribute>("cuFuncSetAttribute"), Fn<DeviceGetAttribute>("cuDeviceGetAttribute"));
        _driver = driver;
        return driver;
    }

    /// <summary>
    /// Allows <paramref name="kernel"/> (loaded on <paramref name="accelerator"/>) <paramref name="bytes"/> of dynamic shared
    /// memory per block. A CPU accelerator (the simulator) needs nothing.
    /// </summary>
    /// <exception cref="NotSupportedException">The device's opt-in limit is below <paramref name="bytes"/>.</exception>
    /// <exception cref="InvalidOperationException">A driver call failed (its CUresult in the message), or this ILGPU has no settable device limit.</exception>
    public static void Allow(Accelerator accelerator, Kernel kernel, int bytes)
    {
        if (accelerator is not CudaAccelerator cuda) return;
        var (set, get) = Driver();
        cuda.Bind();
        int device = cuda.DeviceId;
        Check(get(out int optIn, DeviceMaxSharedMemoryPerBlockOptIn, device), "cuDeviceGetAttribute(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)");
        if (bytes > optIn) throw new NotSupportedException($"{cuda.Name}: a block may have at most {optIn:N0} bytes of shared memory, {bytes:N0} asked");
        Check(set(((CudaKernel)kernel).FunctionPtr, FuncMaxDynamicSharedSizeBytes, bytes), $"cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, {bytes})");
        if (cuda.MaxSharedMemoryPerGroup >= bytes) return;
        var setter = typeof(Device).GetProperty(nameof(Device.MaxSharedMemoryPerGroup))?.GetSetMethod(nonPublic: true)
            ?? throw new InvalidOperationException("LargeSharedMemory: this ILGPU's Device.MaxSharedMemoryPerGroup has no setter");
        setter.Invoke(cuda.Device, [optIn]);
    }

    private static void Check(int result, string call)
    {
        if (result != 0) throw new InvalidOperationException($"LargeSharedMemory: {call} returned CUresult {result}");
    }
}
