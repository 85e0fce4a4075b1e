using ILGPU;

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
/// Float32 SIMT GEMM: a 64×64 block tile, K-steps of 8 through shared memory, 256 threads each
/// owning a 4×4 register tile (rows ty+16i, columns tx+16j so stores coalesce). The inner
/// product loop is unrolled by hand, since ILGPU 1.5 does not unroll. Bounds are guarded on
/// every load and store, so any M, N, K works.
/// </summary>
public static class Gemm
{
    public const int Tile = 64;
    public const int KStep = 8;
    public const int Threads = 256;

    /// <summary>Kernel: launch with grid (ceil(N/64), ceil(M/64)) and group 256.</summary>
    public static void Kernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p)
    {
        var sa = SharedMemory.Allocate<float>(Tile * KStep); // [k][m]
        var sb = SharedMemory.Allocate<float>(Tile * KStep); // [k][n]
        int tid = Group.IdxX;
        int tx = tid % 16, ty = tid / 16;
        int row0 = Grid.IdxY * Tile, col0 = Grid.IdxX * Tile;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;

        for (int k0 = 0; k0 < p.K; k0 += KStep)
        {
            // Each thread stages two elements of each operand tile.
            for (int e = tid; e < Tile * KStep; e += Threads)
            {
                int m, kk;
                if (p.Layout == 2) { m = e % Tile; kk = e / Tile; }   // A (K,M): contiguous along m
                else { kk = e % KStep; m = e / KStep; }              // A (M,K): contiguous along k
                int gm = row0 + m, gk = k0 + kk;
                float va = 0;
                if (gm < p.M && gk < p.K) va = p.Layout == 2 ? a[(long)gk * p.M + gm] : a[(long)gm * p.K + gk];
                sa[kk * Tile + m] = va;

                int n;
                if (p.Layout == 0) { kk = e % KStep; n = e / KStep; } // B (N,K): contiguous along k
                else { n = e % Tile; kk = e / Tile; }                // B (K,N): contiguous along n
                int gn = col0 + n;
                gk = k0 + kk;
                float vb = 0;
                if (gn < p.N && gk < p.K) vb = p.Layout == 0 ? b[(long)gn * p.K + gk] : b[(long)gk * p.N + gn];
                sb[kk * Tile + n] = vb;
            }
            Group.Barrier();
            for (int kk = 0; kk < KStep; kk++)
            {
                int o = kk * Tile;
                float a0 = sa[o + ty], a1 = sa[o + ty + 16], a2 = sa[o + ty + 32], a3 = sa[o + ty + 48];
                float b0 = sb[o + tx], b1 = sb[o + tx + 16], b2 = sb[o + tx + 32], b3 = sb[o + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        Store(c, bias, p, row0 + ty, col0 + tx, c00, c01, c02, c03);
        Store(c, bias, p, row0 + ty + 16, col0 + tx, c10, c11, c12, c13);
        Store(c, bias, p, row0 + ty + 32, col0 + tx, c20, c21, c22, c23);
        Store(c, bias, p, row0 + ty + 48, col0 + tx, c30, c31, c32, c33);
    }

    private static void Store(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int row, int col, float v0, float v1, float v2, float v3)
    {
        if (row >= p.M) return;
        StoreOne(c, bias, p, row, col, v0);
        StoreOne(c, bias, p, row, col + 16, v1);
        StoreOne(c, bias, p, row, col + 32, v2);
        StoreOne(c, bias, p, row, col + 48, v3);
    }

    private static void StoreOne(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int row, int col, float v)
    {
        if (col >= p.N) return;
        long i = (long)row * p.N + col;
        if (p.HasBias != 0) v += bias[col];
        c[i] = p.Accumulate != 0 ? c[i] + v : v;
    }
}
