using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tdsm.Cpu;

/// <summary>
/// The Bᵀ operand of C = A·Bᵀ (B is (N,K) row-major, e.g. a Linear weight (Out,In)) repacked into
/// panels of <see cref="PackedGemm.NR"/> columns: panel j holds K rows of NR contiguous values
/// (Data[j·K·NR + p·NR + c] = B[j·NR + c, p], zero past N), so the micro-kernel streams it with
/// aligned vector loads.
/// </summary>
public sealed class PackedMatrix
{
    internal float[] Data { get; private set; }
    private bool _pooled;

    /// <summary>Columns of C (rows of B).</summary>
    public int N { get; private set; }

    /// <summary>The reduced dimension.</summary>
    public int K { get; private set; }

    internal int Panels => (N + PackedGemm.NR - 1) / PackedGemm.NR;

    private PackedMatrix(float[] data, int n, int k, bool pooled) { Data = data; N = n; K = k; _pooled = pooled; }

    /// <summary>Packs B (N,K) at <paramref name="offset"/> of <paramref name="b"/> into a new, owned buffer.</summary>
    public static PackedMatrix Pack(float[] b, int offset, int n, int k)
    {
        ArgumentNullException.ThrowIfNull(b);
        if (n <= 0 || k <= 0) throw new ArgumentException($"packed matrix needs positive sizes, got N={n}, K={k}");
        if (offset < 0 || offset + (long)n * k > b.Length) throw new ArgumentException($"B: offset {offset} + {n}x{k} exceeds its length {b.Length}");
        var p = new PackedMatrix(new float[checked((n + PackedGemm.NR - 1) / PackedGemm.NR * PackedGemm.NR * k)], n, k, false);
        Fill(p, b, offset);
        return p;
    }

    internal static PackedMatrix Rent(float[] b, int offset, int n, int k)
    {
        int len = (n + PackedGemm.NR - 1) / PackedGemm.NR * PackedGemm.NR * k;
        var p = new PackedMatrix(ArrayPool<float>.Shared.Rent(len), n, k, true);
        Fill(p, b, offset);
        return p;
    }

    /// <summary>Packs the transpose of B (K,N) row-major, i.e. the operand of C = A·B: panel j
    /// holds columns j·NR.. of B, which are contiguous runs of each of its K rows.</summary>
    internal static PackedMatrix RentFromKN(float[] b, int offset, int k, int n)
    {
        const int nr = PackedGemm.NR;
        int panels = (n + nr - 1) / nr;
        var p = new PackedMatrix(ArrayPool<float>.Shared.Rent(panels * nr * k), n, k, true);
        var job = new PackKNJob(p, b, offset);
        if ((long)n * k < 1 << 16) for (int j = 0; j < panels; j++) job.Run(j);
        else CpuParallel.For(panels, job);
        return p;
    }

    // One panel per index: NR columns of B (K,N), a contiguous run of each of its K rows.
    private sealed class PackKNJob(PackedMatrix p, float[] b, int offset) : IRangeWork
    {
        public unsafe void Run(int j)
        {
            const int nr = PackedGemm.NR;
            int k = p.K, n = p.N, cols = Math.Min(nr, n - j * nr);
            fixed (float* pd = p.Data, pb = b)
            {
                float* dst = pd + (long)j * k * nr, src = pb + offset + (long)j * nr;
                if (cols == nr)
                {
                    // Two vectors per row: a call per 16 floats (Array.Copy) would cost more than the copy.
                    for (int q = 0; q < k; q++, dst += nr, src += n)
                    {
                        Vector256.Store(Vector256.Load(src), dst);
                        Vector256.Store(Vector256.Load(src + 8), dst + 8);
                    }
                }
                else
                {
                    for (int q = 0; q < k; q++, dst += nr, src += n)
                        for (int c = 0; c < nr; c++) dst[c] = c < cols ? src[c] : 0f;
                }
            }
        }
    }

    internal void Return()
    {
        if (!_pooled) return;
        ArrayPool<float>.Shared.Return(Data);
        _pooled = false;
        Data = [];
    }

    private static void Fill(PackedMatrix p, float[] b, int offset)
    {
        var job = new PackJob(p, b, offset);
        if ((long)p.N * p.K < 1 << 16) for (int j = 0; j < p.Panels; j++) job.Run(j);
        else CpuParallel.For(p.Panels, job);
    }

    // One panel per index: reads NR rows of B side by side and writes the panel sequentially.
    private sealed class PackJob(PackedMatrix p, float[] b, int offset) : IRangeWork
    {
        public unsafe void Run(int j)
        {
            const int nr = PackedGemm.NR;
            int k = p.K, cols = Math.Min(nr, p.N - j * nr);
            fixed (float* pd = p.Data, pb = b)
            {
                float* dst = pd + (long)j * k * nr;
                float* src = pb + offset + (long)j * nr * k;
                if (cols == nr)
                {
                    for (int q = 0; q < k; q++, dst += nr)
                        for (int c = 0; c < nr; c++) dst[c] = src[(long)c * k + q];
                }
                else
                {
                    for (int q = 0; q < k; q++, dst += nr)
                        for (int c = 0; c < nr; c++) dst[c] = c < cols ? src[(long)c * k + q] : 0f;
                }
            }
        }
    }
}

