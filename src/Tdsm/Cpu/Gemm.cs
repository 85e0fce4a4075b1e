using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tdsm.Cpu;

/// <summary>
/// Multi-threaded SIMD single-precision matrix products for the managed CPU tier. All matrices
/// are row-major in <c>float[]</c> with an element offset. Shape letters: M rows of C, N columns
/// of C, K the reduced dimension. <c>accumulate</c> chooses C += product (parameter gradients)
/// or C = product (activations).
/// </summary>
public static class Gemm
{
    // Below this many multiply-adds the thread hand-off costs more than it saves.
    private const long ParallelThreshold = 1 << 16;

    /// <summary>C (M,N) = A (M,K) · Bᵀ where B is (N,K): the Linear layout y = x Wᵀ.</summary>
    public static void MatMulABt(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, bool accumulate)
    {
        Check(a, aOff, (long)m * k, b, bOff, (long)n * k, c, cOff, (long)m * n);
        if (m == 0 || n == 0) return;
        if (!PackedGemm.Supported || k == 0)
        {
            MatMulABtSimple(a, aOff, b, bOff, c, cOff, m, n, k, accumulate);
            return;
        }
        var packed = PackedMatrix.Rent(b, bOff, n, k);
        try { PackedGemm.Run(a, aOff, packed, c, cOff, m, accumulate, null, 0); }
        finally { packed.Return(); }
    }

    /// <summary>
    /// C (M,N) = A (M,K) · Bᵀ (+ bias) with B packed once by <see cref="PackedMatrix.Pack"/>
    /// (constant weights: the inference path packs every layer at load). Allocates nothing.
    /// </summary>
    public static void MatMulPacked(float[] a, int aOff, PackedMatrix b, float[] c, int cOff, int m, bool accumulate, float[]? bias = null, int biasOff = 0)
    {
        ArgumentNullException.ThrowIfNull(b);
        Check(a, aOff, (long)m * b.K, c, cOff, 0, c, cOff, (long)m * b.N);
        if (bias is not null && (biasOff < 0 || biasOff + b.N > bias.Length)) throw new ArgumentException($"bias: offset {biasOff} + {b.N} exceeds its length {bias.Length}");
        if (m == 0) return;
        PackedGemm.Run(a, aOff, b, c, cOff, m, accumulate, bias, biasOff);
    }

    /// <summary>The unpacked 4x4-tile kernel (the fallback where 256-bit SIMD is not accelerated).</summary>
    internal static void MatMulABtSimple(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, bool accumulate)
    {
        int rowBlocks = (m + 3) / 4;
        if ((long)m * n * k < ParallelThreshold || rowBlocks == 1)
        {
            for (int rb = 0; rb < rowBlocks; rb++) ABtRows(a, aOff, b, bOff, c, cOff, m, n, k, rb * 4, accumulate);
            return;
        }
        Parallel.For(0, rowBlocks, rb => ABtRows(a, aOff, b, bOff, c, cOff, m, n, k, rb * 4, accumulate));
    }

