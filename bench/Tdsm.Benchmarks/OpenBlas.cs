using System.Runtime.InteropServices;

namespace Tdsm.Benchmarks;

/// <summary>
/// OpenBLAS sgemm through P/Invoke, the baseline for the managed GEMM. Benchmark project only:
/// the library never loads native code. bench/run-cpu-bench.sh installs libopenblas0-pthread.
/// </summary>
internal static partial class OpenBlas
{
    private const string Lib = "libopenblas.so.0";
    public const int RowMajor = 101, NoTrans = 111, Trans = 112;

    [LibraryImport(Lib, EntryPoint = "cblas_sgemm")]
    private static unsafe partial void Sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Lib, EntryPoint = "openblas_get_num_threads")]
    public static partial int NumThreads();

    [LibraryImport(Lib, EntryPoint = "openblas_get_config")]
    private static partial IntPtr Config();

    /// <summary>OpenBLAS's build/kernel description (e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell MAX_THREADS=64").</summary>
    public static string ConfigString() => Marshal.PtrToStringAnsi(Config()) ?? "?";

    /// <summary>C (M,N) = A (M,K) · B (K,N), row-major: the Linear backward's dX = dY·W.</summary>
    public static unsafe void MatMulAB(float[] a, float[] b, float[] c, int m, int n, int k)
    {
        fixed (float* pa = a, pb = b, pc = c)
            Sgemm(RowMajor, NoTrans, NoTrans, m, n, k, 1f, pa, k, pb, n, 0f, pc, n);
    }

    /// <summary>C (M,N) = Aᵀ · B with A (K,M) and B (K,N), row-major: the Linear backward's dW = dYᵀ·X.</summary>
    public static unsafe void MatMulAtB(float[] a, float[] b, float[] c, int m, int n, int k)
    {
        fixed (float* pa = a, pb = b, pc = c)
            Sgemm(RowMajor, Trans, NoTrans, m, n, k, 1f, pa, m, pb, n, 0f, pc, n);
    }

    /// <summary>C (M,N) = A (M,K) · Bᵀ with B (N,K), row-major: the Linear layout.</summary>
    public static unsafe void MatMulABt(float[] a, float[] b, float[] c, int m, int n, int k)
    {
        fixed (float* pa = a, pb = b, pc = c)
            Sgemm(RowMajor, NoTrans, Trans, m, n, k, 1f, pa, k, pb, k, 0f, pc, n);
    }
}
