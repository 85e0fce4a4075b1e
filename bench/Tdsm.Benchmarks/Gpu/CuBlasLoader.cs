using System.Reflection;
using System.Runtime.InteropServices;

namespace Tdsm.Benchmarks.Gpu;

/// <summary>
/// ILGPU.Algorithms binds libcublas.so.10/11/12; the GPU machine ships CUDA 13's cuBLAS inside its
/// PyTorch environment. Point TDSM_CUBLAS at that libcublas.so.* and every cuBLAS import resolves to it.
/// Benchmark-only: cuBLAS is the same-run baseline, never a product path.
/// </summary>
internal static class CuBlasLoader
{
    private static int _installed;

    public static void Install()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 1) return;
        string? path = Environment.GetEnvironmentVariable("TDSM_CUBLAS");
        if (string.IsNullOrEmpty(path)) return;
        NativeLibrary.SetDllImportResolver(typeof(ILGPU.Runtime.Cuda.CuBlas).Assembly, (name, asm, search) =>
            name.Contains("cublas", StringComparison.OrdinalIgnoreCase) ? NativeLibrary.Load(path) : IntPtr.Zero);
    }
}
