using System.Runtime.InteropServices;

namespace Tdsm.Benchmarks.Gpu;

/// <summary>
/// cuBLAS bf16 GEMM (<c>cublasGemmEx</c>, CUDA_R_16BF inputs, fp32 output, CUBLAS_COMPUTE_32F):
/// the same-run baseline of the tensor-core GEMM. ILGPU.Algorithms binds only S/D/H GEMMs, so this
/// loads libcublas itself (TDSM_CUBLAS, else libcublas.so.13/.12/.11) with its own handle on the
/// default stream. Column-major like every cuBLAS call. Benchmark-only, never a product path.
/// </summary>
internal sealed class CuBlasBf16 : IDisposable
{
    private const int Bf16 = 14, Fp32 = 0, Compute32F = 68, GemmDefault = -1;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int CreateFn(out IntPtr handle);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int DestroyFn(IntPtr handle);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int GemmExFn(IntPtr handle, int transA, int transB, int m, int n, int k, ref float alpha,
        IntPtr a, int aType, int lda, IntPtr b, int bType, int ldb, ref float beta, IntPtr c, int cType, int ldc, int computeType, int algo);

    private readonly IntPtr _handle;
    private readonly DestroyFn _destroy;
    private readonly GemmExFn _gemmEx;

    public CuBlasBf16()
    {
        var env = Environment.GetEnvironmentVariable("TDSM_CUBLAS");
        string[] names = string.IsNullOrEmpty(env) ? ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11"] : [env];
        IntPtr lib = IntPtr.Zero;
        foreach (var name in names)
            if (NativeLibrary.TryLoad(name, out lib)) break;
        if (lib == IntPtr.Zero) throw new DllNotFoundException($"cuBLAS not found (tried {string.Join(", ", names)}); set TDSM_CUBLAS to a libcublas.so.*");
        T Fn<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(lib, name));
        _destroy = Fn<DestroyFn>("cublasDestroy_v2");
        _gemmEx = Fn<GemmExFn>("cublasGemmEx");
        Check(Fn<CreateFn>("cublasCreate_v2")(out _handle), "cublasCreate_v2");
    }

    /// <summary>Column-major C (m,n) = op(A)·op(B) with bf16 A, B (device addresses) and fp32 C.</summary>
    public void Gemm(bool transA, bool transB, int m, int n, int k, IntPtr a, int lda, IntPtr b, int ldb, IntPtr c, int ldc)
    {
        float alpha = 1f, beta = 0f;
        Check(_gemmEx(_handle, transA ? 1 : 0, transB ? 1 : 0, m, n, k, ref alpha, a, Bf16, lda, b, Bf16, ldb, ref beta, c, Fp32, ldc, Compute32F, GemmDefault), "cublasGemmEx");
    }

    private static void Check(int status, string what)
    {
        if (status != 0) throw new InvalidOperationException($"{what} failed with cuBLAS status {status}");
    }

    public void Dispose() => _destroy(_handle);
}
