using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Gpu;

/// <summary>What the CUDA driver's JIT made of a kernel: registers per thread, local memory (stack and spills), static
/// shared memory, and the blocks per SM the occupancy calculator gives at a group size.</summary>
public sealed record KernelResources(int Registers, int LocalBytes, int StaticSharedBytes, int BlocksPerSM, int Threads, bool Lifted = false)
{
    private const int AttrSharedSizeBytes = 1, AttrLocalSizeBytes = 3, AttrNumRegs = 4;
    private const int DefaultSharedBytes = 48 * 1024;

    [DllImport("libcuda.so.1")]
    private static extern int cuFuncGetAttribute(out int value, int attribute, IntPtr function);

    [DllImport("libcuda.so.1")]
    private static extern int cuOccupancyMaxActiveBlocksPerMultiprocessor(out int blocks, IntPtr function, int blockSize, nuint dynamicSharedBytes);

    /// <summary>
    /// Compiles <paramref name="kernel"/> with <paramref name="specialization"/> (the launch bounds the GPU tier loads it
    /// with) on the CUDA accelerator and asks the driver. Throws on a non-CUDA accelerator or a failed driver call.
    /// Kernels with inline-asm operand slots are compiled from the PTX <see cref="LiftedKernels"/> gives the driver, as the
    /// tier loads the tensor-core kernels (Lifted true), unless TDSM_PTX_LIFT=0. A kernel with more than 48 KB of dynamic shared
    /// memory is opted in first (<see cref="LargeSharedMemory"/>), as the tier does before launching it.
    /// </summary>
    public static KernelResources Of(Accelerator accelerator, MethodInfo kernel, KernelSpecialization specialization, int threads, int dynamicSharedBytes = 0)
    {
        if (accelerator is not CudaAccelerator) throw new NotSupportedException("kernel resources come from the CUDA driver");
        var (loaded, lifted) = LiftedKernels.Load(accelerator, kernel, specialization);
        using var compiled = (CudaKernel)loaded;
        int Attr(int attribute) =>
            cuFuncGetAttribute(out int value, attribute, compiled.FunctionPtr) == 0 ? value
                : throw new InvalidOperationException($"cuFuncGetAttribute({attribute}) failed for {kernel.Name}");
        int regs = Attr(AttrNumRegs), local = Attr(AttrLocalSizeBytes), shared = Attr(AttrSharedSizeBytes);
        // Above the default 48 KB the occupancy query, like a launch, needs the kernel opted in (as the tier does).
        if (dynamicSharedBytes > DefaultSharedBytes) LargeSharedMemory.Allow(accelerator, loaded, dynamicSharedBytes);
        if (cuOccupancyMaxActiveBlocksPerMultiprocessor(out int blocks, compiled.FunctionPtr, threads, (nuint)dynamicSharedBytes) != 0)
            throw new InvalidOperationException($"cuOccupancyMaxActiveBlocksPerMultiprocessor failed for {kernel.Name}");
        return new KernelResources(regs, local, shared, blocks, threads, lifted);
    }

    public override string ToString() =>
        $"{Registers} registers, {LocalBytes} B local (stack + spills), {StaticSharedBytes} B shared, {BlocksPerSM} blocks/SM at {Threads} threads{(Lifted ? ", asm operand slots lifted in the PTX" : "")}";
}
