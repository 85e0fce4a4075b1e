using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Tdsm.Kernels;

/// <summary>Which operands are transposed: C (M,N) = op(A) (M,K) · op(B) (K,N).</summary>
public enum GemmLayout
{
    /// <summary>A (M,K), B (N,K): the Linear forward y = x Wᵀ.</summary>
    ABt = 0,
    /// <summary>A (M,K), B (K,N): the Linear input gradient dx = dy W.</summary>
    AB = 1,
    /// <summary>A (K,M), B (K,N): the Linear weight gradient dW = dyᵀ x.</summary>
    AtB = 2,
}

/// <summary>Sizes and options of one GEMM launch (row-major operands, element offsets into their views).</summary>
public struct GemmArgs
{
    public int M, N, K;
    public int Layout;
    /// <summary>1: C += product; 0: C = product.</summary>
    public int Accumulate;
    /// <summary>1: add bias[n] (a view of length N) in the epilogue.</summary>
    public int HasBias;
}

/// <summary>
/// Float32 SIMT GEMM, C (M,N) (= or +=) op(A)·op(B) (+ bias[n]), any M, N, K, plain fp32 multiply-adds
/// (the parity path). A group of 256 threads computes a 128×128 block of C in K-steps of 8:
/// <list type="bullet">
/// <item>Each K-step's A tile (128×8) and B tile (8×128) are staged k-major in shared memory
/// (<c>[k][m]</c>, <c>[k][n]</c>, rows padded to 132 floats), whatever the operand layouts, so the inner
/// loop reads both fragments as contiguous float4s (ld.shared.v4). Two stages: while the block
/// multiplies one K-step, each thread already holds its 8 elements of the next one in registers
/// (loaded before the multiply, stored after it), one barrier per K-step.</item>
/// <item>Thread (ty, tx), both in 0..15, owns the 8×8 register tile rows ty·4+i and 64+ty·4+i, columns
/// tx·4+j and 64+tx·4+j: 4 float4 shared loads feed 64 FMAs. A warp spans 4 ty × 8 tx, so its fragment
/// loads touch 4 (A) and 8 (B) distinct float4s: one shared-memory wavefront each, no bank conflicts.</item>
/// <item>Global loads are scalar and coalesced: for an operand contiguous along k, 8 threads read the 8
/// k-values of one row (32 bytes, a sector); otherwise 32 threads read 32 consecutive rows of one k.
/// (128-bit global loads would need 16-byte aligned views, which sub-views do not guarantee; they would
/// save about 2% of the issued instructions.) Tiles inside M, N and K load unguarded; edge tiles guard
/// each element and read 0 outside.</item>
/// </list>
/// ILGPU 1.5 neither unrolls loops nor keeps loop-indexed arrays in registers, so the kernel body with
/// its 64 scalar accumulators and the unrolled K-step is generated (Gemm.Kernel.g.cs, from
/// gen/gen_gemm.py); this file holds the hand-written pieces it calls.
/// </summary>
public static partial class Gemm
{
    /// <summary>Rows and columns of C per group.</summary>
    public const int Tile = 128;
    /// <summary>K per shared-memory stage.</summary>
    public const int KStep = 8;
    /// <summary>Threads per group.</summary>
    public const int Threads = 256;
    /// <summary>Groups per SM the kernel is compiled for: ptxas caps registers at 65536 / (2·256) = 128 per thread.</summary>
    public const int MinGroupsPerSM = 2;

    /// <summary>The launch bounds to load <see cref="Kernel"/> with.</summary>
    public static KernelSpecialization Specialization => new(Threads, MinGroupsPerSM);

    // Shared-memory row pitch (floats) of both staged tiles: 128 + 4 keeps rows 16-byte aligned for the
    // float4 reads and, for the transposing stores (threads k, k+1, ... of one row), shifts rows k and k+1
    // by 4 banks so a warp's 32 stores hit 32 banks.
    internal const int Pitch = Tile + 4;
    internal const int TileFloats = KStep * Pitch;        // one operand tile
    internal const int Stage = 2 * TileFloats;            // A tile then B tile
    internal const int Rows = 32;                          // tile rows between a thread's 4 staged elements

    /// <summary>Four floats: a shared-memory fragment read as one 128-bit load, or one thread's staged elements.</summary>
    internal struct Vec4
    {
        public float X, Y, Z, W;
    }

