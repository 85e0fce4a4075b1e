using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
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
/// takes a tile of <see cref="RowsPerTile"/> rows, stages them (K·rows rows of y, or rows of dO) and A' in shared
/// memory with every row padded from V to Vp = V rounded up to 4 (zeros in the padding, A' padded in both indexes), and
/// computes from shared memory into register tiles with 128-bit loads only: the forward's thread owns two rows (r and
/// r + 32) by four output columns and takes four joints v per step (two loads of y, four of A', 32 multiply-adds); the
/// input gradient the same with the roles of v and w swapped; the importance gradient's thread owns 4 v x 4 w of one k
/// and takes one row per step (one load of y, one of dO, 16 multiply-adds). The outputs go through shared memory to
/// coalesced stores. (The first version, one thread per output reading A, imp and y from global memory, took ~12 ms
/// per call at C 64, T 300, B 64 on the H100; the second, one output per thread from shared memory, issued ~17
/// instructions per multiply-add in the SASS; the third, rows staged unpadded, needed scalar loads of y: 21
/// instructions per 8 multiply-adds in the forward, 47 per 16 in the importance gradient.)
/// Forward and input gradient add in the same order as the first version (k then v; w), the padding adding exact zeros,
/// so they give its values. Edge-importance gradient dimp[k,v,w] += A[k,v,w]·Σ_{b,c,t} y·dO in deterministic stages: per
/// (sample, split of its rows) a float64 partial (float32 within a tile), then a fixed-order sum over the partials
/// (<see cref="ImportanceReduce"/>).
/// </summary>
public static class GraphAggregate
{
    /// <summary>Threads per group of the tiled kernels.</summary>
    public const int Threads = 256;

    /// <summary>Most rows a tile takes (fewer when K·Vp is large: K·rows·Vp ≤ <see cref="MaxTile"/>). At most 64: a thread
    /// owns rows r and r + 32 of a tile.</summary>
    public const int RowsPerTile = 64;

    /// <summary>Floats of y staged per tile: K·rows·Vp (3·64·28 for the NTU graph).</summary>
    public const int MaxTile = 5376;

    /// <summary>Largest K·Vp·Vp the kernels hold in shared memory, Vp = V rounded up to a multiple of 4 (A' padded in both
    /// indexes; the NTU graph: 3·28·28 = 2352).</summary>
    public const int MaxAdjacency = 2400;

    /// <summary>Partials of the importance gradient aimed for per call (a fixed count, so the bits do not depend on the card).</summary>
    public const int TargetPartials = 512;

    /// <summary>Rows per tile for K partitions of V joints: K·rows·Vp ≤ <see cref="MaxTile"/> and rows·Vp ≤ <see cref="MaxTile"/> / 3.</summary>
    public static int TileRows(int k, int v) => Math.Max(1, Math.Min(RowsPerTile, MaxTile / (Math.Max(k, 3) * Padded(v))));

    /// <summary>V rounded up to a multiple of 4: the padded row length of the staged tiles and adjacency.</summary>
    public static int Padded(int v) => (v + 3) & ~3;

    /// <summary>Whether the tiled kernels hold these sizes (K·Vp·Vp ≤ <see cref="MaxAdjacency"/>, one row of every partition in a tile).</summary>
    public static bool Fits(int k, int v) => k >= 1 && v >= 1 && (long)k * Padded(v) * Padded(v) <= MaxAdjacency && (long)Math.Max(k, 3) * Padded(v) <= MaxTile;

    /// <summary>
    /// Kernel, thread e over K·Vp·Vp: the padded adjacency A' = A ⊙ imp as the tiled kernels stage it, [k][v][w] for
    /// <see cref="Forward"/> or, with <paramref name="transposed"/> = 1, [k][w][v] for <see cref="InputGrad"/>, zeros in the
    /// padding. Once per call, so that each group copies it with 128-bit loads (<see cref="StageAdjacency"/>) instead of
    /// computing every entry (~45 instructions each, an integer division among them: ~40 % of a forward tile's instructions).
    /// </summary>
    public static void PaddedAdjacency(Index1D e, ArrayView<float> a, ArrayView<float> imp, ArrayView<float> padded, GraphArgs p, int transposed)
    {
        int vp = Padded(p.V), r = e / vp;
        padded[e] = AdjacencyEntry(a, imp, p, vp, r, e - r * vp, transposed != 0);
    }

