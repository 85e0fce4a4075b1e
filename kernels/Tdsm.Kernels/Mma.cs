using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Kernels;

// Tensor-core primitives of TensorCoreGemm: operand rounding, one warp-wide mma.sync, bf16 packing,
// and the ldmatrix loads of KernelLdMatrix, as inline PTX on CUDA and as exact C# emulations elsewhere (the CPU simulator). The emulations
// work on the same per-lane fragment registers as the hardware, fetching the other lanes'
// registers with warp shuffles by the PTX ISA layout ("Matrix Fragments for mma.m16n8k16 /
// m16n8k8"), so simulator tests check the fragment layouts the GPU uses.
// With g = lane/4, t = lane%4, the accumulator fragment of both shapes is
// d0,d1 = D[g][2t], D[g][2t+1] and d2,d3 = D[g+8][2t], D[g+8][2t+1].

/// <summary>
/// bfloat16 operands. ILGPU has no bf16 type, so values travel as packed <c>uint</c>s: two bf16 per
/// register, the lower-index element in the low 16 bits (the order the mma fragments use).
/// </summary>
public static class Bf16
{
    /// <summary>The bf16 bits of <paramref name="x"/>, rounded to nearest even (NaN stays NaN).</summary>
    public static uint Bits(float x)
    {
        uint u = Interop.FloatAsInt(x);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (u >> 16) | 0x40u; // quiet NaN
        return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    }

    /// <summary><paramref name="x"/> rounded to the nearest bf16 (ties to even), as a float.</summary>
    public static float Round(float x) => Interop.IntAsFloat(Bits(x) << 16);

