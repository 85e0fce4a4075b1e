using ILGPU;
using ILGPU.Algorithms;
using Vec4 = Tdsm.Kernels.Gemm.Vec4;

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
/// them and A' in shared memory, and computes from shared memory into register tiles: a thread owns two
/// rows (r and r + 32) by four output columns, so each step of its sum is two scalar loads of y, one
/// 128-bit load of four A' columns (A' staged with rows padded to a multiple of 4) and eight multiply-adds.
/// The outputs go through shared memory to coalesced stores. (The first version, one thread per output
/// reading A, imp and y from global memory, took ~12 ms per call at C 64, T 300, B 64 on the H100; the
/// second, one output per thread from shared memory, issued ~17 instructions per multiply-add in the SASS.)
/// Forward and input gradient add in the same order as the first version (k then v; w), so they give its
/// bits. Edge-importance gradient dimp[k,v,w] += A[k,v,w]·Σ_{b,c,t} y·dO in deterministic stages: per
/// (sample, split of its rows) a float64 partial (float32 within a tile; a thread owns 4 v x 4 w of one k),
/// then a fixed-order sum over the partials (<see cref="ImportanceReduce"/>).
/// </summary>
public static class GraphAggregate
{
    /// <summary>Threads per group of the tiled kernels.</summary>
    public const int Threads = 256;

    /// <summary>Most rows a tile takes (fewer when K·V is large: K·rows·V ≤ <see cref="MaxTile"/>). At most 64: a thread
    /// owns rows r and r + 32 of a tile.</summary>
    public const int RowsPerTile = 64;

    /// <summary>Floats of y staged per tile: K·rows·V (3·64·25 for the NTU graph).</summary>
    public const int MaxTile = 4800;

    /// <summary>Largest K·V·Vp the kernels hold in shared memory, Vp = V rounded up to a multiple of 4 (A' with padded
    /// rows; the NTU graph: 3·25·28 = 2100).</summary>
    public const int MaxAdjacency = 2400;

    /// <summary>Partials of the importance gradient aimed for per call (a fixed count, so the bits do not depend on the card).</summary>
    public const int TargetPartials = 512;

    /// <summary>Rows per tile for K partitions of V joints: K·rows·V ≤ <see cref="MaxTile"/> and rows·V ≤ <see cref="MaxTile"/> / 3.</summary>
    public static int TileRows(int k, int v) => Math.Max(1, Math.Min(RowsPerTile, MaxTile / (Math.Max(k, 3) * v)));

    /// <summary>V rounded up to a multiple of 4: the padded row length of the staged adjacency.</summary>
    public static int Padded(int v) => (v + 3) & ~3;

    /// <summary>Whether the tiled kernels hold these sizes (K·V·Vp ≤ <see cref="MaxAdjacency"/>, one row of every partition in a tile).</summary>
    public static bool Fits(int k, int v) => k >= 1 && v >= 1 && (long)k * v * Padded(v) <= MaxAdjacency && (long)Math.Max(k, 3) * v <= MaxTile;

    // sa[(k·V + i)·vp + j] = A'[k, i, j] (transposed: A'[k, j, i]) for j < V, 0 for V ≤ j < vp: a warp per row (k, i),
    // its lanes along j, four rows per trip so that eight loads are in flight per lane (ILGPU does not unroll, and a
    // trip that loads and then stores waits out one latency each).
    private static void StageAdjacency(ArrayView<float> sa, ArrayView<float> a, ArrayView<float> imp, GraphArgs p, int vp, bool transposed)
    {
        const int Warps = Threads / 32;
        int lane = Group.IdxX & 31, kv = p.K * p.V;
        for (int r0 = Group.IdxX >> 5; r0 < kv; r0 += 4 * Warps)
        {
            for (int j = lane; j < vp; j += 32)
            {
                float v0 = AdjacencyEntry(a, imp, p, r0, j, transposed);
                float v1 = AdjacencyEntry(a, imp, p, r0 + Warps, j, transposed);
                float v2 = AdjacencyEntry(a, imp, p, r0 + 2 * Warps, j, transposed);
                float v3 = AdjacencyEntry(a, imp, p, r0 + 3 * Warps, j, transposed);
                sa[r0 * vp + j] = v0;
                if (r0 + Warps < kv) sa[(r0 + Warps) * vp + j] = v1;
                if (r0 + 2 * Warps < kv) sa[(r0 + 2 * Warps) * vp + j] = v2;
                if (r0 + 3 * Warps < kv) sa[(r0 + 3 * Warps) * vp + j] = v3;
            }
        }
    }