    /// <summary>Floats of <see cref="PaddedAdjacency"/>'s output for K partitions of V joints.</summary>
    public static int PaddedAdjacencyLength(int k, int v) => k * Padded(v) * Padded(v);

    // sa4 ← PaddedAdjacency's output (K·Vp·Vp floats, 16-byte aligned).
    private static void StageAdjacency(ArrayView<Vec4> sa4, ArrayView<float> padded, GraphArgs p, int vp)
    {
        var src = padded.Cast<Vec4>().AsAligned(16);
        int quads = p.K * vp * vp >> 2;
        for (int e = Group.IdxX; e < quads; e += Threads) sa4[e] = src[e];
    }

    // A'[k, i, j] = A·imp at padded row r = k·vp + i (transposed: A'[k, j, i]); 0 in the padding (i or j ≥ V) or past K·vp.
    private static float AdjacencyEntry(ArrayView<float> a, ArrayView<float> imp, GraphArgs p, int vp, int r, int j, bool transposed)
    {
        int ki = r / vp, i = r - ki * vp;
        if (j >= p.V || i >= p.V || ki >= p.K) return 0f;
        int src = transposed ? (ki * p.V + j) * p.V + i : (ki * p.V + i) * p.V + j;
        return a[src] * imp[src];
    }

    // dst[at + r·vp + j] = src[from + r·V + j] for r < n rows, j < V, and 0 for V ≤ j < vp: a warp per row, its lanes
    // along j, eight rows per trip (eight loads in flight per lane before any store: a 64-row run of the tiles in one trip; with
    // four, the staging of a tile waited out twice as many load latencies).
    private static void StageRows(ArrayView<float> dst, int at, ArrayView<float> src, long from, int n, int v, int vp)
    {
        const int Warps = Threads / 32;
        int lane = Group.IdxX & 31, r0 = Group.IdxX >> 5;
        int d = at + r0 * vp;
        long s = from + (long)r0 * v;
        for (; r0 < n; r0 += 8 * Warps)
        {
            bool h1 = r0 + Warps < n, h2 = r0 + 2 * Warps < n, h3 = r0 + 3 * Warps < n, h4 = r0 + 4 * Warps < n;
            bool h5 = r0 + 5 * Warps < n, h6 = r0 + 6 * Warps < n, h7 = r0 + 7 * Warps < n;
            for (int j = lane; j < vp; j += 32)
            {
                bool inRow = j < v;
                float x0 = inRow ? src[s + j] : 0f;
                float x1 = inRow && h1 ? src[s + Warps * v + j] : 0f;
                float x2 = inRow && h2 ? src[s + 2 * Warps * v + j] : 0f;
                float x3 = inRow && h3 ? src[s + 3 * Warps * v + j] : 0f;
                float x4 = inRow && h4 ? src[s + 4 * Warps * v + j] : 0f;
                float x5 = inRow && h5 ? src[s + 5 * Warps * v + j] : 0f;
                float x6 = inRow && h6 ? src[s + 6 * Warps * v + j] : 0f;
                float x7 = inRow && h7 ? src[s + 7 * Warps * v + j] : 0f;
                dst[d + j] = x0;
                if (h1) dst[d + Warps * vp + j] = x1;
                if (h2) dst[d + 2 * Warps * vp + j] = x2;
                if (h3) dst[d + 3 * Warps * vp + j] = x3;
                if (h4) dst[d + 4 * Warps * vp + j] = x4;
                if (h5) dst[d + 5 * Warps * vp + j] = x5;
                if (h6) dst[d + 6 * Warps * vp + j] = x6;
                if (h7) dst[d + 7 * Warps * vp + j] = x7;
            }
            s += 8 * Warps * v; d += 8 * Warps * vp;
        }
    }

    // The padded y tile [k][row][vp] of sample bi's rows r0.. (rows rows per partition): K runs of y.
    private static void StageYTile(ArrayView<float> sy, ArrayView<float> y, GraphArgs p, int bi, int r0, int rows, int vp)
    {
        for (int ki = 0; ki < p.K; ki++) StageRows(sy, ki * rows * vp, y, ((long)(bi * p.K + ki) * p.C * p.T + r0) * p.V, rows, p.V, vp);
    }