/// <summary>
/// Cache-blocked GEMM C (M,N) (=|+=) A (M,K)·Bᵀ (+ bias) on a packed B: a 6x16 register tile
/// (12 Vector256 accumulators, the most that fit AVX2's 16 registers with the two B vectors and
/// the A broadcast), K split into chunks of KC so one B sub-panel (KC·16 floats = 16 KB) stays in
/// L1 while the rows of a row block (up to 192) stream past it, and (row block × panel group) tiles spread
/// over <see cref="CpuParallel"/>. A is (M,K) row-major, read in place (6 row streams), or stored transposed as
/// (K,M) row-major, so that weight gradients dW = dYᵀ·X need no transposed copy of dY: read in place (the 6 values of
/// a k step are adjacent), or, for tiles over many panels, copied one K chunk at a time into MR-row tiles.
/// </summary>
internal static class PackedGemm
{
    public const int MR = 6, NR = 16, KC = 256, MaxMC = 192;

    // Panels per tile from which a transposed A is copied into MR-row tiles (the copy costs about 1/panels of the
    // tile's multiply-adds).
    private const int PackTransposedPanels = 16;

    /// <summary>True where 256-bit SIMD is hardware accelerated.</summary>
    public static bool Supported => Vector256.IsHardwareAccelerated;

    [ThreadStatic] private static Job? _job;
    [ThreadStatic] private static float[]? _aTiles;

    private sealed class Job : IRangeWork
    {
        public float[] A = [], C = [];
        public float[]? Bias;
        public PackedMatrix B = null!;
        public int AOff, COff, BiasOff, M, Mc, RowBlocks, Groups, PanelsPerGroup;
        public bool Accumulate, ATransposed;

        public void Run(int index) => Tile(this, index / Groups, index % Groups);
    }

    /// <summary>C (M,N) (=|+=) A·Bᵀ (+ bias): A is (M,K) row-major, or (K,M) row-major with <paramref name="aTransposed"/>.</summary>
    public static void Run(float[] a, int aOff, PackedMatrix b, float[] c, int cOff, int m, bool accumulate, float[]? bias, int biasOff, bool aTransposed = false)
    {
        var job = _job ??= new Job();
        // Row blocks of at most MaxMC rows (an A block of 192·256 floats = 192 KB stays in L2), evened
        // out to a multiple of MR; fewer, taller blocks mean fewer passes over B.
        int rowBlocks = (m + MaxMC - 1) / MaxMC, panels = b.Panels, wantTiles = 4 * CpuParallel.Degree;
        bool small = (long)m * b.N * b.K < 1 << 16;
        // Enough tiles to keep every thread busy: split the columns further when there are few row blocks, and the
        // rows further when there are few columns too (N = 16, M = 144 was one tile: one thread). Tiles change
        // nothing in the sums, only who computes them.
        int wantGroups = small ? 1 : Math.Clamp((wantTiles + rowBlocks - 1) / rowBlocks, 1, panels);
        int perGroup = (panels + wantGroups - 1) / wantGroups, groups = (panels + perGroup - 1) / perGroup;
        if (!small && rowBlocks * groups < wantTiles) rowBlocks = Math.Min((m + MR - 1) / MR, (wantTiles + groups - 1) / groups);
        int mc = ((m + rowBlocks - 1) / rowBlocks + MR - 1) / MR * MR;
        rowBlocks = (m + mc - 1) / mc;
        job.A = a; job.AOff = aOff; job.B = b; job.C = c; job.COff = cOff; job.M = m; job.Accumulate = accumulate; job.ATransposed = aTransposed;
        job.Bias = bias; job.BiasOff = biasOff;
        job.Mc = mc; job.RowBlocks = rowBlocks; job.PanelsPerGroup = perGroup; job.Groups = groups;
        int tiles = rowBlocks * groups;
        if (small) for (int t = 0; t < tiles; t++) job.Run(t);
        else CpuParallel.For(tiles, job);
        job.A = job.C = []; job.Bias = null; job.B = null!;
    }