    // A'[k, i, j] = A·imp at row r = k·V + i (transposed: A'[k, j, i]); 0 for a padding column j ≥ V or a row past K·V.
    private static float AdjacencyEntry(ArrayView<float> a, ArrayView<float> imp, GraphArgs p, int r, int j, bool transposed)
    {
        if (j >= p.V || r >= p.K * p.V) return 0f;
        int ki = r / p.V, i = r - ki * p.V;
        int src = transposed ? (ki * p.V + j) * p.V + i : r * p.V + j;
        return a[src] * imp[src];
    }

    // dst[at + e] = src[from + e] for e < n, by the group's threads (contiguous, coalesced), four loads in flight per
    // thread before any store: a trip of one load and its store would wait out a memory latency per 256 floats.
    private static void StageRun(ArrayView<float> dst, int at, ArrayView<float> src, long from, int n)
    {
        int e = Group.IdxX, d = at + e;
        long s = from + e;
        for (; e < n; e += 4 * Threads)
        {
            bool b1 = e + Threads < n, b2 = e + 2 * Threads < n, b3 = e + 3 * Threads < n;
            float x0 = src[s];
            float x1 = b1 ? src[s + Threads] : 0f;
            float x2 = b2 ? src[s + 2 * Threads] : 0f;
            float x3 = b3 ? src[s + 3 * Threads] : 0f;
            dst[d] = x0;
            if (b1) dst[d + Threads] = x1;
            if (b2) dst[d + 2 * Threads] = x2;
            if (b3) dst[d + 3 * Threads] = x3;
            s += 4 * Threads; d += 4 * Threads;
        }
    }

    // dst[to + e] = src[at + e] for e < n (the output tile back to global memory, coalesced).
    private static void StoreRun(ArrayView<float> dst, long to, ArrayView<float> src, int at, int n)
    {
        for (int e = Group.IdxX; e < n; e += Threads) dst[to + e] = src[at + e];
    }

    // The y tile [k][row][v] of sample bi's rows r0.. (n = rows·V floats per partition): K contiguous runs of y.
    private static void StageYTile(ArrayView<float> sy, ArrayView<float> y, GraphArgs p, int bi, int r0, int n)
    {
        for (int ki = 0; ki < p.K; ki++) StageRun(sy, ki * n, y, ((long)(bi * p.K + ki) * p.C * p.T + r0) * p.V, n);
    }

    private static int Clamp(int i, int n) => i < n ? i : n - 1;

    // The two-row register tile's output: so[row·V + col + j] for the columns and rows that exist.
    private static void PutTile(ArrayView<float> so, int at, int v, int rows, int ra, int rb, int col, Vec4 a, Vec4 b)
    {
        if (ra < rows) PutRow(so, at + ra * v, v, col, a);
        if (rb < rows) PutRow(so, at + rb * v, v, col, b);
    }

    private static void PutRow(ArrayView<float> so, int at, int v, int col, Vec4 x)
    {
        if (col < v) so[at + col] = x.X;
        if (col + 1 < v) so[at + col + 1] = x.Y;
        if (col + 2 < v) so[at + col + 2] = x.Z;
        if (col + 3 < v) so[at + col + 3] = x.W;
    }

    private static Vec4 Axpy(Vec4 acc, float s, Vec4 x)
    {
        acc.X += s * x.X; acc.Y += s * x.Y; acc.Z += s * x.Z; acc.W += s * x.W;
        return acc;
    }