    /// <summary>Packs bf16(<paramref name="lo"/>) into the low half and bf16(<paramref name="hi"/>) into the high half.</summary>
    public static uint Pack(float lo, float hi)
    {
        if (CudaAsm.IsSupported)
        {
            // cvt.rn.bf16x2.f32 d, a, b puts a in the upper half and b in the lower half.
            CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out uint d, hi, lo);
            return d;
        }
        return Bits(lo) | (Bits(hi) << 16);
    }

    /// <summary>A 16-byte chunk of four floats as its two bf16 words in one 64-bit value, the lower elements' word first: the
    /// layout <see cref="PackRows"/> gives them, for kernels that store a chunk's cast with one 64-bit store.</summary>
    internal static ulong PackChunk(Gemm.Vec4 v) => Pack(v.X, v.Y) | (ulong)Pack(v.Z, v.W) << 32;

    /// <summary>
    /// Packs fp32 rows into bf16 pairs for <see cref="TensorCoreGemm.KernelPacked"/> (nearest even), one thread per
    /// output word: src (rows, cols) row-major, cols even, to dst (rows, cols/2) with word j of row r = (src[r, 2j],
    /// src[r, 2j+1]), i.e. word i = (src[2i], src[2i+1]). Launch over dst.Length words. <see cref="PackRowsTransposed"/>
    /// packs the rows of srcᵀ.
    /// </summary>
    public static void PackRows(Index1D i, ArrayView<float> src, ArrayView<uint> dst) => dst[i] = Pack(src[2L * i], src[2L * i + 1]);

    /// <summary>Source rows per <see cref="PackRowsTransposed"/> tile.</summary>
    public const int TransposeTileRows = 64;
    /// <summary>Source columns per <see cref="PackRowsTransposed"/> tile.</summary>
    public const int TransposeTileCols = 32;
    /// <summary>Threads per <see cref="PackRowsTransposed"/> group (32 x 8).</summary>
    public const int TransposeThreads = 256;
    // Floats per shared tile row: one of padding keeps the column reads of the write phase spread over the banks.
    private const int TransposePitch = TransposeTileCols + 1;

    /// <summary>
    /// The packed rows of srcᵀ: src (rows, cols) row-major, rows even, to dst (cols, rows/2) with word j of row c =
    /// (src[2j, c], src[2j+1, c]) (the operands of the AB and AtB layouts, which run along K in columns). Through
    /// shared memory, so reads and writes are both coalesced: a group of 256 threads reads a tile of 64 src rows x 32
    /// src columns row by row and writes it as 32 dst rows of 32 words. With <paramref name="alsoRows"/> = 1 (cols even)
    /// the same tile is also written as src's packed rows into <paramref name="dstRows"/> (rows, cols/2), as
    /// <see cref="PackRows"/> would: one read of src for both operands of a Linear backward's products on dy.
    /// Launch: grid (ceil(rows/64), ceil(cols/32)), group 256.
    /// </summary>
    public static void PackRowsTransposed(ArrayView<float> src, ArrayView<uint> dst, ArrayView<uint> dstRows, int rows, int cols, int alsoRows)
    {
        // tile[r][c] = src[r0 + r, c0 + c]
        var tile = SharedMemory.Allocate<float>(TransposeTileRows * TransposePitch);
        int tx = Group.IdxX % 32, ty = Group.IdxX / 32;
        int r0 = Grid.IdxX * TransposeTileRows, c0 = Grid.IdxY * TransposeTileCols;
        for (int q = 0; q < TransposeTileRows / 8; q++)
        {
            int r = ty + 8 * q;
            tile[r * TransposePitch + tx] = r0 + r < rows && c0 + tx < cols ? src[(long)(r0 + r) * cols + c0 + tx] : 0f;
        }
        Group.Barrier();
        int half = rows >> 1;
        int word = r0 / 2 + tx;                              // dst column (word) within the dst row
        for (int q = 0; q < TransposeTileCols / 8; q++)
        {
            int c = ty + 8 * q;                              // dst row - c0
            if (c0 + c < cols && word < half)
                dst[(long)(c0 + c) * half + word] = Pack(tile[2 * tx * TransposePitch + c], tile[(2 * tx + 1) * TransposePitch + c]);
        }
        if (alsoRows == 0) return;
        // 64 rows x 16 words of the tile, 4 per thread: 16 consecutive words per src row.
        int rowWords = cols >> 1;
        for (int q = 0; q < TransposeTileRows * TransposeTileCols / 2 / TransposeThreads; q++)
        {
            int w = Group.IdxX + TransposeThreads * q, r = w / (TransposeTileCols / 2), j = w % (TransposeTileCols / 2);
            if (r0 + r < rows && c0 + 2 * j < cols)
                dstRows[(long)(r0 + r) * rowWords + c0 / 2 + j] = Pack(tile[r * TransposePitch + 2 * j], tile[r * TransposePitch + 2 * j + 1]);
        }
    }

    private static float Lo(uint v) => Interop.IntAsFloat(v << 16);
    private static float Hi(uint v) => Interop.IntAsFloat(v & 0xFFFF0000u);

    /// <summary>
    /// One warp-wide <c>mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32</c>: D (16×8) += A (16×16) · B (16×8).
    /// Call from all 32 lanes together. a0 = A[g][2t..2t+1], a1 = A[g+8][2t..2t+1],
    /// a2 = A[g][2t+8..2t+9], a3 = A[g+8][2t+8..2t+9]; b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g].
    /// </summary>
    public static void Mma(ref float d0, ref float d1, ref float d2, ref float d3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> r0 = d0, r1 = d1, r2 = d2, r3 = d3;
            Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
                ref r0, ref r1, ref r2, ref r3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
            d0 = r0.Value; d1 = r1.Value; d2 = r2.Value; d3 = r3.Value;
            return;
        }
        // Emulation: each register holds two consecutive k (bf16 pairs).
        MmaEmulation.Run(ref d0, ref d1, ref d2, ref d3, a0, a1, a2, a3, b0, b1, bf16Pairs: true);
    }

    /// <summary>lo(x)·lo(y) + hi(x)·hi(y) of two bf16 pairs, exact in float64 (the emulations).</summary>
    internal static double Dot(uint x, uint y) => (double)Lo(x) * Lo(y) + (double)Hi(x) * Hi(y);
}

/// <summary>
/// TensorFloat-32 operands: fp32 bit patterns whose low 13 mantissa bits the tensor cores ignore
/// (10 explicit mantissa bits remain), one value per register.
/// </summary>
public static class Tf32
{
    private const uint Mask = 0xFFFFE000u;

