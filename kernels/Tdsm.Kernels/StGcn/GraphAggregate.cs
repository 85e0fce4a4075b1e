using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels.StGcn;

/// <summary>Sizes of the partitioned graph aggregation: y (B,K,C,T,V), A and imp (K,V,V), o (B,C,T,V).</summary>
public struct GraphArgs
{
    public int B, K, C, T, V;
}

/// <summary>
/// Partitioned graph aggregation o[b,c,t,w] = Σ_k Σ_v y[b,k,c,t,v]·A'[k,v,w] with A' = A ⊙ imp
/// (edge importance). Rows are the C·T (c,t) pairs of one sample; a group of <see cref="Threads"/>
/// takes a tile of <see cref="RowsPerTile"/> rows, whose K·rows·V inputs are contiguous per k, stages
/// them and A' in shared memory, and runs every multiply-add out of shared memory (the first version,
/// one thread per output reading A, imp and y from global memory, took ~12 ms per call at C 64, T 300,
/// B 64 on the H100: 200 GFLOP/s). Forward and input gradient add in the same order as that version
/// (k then v; w), so they give its bits. Edge-importance gradient dimp[k,v,w] += A[k,v,w]·Σ_{b,c,t} y·dO
/// in deterministic stages: per (sample, split of its rows) a float64 partial (float32 within a tile),
/// then a fixed-order sum over the partials (<see cref="ImportanceReduce"/>).
/// </summary>
public static class GraphAggregate
{
    /// <summary>Threads per group of the tiled kernels.</summary>
    public const int Threads = 256;

    /// <summary>Most rows a tile takes (fewer when K·V is large: K·rows·V ≤ <see cref="MaxTile"/>).</summary>
    public const int RowsPerTile = 64;

    /// <summary>Floats of y staged per tile: K·rows·V (3·64·25 for the NTU graph).</summary>
    public const int MaxTile = 4800;

    /// <summary>Largest K·V·V the kernels hold in shared memory (the NTU graph: 3·25·25 = 1875).</summary>
    public const int MaxAdjacency = 2048;

    /// <summary>Partials of the importance gradient aimed for per call (a fixed count, so the bits do not depend on the card).</summary>
    public const int TargetPartials = 512;

    /// <summary>Rows per tile for K partitions of V joints: K·rows·V ≤ <see cref="MaxTile"/> and rows·V ≤ <see cref="MaxTile"/> / 3.</summary>
    public static int TileRows(int k, int v) => Math.Max(1, Math.Min(RowsPerTile, MaxTile / (Math.Max(k, 3) * v)));

    /// <summary>Whether the tiled kernels hold these sizes (K·V·V ≤ <see cref="MaxAdjacency"/>, one row of every partition in a tile).</summary>
    public static bool Fits(int k, int v) => k >= 1 && v >= 1 && (long)k * v * v <= MaxAdjacency && (long)Math.Max(k, 3) * v <= MaxTile;

    // sa[e] = A'[e] = A[e]·imp[e] for the K·V·V entries, by the group's threads.
    private static void StageAdjacency(ArrayView<float> sa, ArrayView<float> a, ArrayView<float> imp, GraphArgs p)
    {
        for (int e = Group.IdxX; e < p.K * p.V * p.V; e += Threads) sa[e] = a[e] * imp[e];
    }

    // dst[at + e] = src[from + e] for e < n, by the group's threads (contiguous, coalesced).
    private static void StageRun(ArrayView<float> dst, int at, ArrayView<float> src, long from, int n)
    {
        for (int e = Group.IdxX; e < n; e += Threads) dst[at + e] = src[from + e];
    }

    // The y tile [k][row][v] of sample bi's rows r0.. (n = rows·V floats per partition): K contiguous runs of y.
    private static void StageYTile(ArrayView<float> sy, ArrayView<float> y, GraphArgs p, int bi, int r0, int n)
    {
        for (int ki = 0; ki < p.K; ki++) StageRun(sy, ki * n, y, ((long)(bi * p.K + ki) * p.C * p.T + r0) * p.V, n);
    }

    /// <summary>
    /// Forward. Group g = (sample g / tiles, tile g % tiles) of <paramref name="rowsPerTile"/> rows; launch: grid B·tiles,
    /// group <see cref="Threads"/>. Thread e of the tile's rows·V outputs adds K·V products from shared memory.
    /// </summary>
    public static void Forward(ArrayView<float> y, ArrayView<float> a, ArrayView<float> imp, ArrayView<float> o, GraphArgs p, int rowsPerTile, int tiles)
    {
        var sa = SharedMemory.Allocate<float>(MaxAdjacency);   // A' [k][v][w]
        var sy = SharedMemory.Allocate<float>(MaxTile);        // y tile [k][row][v]
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / tiles, r0 = (g - bi * tiles) * rowsPerTile, rowsAll = p.C * p.T;
        int n = XMath.Min(rowsPerTile, rowsAll - r0) * p.V, vv = p.V * p.V;
        StageAdjacency(sa, a, imp, p);
        StageYTile(sy, y, p, bi, r0, n);
        Group.Barrier();
        long dst = ((long)bi * rowsAll + r0) * p.V;
        for (int e = tid; e < n; e += Threads)
        {
            int row = e / p.V, w = e - row * p.V;
            float acc = 0;
            for (int ki = 0; ki < p.K; ki++)
            {
                int yb = ki * n + row * p.V, ab = ki * vv + w;
                for (int vi = 0; vi < p.V; vi++) acc += sy[yb + vi] * sa[ab + vi * p.V];
            }
            o[dst + e] = acc;
        }
    }