    private static unsafe void Tile(Job j, int rowBlock, int group)
    {
        int m = j.M, n = j.B.N, k = j.B.K;
        int i0 = rowBlock * j.Mc, i1 = Math.Min(m, i0 + j.Mc);
        int p0 = group * j.PanelsPerGroup, p1 = Math.Min(j.B.Panels, p0 + j.PanelsPerGroup);
        // A transposed ((K,M) in memory) is read in place, one cache line of A per k step, unless the tile covers
        // enough panels to repay a copy: then each K chunk of the row block first goes into the thread's buffer as
        // MR-row tiles with the MR values of a k step adjacent, which the kernel streams for every panel. (With large
        // M, consecutive k steps of A lie KBs apart and fall into few L1 sets: the in-place reads then miss L1.)
        var tiles = j.ATransposed && p1 - p0 >= PackTransposedPanels ? _aTiles ??= new float[MaxMC * KC] : null;
        fixed (float* pa = j.A, pb = j.B.Data, pc = j.C)
        fixed (float* pbias = j.Bias, pt = tiles)
        {
            // The kernel reads A(i + r, q0 + p) at aTile[r·rowStride + p·kStride].
            int rowStride = pt != null || j.ATransposed ? 1 : k, kStride = pt != null ? MR : j.ATransposed ? m : 1;
            for (int q0 = 0; q0 < k; q0 += KC)
            {
                int kc = Math.Min(KC, k - q0);
                bool add = j.Accumulate || q0 > 0;
                if (pt != null)
                {
                    // pt[(i - i0)·kc + p·MR + r] = A(i + r, q0 + p) for each tile row i (a multiple of MR from i0)
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = pa + j.AOff + (long)(q0 + p) * m;
                        for (int t = i0; t < i1; t += MR)
                        {
                            float* dst = pt + (long)(t - i0) * kc + p * MR;
                            for (int r = 0, rows = Math.Min(MR, i1 - t); r < rows; r++) dst[r] = src[t + r];
                        }
                    }
                }
                for (int panel = p0; panel < p1; panel++)
                {
                    int col = panel * NR, cols = Math.Min(NR, n - col);
                    float* bp = pb + (long)panel * k * NR + (long)q0 * NR;
                    float* biasPtr = q0 == 0 && pbias != null ? pbias + j.BiasOff + col : null;
                    for (int i = i0; i < i1; i += MR)
                    {
                        float* aTile = pt != null ? pt + (long)(i - i0) * kc : j.ATransposed ? pa + j.AOff + (long)q0 * m + i : pa + j.AOff + (long)i * k + q0;
                        Kernel(aTile, rowStride, kStride, bp, kc, pc + j.COff + (long)i * n + col, n, Math.Min(MR, i1 - i), cols, add, biasPtr);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Kernel(float* a, int rowStride, int kStride, float* b, int kc, float* c, int ldc, int rows, int cols, bool add, float* bias)
    {
        // Missing rows re-read the last real row; their results are not stored.
        float* a0 = a, a1 = a + (rows > 1 ? rowStride : 0), a2 = a + (rows > 2 ? 2 * rowStride : 0);
        float* a3 = a + (rows > 3 ? 3 * rowStride : 0), a4 = a + (rows > 4 ? 4 * rowStride : 0), a5 = a + (rows > 5 ? 5 * rowStride : 0);
        if (rows <= 1) { a1 = a2 = a3 = a4 = a5 = a0; }
        else if (rows == 2) { a2 = a3 = a4 = a5 = a1; }
        else if (rows == 3) { a3 = a4 = a5 = a2; }
        else if (rows == 4) { a4 = a5 = a3; }
        else if (rows == 5) { a5 = a4; }
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (long p = 0, end = (long)kc * kStride; p < end; p += kStride)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            b += NR;
            var x = Vector256.Create(a0[p]);
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[p]);
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[p]);
            c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[p]);
            c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[p]);
            c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[p]);
            c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
        }
        if (bias != null)
        {
            if (cols == NR)
            {
                var v0 = Vector256.Load(bias); var v1 = Vector256.Load(bias + 8);
                c00 += v0; c01 += v1; c10 += v0; c11 += v1; c20 += v0; c21 += v1;
                c30 += v0; c31 += v1; c40 += v0; c41 += v1; c50 += v0; c51 += v1;
            }
            else
            {
                float* t = stackalloc float[NR];
                for (int s = 0; s < NR; s++) t[s] = s < cols ? bias[s] : 0f;
                var v0 = Vector256.Load(t); var v1 = Vector256.Load(t + 8);
                c00 += v0; c01 += v1; c10 += v0; c11 += v1; c20 += v0; c21 += v1;
                c30 += v0; c31 += v1; c40 += v0; c41 += v1; c50 += v0; c51 += v1;
            }
        }
        Store(c, c00, c01, cols, add);
        if (rows > 1) Store(c + ldc, c10, c11, cols, add);
        if (rows > 2) Store(c + 2 * ldc, c20, c21, cols, add);
        if (rows > 3) Store(c + 3 * ldc, c30, c31, cols, add);
        if (rows > 4) Store(c + 4 * ldc, c40, c41, cols, add);
        if (rows > 5) Store(c + 5 * ldc, c50, c51, cols, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(float* c, Vector256<float> v0, Vector256<float> v1, int cols, bool add)
    {
        if (cols == NR)
        {
            if (add) { v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8); }
            Vector256.Store(v0, c);
            Vector256.Store(v1, c + 8);
            return;
        }
        float* t = stackalloc float[NR];
        Vector256.Store(v0, t);
        Vector256.Store(v1, t + 8);
        for (int s = 0; s < cols; s++) c[s] = add ? c[s] + t[s] : t[s];
    }
}