    /// <summary>The tf32 bits of <paramref name="x"/> (low 13 bits zero): nearest, ties away from zero, like <c>cvt.rna.tf32.f32</c>.</summary>
    public static uint Bits(float x)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("cvt.rna.tf32.f32 %0, %1;", out uint d, x);
            return d;
        }
        uint u = Interop.FloatAsInt(x);
        if ((u & 0x7F800000u) == 0x7F800000u) return u; // infinity, NaN
        return (u + 0x1000u) & Mask;
    }

    /// <summary><paramref name="x"/> rounded to tf32 (nearest, ties away from zero), as a float.</summary>
    public static float Round(float x) => Interop.IntAsFloat(Bits(x) & Mask);

    /// <summary>
    /// One warp-wide <c>mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32</c>: D (16×8) += A (16×8) · B (8×8).
    /// Call from all 32 lanes together. a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4];
    /// b0 = B[t][g], b1 = B[t+4][g].
    /// </summary>
    public static void Mma(ref float d0, ref float d1, ref float d2, ref float d3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> r0 = d0, r1 = d1, r2 = d2, r3 = d3;
            Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
                ref r0, ref r1, ref r2, ref r3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
            d0 = r0.Value; d1 = r1.Value; d2 = r2.Value; d3 = r3.Value;
            return;
        }
        // Emulation: one k per register.
        MmaEmulation.Run(ref d0, ref d1, ref d2, ref d3, a0, a1, a2, a3, b0, b1, bf16Pairs: false);
    }

    /// <summary>x·y of two tf32 values (their low 13 bits ignored, as the tensor cores do), exact in float64.</summary>
    internal static double Dot(uint x, uint y) => (double)Interop.IntAsFloat(x & Mask) * Interop.IntAsFloat(y & Mask);
}

/// <summary>
/// The simulator's emulation of one warp-wide mma (both shapes share the fragment layout by k groups):
/// rows g / g+8 of A come from lanes 4g+j, columns 2t / 2t+1 of B from lanes 8t+j / 8t+4+j (j = 0..3),
/// registers a0/a1 and b0 hold the first k group, a2/a3 and b1 the second (a k group being one bf16 pair,
/// or one tf32 value); the exact products are summed in float64.
/// </summary>
internal static class MmaEmulation
{
    public static void Run(ref float d0, ref float d1, ref float d2, ref float d3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, bool bf16Pairs)
    {
        int lane = Warp.LaneIdx;
        int g = lane >> 2, t = lane & 3;
        double s0 = d0, s1 = d1, s2 = d2, s3 = d3;
        for (int j = 0; j < 4; j++)
        {
            int srcA = 4 * g + j, srcB0 = 8 * t + j, srcB1 = 8 * t + 4 + j;
            uint ra = Warp.Shuffle(a0, srcA), rb = Warp.Shuffle(a1, srcA); // rows g, g+8; first k group
            uint rc = Warp.Shuffle(a2, srcA), rd = Warp.Shuffle(a3, srcA); // rows g, g+8; second k group
            uint p0 = Warp.Shuffle(b0, srcB0), p1 = Warp.Shuffle(b1, srcB0); // column 2t
            uint q0 = Warp.Shuffle(b0, srcB1), q1 = Warp.Shuffle(b1, srcB1); // column 2t+1
            s0 += Dot(ra, p0, bf16Pairs) + Dot(rc, p1, bf16Pairs);
            s1 += Dot(ra, q0, bf16Pairs) + Dot(rc, q1, bf16Pairs);
            s2 += Dot(rb, p0, bf16Pairs) + Dot(rd, p1, bf16Pairs);
            s3 += Dot(rb, q0, bf16Pairs) + Dot(rd, q1, bf16Pairs);
        }
        d0 = (float)s0; d1 = (float)s1; d2 = (float)s2; d3 = (float)s3;
    }

    private static double Dot(uint x, uint y, bool bf16Pairs) => bf16Pairs ? Bf16.Dot(x, y) : Tf32.Dot(x, y);
}

/// <summary>
/// A warp's 16 A-fragment registers (R[4·row tile + register]) of the tensor-core kernels' 4x4 mma tiles,
/// shuffled as one value by their simulator emulation (one gather per k group instead of one per register).
/// </summary>
internal struct Regs16
{
    public uint R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, R11, R12, R13, R14, R15;
}

/// <summary>A warp's 8 B-fragment registers (R[2·column tile + register]), as <see cref="Regs16"/>.</summary>
internal struct Regs8
{
    public uint R0, R1, R2, R3, R4, R5, R6, R7;
}