    // Rows i0..i0+3 of C: a 4x4 register tile of dot products over contiguous rows of A and B.
    private static void ABtRows(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, int i0, bool accumulate)
    {
        int rows = Math.Min(4, m - i0);
        ref float A = ref MemoryMarshal.GetArrayDataReference(a);
        ref float B = ref MemoryMarshal.GetArrayDataReference(b);
        int w = Vector<float>.Count;
        int kv = k - k % w;
        Span<float> tile = stackalloc float[16];
        for (int j0 = 0; j0 < n; j0 += 4)
        {
            int cols = Math.Min(4, n - j0);
            tile.Clear();
            if (rows == 4 && cols == 4)
            {
                ref float a0 = ref Unsafe.Add(ref A, aOff + (i0 + 0) * k);
                ref float a1 = ref Unsafe.Add(ref A, aOff + (i0 + 1) * k);
                ref float a2 = ref Unsafe.Add(ref A, aOff + (i0 + 2) * k);
                ref float a3 = ref Unsafe.Add(ref A, aOff + (i0 + 3) * k);
                ref float b0 = ref Unsafe.Add(ref B, bOff + (j0 + 0) * k);
                ref float b1 = ref Unsafe.Add(ref B, bOff + (j0 + 1) * k);
                ref float b2 = ref Unsafe.Add(ref B, bOff + (j0 + 2) * k);
                ref float b3 = ref Unsafe.Add(ref B, bOff + (j0 + 3) * k);
                Vector<float> s00 = default, s01 = default, s02 = default, s03 = default;
                Vector<float> s10 = default, s11 = default, s12 = default, s13 = default;
                Vector<float> s20 = default, s21 = default, s22 = default, s23 = default;
                Vector<float> s30 = default, s31 = default, s32 = default, s33 = default;
                for (int p = 0; p < kv; p += w)
                {
                    var vb0 = Vector.LoadUnsafe(ref b0, (nuint)p);
                    var vb1 = Vector.LoadUnsafe(ref b1, (nuint)p);
                    var vb2 = Vector.LoadUnsafe(ref b2, (nuint)p);
                    var vb3 = Vector.LoadUnsafe(ref b3, (nuint)p);
                    var va = Vector.LoadUnsafe(ref a0, (nuint)p);
                    s00 = Vector.FusedMultiplyAdd(va, vb0, s00); s01 = Vector.FusedMultiplyAdd(va, vb1, s01);
                    s02 = Vector.FusedMultiplyAdd(va, vb2, s02); s03 = Vector.FusedMultiplyAdd(va, vb3, s03);
                    va = Vector.LoadUnsafe(ref a1, (nuint)p);
                    s10 = Vector.FusedMultiplyAdd(va, vb0, s10); s11 = Vector.FusedMultiplyAdd(va, vb1, s11);
                    s12 = Vector.FusedMultiplyAdd(va, vb2, s12); s13 = Vector.FusedMultiplyAdd(va, vb3, s13);
                    va = Vector.LoadUnsafe(ref a2, (nuint)p);
                    s20 = Vector.FusedMultiplyAdd(va, vb0, s20); s21 = Vector.FusedMultiplyAdd(va, vb1, s21);
                    s22 = Vector.FusedMultiplyAdd(va, vb2, s22); s23 = Vector.FusedMultiplyAdd(va, vb3, s23);
                    va = Vector.LoadUnsafe(ref a3, (nuint)p);
                    s30 = Vector.FusedMultiplyAdd(va, vb0, s30); s31 = Vector.FusedMultiplyAdd(va, vb1, s31);
                    s32 = Vector.FusedMultiplyAdd(va, vb2, s32); s33 = Vector.FusedMultiplyAdd(va, vb3, s33);
                }
                tile[0] = Vector.Sum(s00); tile[1] = Vector.Sum(s01); tile[2] = Vector.Sum(s02); tile[3] = Vector.Sum(s03);
                tile[4] = Vector.Sum(s10); tile[5] = Vector.Sum(s11); tile[6] = Vector.Sum(s12); tile[7] = Vector.Sum(s13);
                tile[8] = Vector.Sum(s20); tile[9] = Vector.Sum(s21); tile[10] = Vector.Sum(s22); tile[11] = Vector.Sum(s23);
                tile[12] = Vector.Sum(s30); tile[13] = Vector.Sum(s31); tile[14] = Vector.Sum(s32); tile[15] = Vector.Sum(s33);
                for (int p = kv; p < k; p++)
                {
                    float x0 = Unsafe.Add(ref a0, p), x1 = Unsafe.Add(ref a1, p), x2 = Unsafe.Add(ref a2, p), x3 = Unsafe.Add(ref a3, p);
                    float y0 = Unsafe.Add(ref b0, p), y1 = Unsafe.Add(ref b1, p), y2 = Unsafe.Add(ref b2, p), y3 = Unsafe.Add(ref b3, p);
                    tile[0] += x0 * y0; tile[1] += x0 * y1; tile[2] += x0 * y2; tile[3] += x0 * y3;
                    tile[4] += x1 * y0; tile[5] += x1 * y1; tile[6] += x1 * y2; tile[7] += x1 * y3;
                    tile[8] += x2 * y0; tile[9] += x2 * y1; tile[10] += x2 * y2; tile[11] += x2 * y3;
                    tile[12] += x3 * y0; tile[13] += x3 * y1; tile[14] += x3 * y2; tile[15] += x3 * y3;
                }
            }
            else
            {
                for (int r = 0; r < rows; r++)
                    for (int s = 0; s < cols; s++)
                        tile[r * 4 + s] = Dot(ref Unsafe.Add(ref A, aOff + (i0 + r) * k), ref Unsafe.Add(ref B, bOff + (j0 + s) * k), k);
            }
            for (int r = 0; r < rows; r++)
            {
                int row = cOff + (i0 + r) * n + j0;
                for (int s = 0; s < cols; s++)
                    c[row + s] = accumulate ? c[row + s] + tile[r * 4 + s] : tile[r * 4 + s];
            }
        }
    }