    /// <summary>
    /// Where one thread stages its 4 elements of an operand tile: tile rows m + 32j (j = 0..3) at tile
    /// k index Kk. "Rows" are m for A and n for B; the operand is (rows, K) or (K, rows) row-major.
    /// </summary>
    internal struct Stager
    {
        /// <summary>Element index of (row0 + m, Kk) in the operand, for the first K-step.</summary>
        public long Base;
        /// <summary>Index step per k and per 32 rows.</summary>
        public long KStride, RowStep;
        public int Kk;
        /// <summary>Rows left in the operand from this thread's first row: element j exists if 32j &lt; RowsLeft.</summary>
        public int RowsLeft;
        /// <summary>Offset of element 0 inside a stage's tile (k-major, pitch <see cref="Pitch"/>).</summary>
        public int Smem;
    }

    /// <summary>
    /// The staging map of thread <paramref name="tid"/> for an operand of <paramref name="rows"/> rows whose
    /// block starts at <paramref name="row0"/>. Contiguous along k: 8 threads per row, 4 rows per warp (one
    /// 32-byte sector each); otherwise 32 consecutive rows of one k per warp.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Stager MakeStager(bool kContiguous, int tid, int row0, int rows, int k)
    {
        int kk = kContiguous ? tid % KStep : tid / Rows;
        int m = kContiguous ? tid / KStep : tid % Rows;
        long rowStride = kContiguous ? k : 1, kStride = kContiguous ? 1 : rows;
        Stager s;
        s.Base = (row0 + m) * rowStride + kk * kStride;
        s.KStride = kStride;
        s.RowStep = Rows * rowStride;
        s.Kk = kk;
        s.RowsLeft = rows - row0 - m;
        s.Smem = kk * Pitch + m;
        return s;
    }

    /// <summary>This thread's 4 elements of the K-step at <paramref name="k0"/>; <paramref name="full"/>: the tile lies inside the operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vec4 LoadTile(ArrayView<float> x, Stager s, int k0, int k, bool full)
    {
        long i = s.Base + k0 * s.KStride;
        Vec4 r;
        if (full)
        {
            r.X = x[i];
            r.Y = x[i + s.RowStep];
            r.Z = x[i + 2 * s.RowStep];
            r.W = x[i + 3 * s.RowStep];
        }
        else
        {
            r.X = 0; r.Y = 0; r.Z = 0; r.W = 0;
            if (k0 + s.Kk < k)
            {
                if (s.RowsLeft > 0) r.X = x[i];
                if (s.RowsLeft > Rows) r.Y = x[i + s.RowStep];
                if (s.RowsLeft > 2 * Rows) r.Z = x[i + 2 * s.RowStep];
                if (s.RowsLeft > 3 * Rows) r.W = x[i + 3 * s.RowStep];
            }
        }
        return r;
    }

    /// <summary>Stores a thread's 4 staged elements into the tile at <paramref name="tile"/> (a float offset in shared memory).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreTile(ArrayView<float> smem, int tile, Stager s, Vec4 v)
    {
        int o = tile + s.Smem;
        smem[o] = v.X;
        smem[o + Rows] = v.Y;
        smem[o + 2 * Rows] = v.Z;
        smem[o + 3 * Rows] = v.W;
    }

    /// <summary>bias[col .. col+3] (0 past N or without bias).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vec4 LoadBias(ArrayView<float> bias, GemmArgs p, int col)
    {
        Vec4 r;
        r.X = 0; r.Y = 0; r.Z = 0; r.W = 0;
        if (p.HasBias != 0)
        {
            if (col < p.N) r.X = bias[col];
            if (col + 1 < p.N) r.Y = bias[col + 1];
            if (col + 2 < p.N) r.Z = bias[col + 2];
            if (col + 3 < p.N) r.W = bias[col + 3];
        }
        return r;
    }

    /// <summary>C[row, col .. col+3] (= or +=) v + bias; <paramref name="full"/>: the block lies inside C, no guards.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreQuad(ArrayView<float> c, GemmArgs p, int row, int col, bool full, Vec4 bias, float v0, float v1, float v2, float v3)
    {
        if (!full && row >= p.M) return;
        long i = (long)row * p.N + col;
        v0 += bias.X; v1 += bias.Y; v2 += bias.Z; v3 += bias.W;
        if (full || col + 3 < p.N)
        {
            if (p.Accumulate != 0) { v0 += c[i]; v1 += c[i + 1]; v2 += c[i + 2]; v3 += c[i + 3]; }
            c[i] = v0; c[i + 1] = v1; c[i + 2] = v2; c[i + 3] = v3;
        }
        else
        {
            StoreOne(c, p, i, col, v0);
            StoreOne(c, p, i + 1, col + 1, v1);
            StoreOne(c, p, i + 2, col + 2, v2);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOne(ArrayView<float> c, GemmArgs p, long i, int col, float v)
    {
        if (col >= p.N) return;
        c[i] = p.Accumulate != 0 ? c[i] + v : v;
    }
}