/// <summary>
/// Shared→fragment matrix loads (<c>ldmatrix</c>) for <see cref="TensorCoreGemm.KernelLdMatrix"/>, as inline PTX on CUDA
/// and as an exact emulation elsewhere. Shared addresses on CUDA are byte addresses in the shared window (from the
/// kernel's own <c>__shared_alloca0</c>, the name ILGPU 1.5 gives a kernel's first shared allocation), because ILGPU has
/// no way to take an address inside a kernel; the emulation turns them back into word indices of the same view. And the
/// cp.async copies of <see cref="TensorCoreGemm.KernelLdMatrixAsync"/>, which the emulation performs at once (the barrier
/// after the wait orders them as the hardware's would).
/// </summary>
internal static class AsyncCopy
{
    /// <summary>
    /// <c>cp.async.cg.shared.global</c> of 16 bytes: chunk <paramref name="srcChunk"/> of <paramref name="src"/> (whose device
    /// address is <paramref name="srcAddress"/>) to the shared window address <paramref name="dstAddress"/> (<paramref name="sharedBase"/>
    /// being that of <paramref name="shared"/>'s first chunk), or 16 zero bytes when <paramref name="valid"/> is false (source
    /// size 0; the source address then stays at the operand's start, which reads nothing). Lands after <see cref="WaitGroups"/>
    /// and a barrier.
    /// </summary>
    public static void Copy16(ArrayView<Chunk16> shared, uint dstAddress, uint sharedBase, ArrayView<Chunk16> src, uint srcChunk, long srcAddress, bool valid)
    {
        if (CudaAsm.IsSupported)
        {
            // srcChunk unsigned: one wide multiply-add (IMAD.WIDE.U32) makes the address; a signed index also needed its sign.
            long from = valid ? srcAddress + 16L * srcChunk : srcAddress;
            CudaAsm.Emit("{ .reg .u64 g; cvta.to.global.u64 g, %1; cp.async.cg.shared.global [%0], [g], 16, %2; }", dstAddress, from, valid ? 16u : 0u);
            return;
        }
        shared[(int)((dstAddress - sharedBase) >> 4)] = valid ? src[(long)srcChunk] : default;
    }

    /// <summary>Closes the group of copies this thread issued since the last commit (<c>cp.async.commit_group</c>).</summary>
    public static void Commit()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.commit_group;");
    }

    /// <summary>Waits until at most one of this thread's committed copy groups is in flight (<c>cp.async.wait_group 1</c>).</summary>
    public static void WaitGroups()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 1;");
    }

    /// <summary>Waits for all of this thread's copies (<c>cp.async.wait_group 0</c>).</summary>
    public static void WaitAll()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("cp.async.wait_group 0;");
    }

    /// <summary>
    /// <c>ldmatrix.sync.aligned.m8n8.x4.shared.b16</c>: four 8×8 b16 matrices, matrix m's 8 rows at the (16-byte)
    /// row addresses given by lanes 8m..8m+7 (<paramref name="address"/>: the lane's row start as a byte address in the
    /// shared window, <paramref name="sharedBase"/> being that of <paramref name="shared"/>'s first word; a kernel
    /// computes it once and offsets it by constants); lane l receives row l/4, columns 2(l%4) and 2(l%4)+1 of matrix m
    /// in R{m} (word l%4 of the row). Call from all 32 lanes together. The emulation turns the address back into a word
    /// index of <paramref name="shared"/>. Returns a value rather than filling out-parameters: ILGPU keeps a local whose
    /// address is taken in local memory, which ptxas then could not lift into registers.
    /// </summary>
    public static Fragments4 LoadMatrixX4At(ArrayView<uint> shared, uint address, uint sharedBase)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> x0 = default, x1 = default, x2 = default, x3 = default;
            Input<uint> at = address;
            CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];", ref x0, ref x1, ref x2, ref x3, ref at);
            return new Fragments4 { R0 = x0.Value, R1 = x1.Value, R2 = x2.Value, R3 = x3.Value };
        }
        int rowWord = (int)((address - sharedBase) >> 2), lane = Warp.LaneIdx, row = lane >> 2, word = lane & 3;
        return new Fragments4
        {
            R0 = shared[Warp.Shuffle(rowWord, row) + word],
            R1 = shared[Warp.Shuffle(rowWord, 8 + row) + word],
            R2 = shared[Warp.Shuffle(rowWord, 16 + row) + word],
            R3 = shared[Warp.Shuffle(rowWord, 24 + row) + word],
        };
    }
}

/// <summary>Two floats stored as one 64-bit word (the tensor-core epilogue's column pairs).</summary>
internal struct FloatPair(float x, float y)
{
    public float X = x, Y = y;
}

/// <summary>16 bytes (8 bf16) of a packed operand row: one 128-bit load or store of <see cref="TensorCoreGemm.KernelLdMatrix"/>'s staging.</summary>
internal struct Chunk16
{
#pragma warning disable CS0649 // copied whole (loads and stores of the struct), never field by field
    public uint X, Y, Z, W;
#pragma warning restore CS0649
}

/// <summary>The four registers one <see cref="AsyncCopy.LoadMatrixX4At"/> gives a lane (one per 8×8 matrix).</summary>
internal struct Fragments4
{
    public uint R0, R1, R2, R3;
}