    /// <summary>Σ x[i]·y[i] over spans of equal length (Vector lanes, then the tail).</summary>
    internal static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y) =>
        Dot(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y), Math.Min(x.Length, y.Length));

    private static float Dot(ref float x, ref float y, int k)
    {
        int w = Vector<float>.Count, p = 0;
        Vector<float> s = default;
        for (; p <= k - w; p += w) s = Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref x, (nuint)p), Vector.LoadUnsafe(ref y, (nuint)p), s);
        float r = Vector.Sum(s);
        for (; p < k; p++) r += Unsafe.Add(ref x, p) * Unsafe.Add(ref y, p);
        return r;
    }

    /// <summary>C (M,N) = A (M,K) · B (K,N).</summary>
    public static void MatMulAB(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, bool accumulate)
    {
        Check(a, aOff, (long)m * k, b, bOff, (long)k * n, c, cOff, (long)m * n);
        if (m == 0 || n == 0) return;
        if (PackedGemm.Supported && k > 0 && (long)m * n * k >= ParallelThreshold)
        {
            // B (K,N) is Bᵀ's transpose: pack its columns into panels and reuse the A·Bᵀ kernel.
            var packed = PackedMatrix.RentFromKN(b, bOff, k, n);
            try { PackedGemm.Run(a, aOff, packed, c, cOff, m, accumulate, null, 0); }
            finally { packed.Return(); }
            return;
        }
        if ((long)m * n * k < ParallelThreshold || m == 1) { for (int i = 0; i < m; i++) ABRow(a, aOff, b, bOff, c, cOff, n, k, i, accumulate); return; }
        Parallel.For(0, m, i => ABRow(a, aOff, b, bOff, c, cOff, n, k, i, accumulate));
    }

    // One row of C as a sum of scaled rows of B (axpy along the contiguous N axis).
    private static void ABRow(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int n, int k, int i, bool accumulate)
    {
        var crow = c.AsSpan(cOff + i * n, n);
        if (!accumulate) crow.Clear();
        for (int p = 0; p < k; p++)
        {
            float s = a[aOff + i * k + p];
            if (s == 0f) continue;
            Axpy(s, b.AsSpan(bOff + p * n, n), crow);
        }
    }

    /// <summary>C (M,N) = Aᵀ · B where A is (K,M) and B is (K,N): weight gradients dW = dYᵀ X.</summary>
    public static void MatMulAtB(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, bool accumulate)
    {
        Check(a, aOff, (long)k * m, b, bOff, (long)k * n, c, cOff, (long)m * n);
        if (m == 0 || n == 0) return;
        if (PackedGemm.Supported && k > 0 && (long)m * n * k >= ParallelThreshold)
        {
            if (TransposedRoutePays(m, n, k)) { AtBAsTransposed(a, aOff, b, bOff, c, cOff, m, n, k, accumulate); return; }
            // B (K,N) packed as above; the kernel reads A (K,M) in place, transposed.
            var packed = PackedMatrix.RentFromKN(b, bOff, k, n);
            try { PackedGemm.Run(a, aOff, packed, c, cOff, m, accumulate, null, 0, aTransposed: true); }
            finally { packed.Return(); }
            return;
        }
        if ((long)m * n * k < ParallelThreshold || m == 1) { for (int i = 0; i < m; i++) AtBRow(a, aOff, b, bOff, c, cOff, m, n, k, i, accumulate); return; }
        Parallel.For(0, m, i => AtBRow(a, aOff, b, bOff, c, cOff, m, n, k, i, accumulate));
    }

    // Aᵀ·B is computed as its transpose when that packs far fewer floats: A (K·M) instead of B (K·N), e.g. a narrow
    // layer's weight gradient dW (64, 768) = dYᵀ·X over 4,480 rows packed 3.4 M floats of X on every call. The route
    // costs two scalar transposes of C (M·N floats each), so the K·(N − M) floats it saves must be 4 times more (the
    // paper DiT's fc2 gradient, (768, 3072) over 560 rows, ran 20 % slower through it).
    private static bool TransposedRoutePays(int m, int n, int k) => n >= 2 * m && (long)k * (n - m) >= 4L * m * n;

    // C (M,N) (=|+=) Aᵀ·B as Cᵀ (N,M) = Bᵀ·A: A (K,M) packed, B (K,N) read in place as the transposed operand, into a
    // pooled Cᵀ that starts as C's transpose when accumulating. Each element's sum runs over K in the same order, K chunk
    // by K chunk added to the same starting value, so C gets the same bits as on the direct route.
    private static void AtBAsTransposed(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, bool accumulate)
    {
        var ct = ArrayPool<float>.Shared.Rent(m * n);
        var packed = PackedMatrix.RentFromKN(a, aOff, k, m);
        try
        {
            if (accumulate) TransposeInto(c, cOff, m, n, ct, 0);
            PackedGemm.Run(b, bOff, packed, ct, 0, n, accumulate, null, 0, aTransposed: true);
            TransposeInto(ct, 0, n, m, c, cOff);
        }
        finally
        {
            packed.Return();
            ArrayPool<float>.Shared.Return(ct);
        }
    }

    /// <summary>dst (cols, rows) at dstOff = src (rows, cols) at srcOff, in 32x32 blocks on the calling thread.</summary>
    internal static void TransposeInto(float[] src, int srcOff, int rows, int cols, float[] dst, int dstOff)
    {
        const int Block = 32;
        for (int r0 = 0; r0 < rows; r0 += Block)
            for (int c0 = 0; c0 < cols; c0 += Block)
            {
                int r1 = Math.Min(rows, r0 + Block), c1 = Math.Min(cols, c0 + Block);
                for (int r = r0; r < r1; r++)
                    for (int q = c0; q < c1; q++) dst[dstOff + q * rows + r] = src[srcOff + r * cols + q];
            }
    }

    private static void AtBRow(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, int i, bool accumulate)
    {
        var crow = c.AsSpan(cOff + i * n, n);
        if (!accumulate) crow.Clear();
        for (int p = 0; p < k; p++)
        {
            float s = a[aOff + p * m + i];
            if (s == 0f) continue;
            Axpy(s, b.AsSpan(bOff + p * n, n), crow);
        }
    }

    /// <summary>y += s · x over spans of equal length.</summary>
    public static void Axpy(float s, ReadOnlySpan<float> x, Span<float> y)
    {
        int w = Vector<float>.Count, j = 0, n = y.Length;
        var vs = new Vector<float>(s);
        ref float X = ref MemoryMarshal.GetReference(x);
        ref float Y = ref MemoryMarshal.GetReference(y);
        for (; j <= n - w; j += w)
            Vector.FusedMultiplyAdd(vs, Vector.LoadUnsafe(ref X, (nuint)j), Vector.LoadUnsafe(ref Y, (nuint)j)).StoreUnsafe(ref Y, (nuint)j);
        for (; j < n; j++) Unsafe.Add(ref Y, j) += s * Unsafe.Add(ref X, j);
    }

    internal static void Check(float[] a, int aOff, long aLen, float[] b, int bOff, long bLen, float[] c, int cOff, long cLen)
    {
        if (aOff < 0 || aOff + aLen > a.Length) throw new ArgumentException($"A: offset {aOff} + {aLen} elements exceeds its length {a.Length}");
        if (bOff < 0 || bOff + bLen > b.Length) throw new ArgumentException($"B: offset {bOff} + {bLen} elements exceeds its length {b.Length}");
        if (cOff < 0 || cOff + cLen > c.Length) throw new ArgumentException($"C: offset {cOff} + {cLen} elements exceeds its length {c.Length}");
    }
}