    // dst[to + e] = src[at + e] for e < n (the output tile back to global memory, coalesced).
    private static void StoreRun(ArrayView<float> dst, long to, ArrayView<float> src, int at, int n)
    {
        for (int e = Group.IdxX; e < n; e += Threads) dst[to + e] = src[at + e];
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

    // acc += x.X·m0 + x.Y·m1 + x.Z·m2 + x.W·m3, one product after the other (four consecutive terms of a sum, in order).
    private static Vec4 Axpy4(Vec4 acc, Vec4 x, Vec4 m0, Vec4 m1, Vec4 m2, Vec4 m3) =>
        Axpy(Axpy(Axpy(Axpy(acc, x.X, m0), x.Y, m1), x.Z, m2), x.W, m3);

    /// <summary>
    /// Forward, with <paramref name="adjacency"/> <see cref="PaddedAdjacency"/>'s output (16-byte aligned).
    /// Group g = (sample g / tiles, tile g % tiles) of <paramref name="rowsPerTile"/> rows; launch: grid B·tiles,
    /// group <see cref="Threads"/>. Task (r, q) = rows r, r + 32 by columns 4q..4q+3, each a sum of K·V products in order
    /// (k, then v four at a time); a thread takes tasks tid and tid + 256 (32·Vp/4 ≤ 384 tasks: Vp ≤ 48).
    /// </summary>
    public static void Forward(ArrayView<float> y, ArrayView<float> adjacency, ArrayView<float> o, GraphArgs p, int rowsPerTile, int tiles)
    {
        var sa4 = SharedMemory.Allocate<Vec4>(MaxAdjacency / 4);   // A' [k][v][w], vp x vp per k
        var sy4 = SharedMemory.Allocate<Vec4>(MaxTile / 4);        // y tile [k][row][v] (pitch vp); then the o tile [row][w] (pitch V)
        var sy = sy4.Cast<float>();
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / tiles, r0 = (g - bi * tiles) * rowsPerTile, rowsAll = p.C * p.T;
        int rows = XMath.Min(rowsPerTile, rowsAll - r0), vp = Padded(p.V), wq = vp >> 2, tasks = 32 * wq;
        StageAdjacency(sa4, adjacency, p, vp);
        StageYTile(sy, y, p, bi, r0, rows, vp);
        Group.Barrier();
        Vec4 a0 = default, b0 = default, a1 = default, b1 = default;   // the thread's first and second task
        for (int task = tid; task < tasks; task += Threads)
        {
            int ra = task & 31, rb = ra + 32, wg = task >> 5;
            // Indexes as phis advanced per step (ILGPU recomputes loop-invariant arithmetic at its uses inside a loop).
            int ia = Clamp(ra, rows) * wq, ib = Clamp(rb, rows) * wq, ja = wg;
            Vec4 sumA = default, sumB = default;
            for (int ki = 0; ki < p.K; ki++)
            {
                for (int v4 = 0; v4 < wq; v4++)
                {
                    Vec4 m0 = sa4[ja], m1 = sa4[ja + wq], m2 = sa4[ja + 2 * wq], m3 = sa4[ja + 3 * wq];   // A' rows 4·v4..4·v4+3
                    sumA = Axpy4(sumA, sy4[ia], m0, m1, m2, m3);
                    sumB = Axpy4(sumB, sy4[ib], m0, m1, m2, m3);
                    ia++; ib++; ja += vp;
                }
                ia += (rows - 1) * wq; ib += (rows - 1) * wq;
            }
            if (task == tid) { a0 = sumA; b0 = sumB; }
            else { a1 = sumA; b1 = sumB; }
        }
        Group.Barrier();   // every read of the y tile is done: the o tile takes its place
        for (int task = tid; task < tasks; task += Threads)
        {
            bool first = task == tid;
            PutTile(sy, 0, p.V, rows, task & 31, (task & 31) + 32, 4 * (task >> 5), first ? a0 : a1, first ? b0 : b1);
        }
        Group.Barrier();
        StoreRun(o, ((long)bi * rowsAll + r0) * p.V, sy, 0, rows * p.V);
    }

    /// <summary>
    /// Input gradient dy[b,k,c,t,v] = Σ_w dO[b,c,t,w]·A'[k,v,w] (overwritten), with <paramref name="adjacencyT"/>
    /// <see cref="PaddedAdjacency"/>'s transposed output (16-byte aligned); tiles and launch as <see cref="Forward"/>.
    /// Task (r, q) = rows r, r + 32 by joints 4q..4q+3, for each k a sum over w in order (four at a time).
    /// </summary>
    public static void InputGrad(ArrayView<float> dO, ArrayView<float> adjacencyT, ArrayView<float> dy, GraphArgs p, int rowsPerTile, int tiles)
    {
        var sa4 = SharedMemory.Allocate<Vec4>(MaxAdjacency / 4);   // A'ᵀ [k][w][v], vp x vp per k
        var sd4 = SharedMemory.Allocate<Vec4>(MaxTile / 12);       // dO tile [row][w] (pitch vp; TileRows keeps rows·vp ≤ MaxTile / 3)
        var so = SharedMemory.Allocate<float>(MaxTile);            // dy tile [k][row][v] (pitch V)
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / tiles, r0 = (g - bi * tiles) * rowsPerTile, rowsAll = p.C * p.T;
        int rows = XMath.Min(rowsPerTile, rowsAll - r0), n = rows * p.V, vp = Padded(p.V), vq = vp >> 2;
        StageAdjacency(sa4, adjacencyT, p, vp);
        StageRows(sd4.Cast<float>(), 0, dO, ((long)bi * rowsAll + r0) * p.V, rows, p.V, vp);
        Group.Barrier();
        for (int task = tid; task < 32 * vq; task += Threads)
        {
            int ra = task & 31, rb = ra + 32, vg = task >> 5;
            int ja = vg, ia0 = Clamp(ra, rows) * vq, ib0 = Clamp(rb, rows) * vq;
            for (int ki = 0; ki < p.K; ki++)
            {
                int ia = ia0, ib = ib0;
                Vec4 accA = default, accB = default;
                for (int w4 = 0; w4 < vq; w4++)
                {
                    Vec4 m0 = sa4[ja], m1 = sa4[ja + vq], m2 = sa4[ja + 2 * vq], m3 = sa4[ja + 3 * vq];   // A'ᵀ rows w = 4·w4..4·w4+3
                    accA = Axpy4(accA, sd4[ia], m0, m1, m2, m3);
                    accB = Axpy4(accB, sd4[ib], m0, m1, m2, m3);
                    ia++; ib++; ja += vp;
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
        var sy4 = SharedMemory.Allocate<Vec4>(MaxTile / 4);    // y tile [k][row][v] (pitch vp)
        var sd4 = SharedMemory.Allocate<Vec4>(MaxTile / 12);   // dO tile [row][w] (pitch vp)
        var sy = sy4.Cast<float>();
        var sd = sd4.Cast<float>();
        int tid = Group.IdxX, g = Grid.IdxX;
        int bi = g / splits, split = g - bi * splits, rowsAll = p.C * p.T, vv = p.V * p.V, vp = Padded(p.V), q = vp >> 2;
        int tasks = p.K * q * q, tileEnd = XMath.Min(tiles, (split + 1) * tilesPerSplit);
        long dst = (long)g * p.K * vv;
        // Rounds of Threads tasks (one for the NTU graph: 3·7·7 = 147), every thread through every tile's barriers.
        for (int t0 = 0; t0 < tasks; t0 += Threads)
        {
            int task = t0 + tid;
            bool active = task < tasks;
            int wg = task % q, rest = task / q, vg = rest % q, ki = rest / q;
            double t00 = 0, t01 = 0, t02 = 0, t03 = 0, t10 = 0, t11 = 0, t12 = 0, t13 = 0;
            double t20 = 0, t21 = 0, t22 = 0, t23 = 0, t30 = 0, t31 = 0, t32 = 0, t33 = 0;
            for (int tile = split * tilesPerSplit; tile < tileEnd; tile++)
            {
                int r0 = tile * rowsPerTile, rows = XMath.Min(rowsPerTile, rowsAll - r0);
                Group.Barrier();   // the previous tile's readers are done
                StageYTile(sy, y, p, bi, r0, rows, vp);
                StageRows(sd, 0, dO, ((long)bi * rowsAll + r0) * p.V, rows, p.V, vp);
                Group.Barrier();
                if (!active) continue;
                Vec4 s0 = default, s1 = default, s2 = default, s3 = default;   // s_i = (v_i · w_j) for j = X..W
                int iy = ki * rows * q + vg, id = wg;
                for (int row = 0; row < rows; row++)
                {
                    Vec4 y4 = sy4[iy], d4 = sd4[id];
                    s0 = Axpy(s0, y4.X, d4);
                    s1 = Axpy(s1, y4.Y, d4);
                    s2 = Axpy(s2, y4.Z, d4);
                    s3 = Axpy(s3, y4.W, d4);
                    iy += q; id += q;
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