    /// <summary>
    /// Forward. Group g = (sample g / tiles, tile g % tiles) of <paramref name="rowsPerTile"/> rows; launch: grid B·tiles,
    /// group <see cref="Threads"/>. Task (r, q) = rows r, r + 32 by columns 4q..4q+3, each a sum of K·V products in order.
    /// </summary>
    public static void Forward(ArrayView<float> y, ArrayView<float> a, ArrayView<float> imp, ArrayView<float> o, GraphArgs p, int rowsPerTile, int tiles)
    {
        var sa4 = SharedMemory.Allocate<Vec4>(MaxAdjacency / 4);   // A' [k][v][w], rows of vp (16-byte aligned)
        var sy = SharedMemory.Allocate<float>(MaxTile);            // y tile [k][row][v]
        var so = SharedMemory.Allocate<float>(MaxTile / 3);        // o tile [row][w]
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / tiles, r0 = (g - bi * tiles) * rowsPerTile, rowsAll = p.C * p.T;
        int rows = XMath.Min(rowsPerTile, rowsAll - r0), n = rows * p.V, vp = Padded(p.V), wq = vp >> 2;
        StageAdjacency(sa4.Cast<float>(), a, imp, p, vp, transposed: false);
        StageYTile(sy, y, p, bi, r0, n);
        Group.Barrier();
        for (int task = tid; task < 32 * wq; task += Threads)
        {
            int ra = task & 31, rb = ra + 32, wg = task >> 5;
            // Indexes as phis advanced per step (ILGPU recomputes loop-invariant arithmetic at its uses inside a loop).
            int ia = Clamp(ra, rows) * p.V, ib = Clamp(rb, rows) * p.V, ja = wg;
            Vec4 accA = default, accB = default;
            for (int ki = 0; ki < p.K; ki++)
            {
                for (int vi = 0; vi < p.V; vi++)
                {
                    Vec4 w4 = sa4[ja];
                    accA = Axpy(accA, sy[ia], w4);
                    accB = Axpy(accB, sy[ib], w4);
                    ia++; ib++; ja += wq;
                }
                ia += n - p.V; ib += n - p.V;
            }
            PutTile(so, 0, p.V, rows, ra, rb, 4 * wg, accA, accB);
        }
        Group.Barrier();
        StoreRun(o, ((long)bi * rowsAll + r0) * p.V, so, 0, n);
    }

    /// <summary>
    /// Input gradient dy[b,k,c,t,v] = Σ_w dO[b,c,t,w]·A'[k,v,w] (overwritten); tiles and launch as <see cref="Forward"/>.
    /// Task (r, q) = rows r, r + 32 by joints 4q..4q+3, for each k a sum over w in order.
    /// </summary>
    public static void InputGrad(ArrayView<float> dO, ArrayView<float> a, ArrayView<float> imp, ArrayView<float> dy, GraphArgs p, int rowsPerTile, int tiles)
    {
        var sa4 = SharedMemory.Allocate<Vec4>(MaxAdjacency / 4);   // A'ᵀ [k][w][v], rows of vp (16-byte aligned)
        var sd = SharedMemory.Allocate<float>(MaxTile / 3);        // dO tile [row][w]
        var so = SharedMemory.Allocate<float>(MaxTile);            // dy tile [k][row][v]
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / tiles, r0 = (g - bi * tiles) * rowsPerTile, rowsAll = p.C * p.T;
        int rows = XMath.Min(rowsPerTile, rowsAll - r0), n = rows * p.V, vp = Padded(p.V), vq = vp >> 2;
        StageAdjacency(sa4.Cast<float>(), a, imp, p, vp, transposed: true);
        StageRun(sd, 0, dO, ((long)bi * rowsAll + r0) * p.V, n);
        Group.Barrier();
        for (int task = tid; task < 32 * vq; task += Threads)
        {
            int ra = task & 31, rb = ra + 32, vg = task >> 5;
            int ja = vg;
            for (int ki = 0; ki < p.K; ki++)
            {
                int ia = Clamp(ra, rows) * p.V, ib = Clamp(rb, rows) * p.V;
                Vec4 accA = default, accB = default;
                for (int w = 0; w < p.V; w++)
                {
                    Vec4 a4 = sa4[ja];
                    accA = Axpy(accA, sd[ia], a4);
                    accB = Axpy(accB, sd[ib], a4);
                    ia++; ib++; ja += vq;
                }
                PutTile(so, ki * n, p.V, rows, ra, rb, 4 * vg, accA, accB);
            }
        }
        Group.Barrier();
        for (int ki = 0; ki < p.K; ki++) StoreRun(dy, ((long)(bi * p.K + ki) * rowsAll + r0) * p.V, so, ki * n, n);
    }