    /// <summary>
    /// Input gradient dy[b,k,c,t,v] = Σ_w dO[b,c,t,w]·A'[k,v,w] (overwritten); tiles and launch as <see cref="Forward"/>.
    /// </summary>
    public static void InputGrad(ArrayView<float> dO, ArrayView<float> a, ArrayView<float> imp, ArrayView<float> dy, GraphArgs p, int rowsPerTile, int tiles)
    {
        var sa = SharedMemory.Allocate<float>(MaxAdjacency);   // A' [k][v][w]
        var sd = SharedMemory.Allocate<float>(MaxTile);        // dO tile [row][w]
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / tiles, r0 = (g - bi * tiles) * rowsPerTile, rowsAll = p.C * p.T;
        int n = XMath.Min(rowsPerTile, rowsAll - r0) * p.V, vv = p.V * p.V;
        StageAdjacency(sa, a, imp, p);
        StageRun(sd, 0, dO, ((long)bi * rowsAll + r0) * p.V, n);
        Group.Barrier();
        for (int ki = 0; ki < p.K; ki++)
        {
            long dst = ((long)(bi * p.K + ki) * rowsAll + r0) * p.V;
            for (int e = tid; e < n; e += Threads)
            {
                int row = e / p.V, vi = e - row * p.V;
                int ob = row * p.V, ab = ki * vv + vi * p.V;
                float acc = 0;
                for (int w = 0; w < p.V; w++) acc += sd[ob + w] * sa[ab + w];
                dy[dst + e] = acc;
            }
        }
    }

    /// <summary>
    /// Importance-gradient partials: group g = (sample g / splits, split g % splits) walks tiles
    /// [split·tilesPerSplit, ...) of its sample's rows; thread e of the K·V·V products sums y[k,row,v]·dO[row,w]
    /// over a tile in float32 and adds that to its float64 total in shared memory; part[g·K·V·V + e] = the total.
    /// Launch: grid B·splits, group <see cref="Threads"/>.
    /// </summary>
    public static void ImportancePartial(ArrayView<float> y, ArrayView<float> dO, ArrayView<double> part, GraphArgs p,
        int rowsPerTile, int tiles, int tilesPerSplit, int splits)
    {
        var sum = SharedMemory.Allocate<double>(MaxAdjacency);  // [k][v][w]
        var sy = SharedMemory.Allocate<float>(MaxTile);         // y tile [k][row][v]
        var sd = SharedMemory.Allocate<float>(MaxTile / 3);     // dO tile [row][w] (TileRows keeps rows·V ≤ MaxTile / 3)
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / splits, split = g - bi * splits, rowsAll = p.C * p.T, vv = p.V * p.V, kvv = p.K * vv;
        for (int e = tid; e < kvv; e += Threads) sum[e] = 0;
        int tileEnd = XMath.Min(tiles, (split + 1) * tilesPerSplit);
        for (int tile = split * tilesPerSplit; tile < tileEnd; tile++)
        {
            int r0 = tile * rowsPerTile, rows = XMath.Min(rowsPerTile, rowsAll - r0), n = rows * p.V;
            Group.Barrier();   // the previous tile's readers are done
            StageYTile(sy, y, p, bi, r0, n);
            StageRun(sd, 0, dO, ((long)bi * rowsAll + r0) * p.V, n);
            Group.Barrier();
            for (int e = tid; e < kvv; e += Threads)
            {
                int ki = e / vv, rest = e - ki * vv, vi = rest / p.V, w = rest - vi * p.V;
                int yb = ki * n + vi;
                float acc = 0;
                for (int row = 0; row < rows; row++) acc += sy[yb + row * p.V] * sd[row * p.V + w];
                sum[e] += acc;
            }
        }
        Group.Barrier();
        long dst = (long)g * kvv;
        for (int e = tid; e < kvv; e += Threads) part[dst + e] = sum[e];
    }

    /// <summary>
    /// Thread e = (k, v, w): dimp[e] += A[e]·Σ_r part[r, e] over <paramref name="rows"/> partial rows, as four
    /// interleaved sums (rows r ≡ 0..3 mod 4) added in a fixed order: four loads in flight per thread instead of one,
    /// for a grid of only K·V·V threads.
    /// </summary>
    public static void ImportanceReduce(Index1D e, ArrayView<double> part, ArrayView<float> a, ArrayView<float> dImp, int rows, int kvv)
    {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int r = 0;
        for (; r + 4 <= rows; r += 4)
        {
            long i = (long)r * kvv + e;
            s0 += part[i];
            s1 += part[i + kvv];
            s2 += part[i + 2 * kvv];
            s3 += part[i + 3 * kvv];
        }
        for (; r < rows; r++) s0 += part[(long)r * kvv + e];
        dImp[e] = (float)(dImp[e] + ((s0 + s1) + (s2 + s3)) * a[e]);
    }
}