    /// <summary>
    /// Importance-gradient partials: group g = (sample g / splits, split g % splits) walks tiles
    /// [split·tilesPerSplit, ...) of its sample's rows; task (k, 4 v, 4 w) sums y[k,row,v]·dO[row,w] over a tile in
    /// float32 (rows in order) and adds that to its float64 totals (in registers); part[g·K·V·V + (k·V + v)·V + w] = the
    /// totals. Launch: grid B·splits, group <see cref="Threads"/>.
    /// </summary>
    public static void ImportancePartial(ArrayView<float> y, ArrayView<float> dO, ArrayView<double> part, GraphArgs p,
        int rowsPerTile, int tiles, int tilesPerSplit, int splits)
    {
        var sy = SharedMemory.Allocate<float>(MaxTile);         // y tile [k][row][v]
        var sd = SharedMemory.Allocate<float>(MaxTile / 3);     // dO tile [row][w] (TileRows keeps rows·V ≤ MaxTile / 3)
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / splits, split = g - bi * splits, rowsAll = p.C * p.T, vv = p.V * p.V, q = Padded(p.V) >> 2;
        int tasks = p.K * q * q, tileEnd = XMath.Min(tiles, (split + 1) * tilesPerSplit);
        long dst = (long)g * p.K * vv;
        // Rounds of Threads tasks (one for the NTU graph: 3·7·7 = 147), every thread through every tile's barriers.
        for (int t0 = 0; t0 < tasks; t0 += Threads)
        {
            int task = t0 + tid;
            bool active = task < tasks;
            int wg = task % q, rest = task / q, vg = rest % q, ki = rest / q;
            // Columns past V read column V − 1 and are not stored.
            int v0 = Clamp(4 * vg, p.V), v1 = Clamp(4 * vg + 1, p.V), v2 = Clamp(4 * vg + 2, p.V), v3 = Clamp(4 * vg + 3, p.V);
            int w0 = Clamp(4 * wg, p.V), w1 = Clamp(4 * wg + 1, p.V), w2 = Clamp(4 * wg + 2, p.V), w3 = Clamp(4 * wg + 3, p.V);
            double t00 = 0, t01 = 0, t02 = 0, t03 = 0, t10 = 0, t11 = 0, t12 = 0, t13 = 0;
            double t20 = 0, t21 = 0, t22 = 0, t23 = 0, t30 = 0, t31 = 0, t32 = 0, t33 = 0;
            for (int tile = split * tilesPerSplit; tile < tileEnd; tile++)
            {
                int r0 = tile * rowsPerTile, rows = XMath.Min(rowsPerTile, rowsAll - r0), n = rows * p.V;
                Group.Barrier();   // the previous tile's readers are done
                StageYTile(sy, y, p, bi, r0, n);
                StageRun(sd, 0, dO, ((long)bi * rowsAll + r0) * p.V, n);
                Group.Barrier();
                if (!active) continue;
                Vec4 s0 = default, s1 = default, s2 = default, s3 = default;   // s_i = (v_i · w_j) for j = X..W
                int iy = ki * n, id = 0;
                for (int row = 0; row < rows; row++)
                {
                    var d4 = new Vec4 { X = sd[id + w0], Y = sd[id + w1], Z = sd[id + w2], W = sd[id + w3] };
                    s0 = Axpy(s0, sy[iy + v0], d4);
                    s1 = Axpy(s1, sy[iy + v1], d4);
                    s2 = Axpy(s2, sy[iy + v2], d4);
                    s3 = Axpy(s3, sy[iy + v3], d4);
                    iy += p.V; id += p.V;
                }
                t00 += s0.X; t01 += s0.Y; t02 += s0.Z; t03 += s0.W;
                t10 += s1.X; t11 += s1.Y; t12 += s1.Z; t13 += s1.W;
                t20 += s2.X; t21 += s2.Y; t22 += s2.Z; t23 += s2.W;
                t30 += s3.X; t31 += s3.Y; t32 += s3.Z; t33 += s3.W;
            }
            if (!active) continue;
            long at = dst + (long)ki * vv;
            PutPartialRow(part, at, p.V, 4 * vg, 4 * wg, t00, t01, t02, t03);
            PutPartialRow(part, at, p.V, 4 * vg + 1, 4 * wg, t10, t11, t12, t13);
            PutPartialRow(part, at, p.V, 4 * vg + 2, 4 * wg, t20, t21, t22, t23);
            PutPartialRow(part, at, p.V, 4 * vg + 3, 4 * wg, t30, t31, t32, t33);
        }
    }

    private static void PutPartialRow(ArrayView<double> part, long at, int v, int vi, int w, double x0, double x1, double x2, double x3)
    {
        if (vi >= v) return;
        long row = at + (long)vi * v;
        if (w < v) part[row + w] = x0;
        if (w + 1 < v) part[row + w + 1] = x1;
        if (w + 2 < v) part[row + w + 2] = x2;
        if (w + 3 < v) part[row + w + 3] = x3;
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
