using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Tdsm.Kernels.StGcn;

/// <summary>Sizes of one temporal convolution (kt x 1 kernel, stride, zero padding on time); the 1x1 conv
/// (with temporal stride) is kt = 1, pad = 0, and the classifier is additionally T = V = 1.</summary>
public struct ConvArgs
{
    public int B, Cin, Cout, T, Tout, V, Kt, Stride, Pad;
    /// <summary>Weight gradient only: the GEMM's K (= B·Tout·V, the (b, to, v) positions) per grid-z split;
    /// split z covers [z·KSplit, (z+1)·KSplit). See <see cref="ConvGemm.PlanWeightGrad"/>.</summary>
    public int KSplit;
}

/// <summary>Block shape of a convolution launch.</summary>
public enum ConvTile
{
    /// <summary>128×128 blocks (the kernels without suffix).</summary>
    Square = 0,
    /// <summary>64×256 blocks (the "Wide" kernels): GEMMs with 64 rows (the 64-channel layers).</summary>
    Wide = 1,
}

/// <summary>How a weight gradient is launched: block shape, operands swapped (C = X·dYᵀ, stored transposed), K-splits.</summary>
public readonly record struct ConvWeightGradPlan(ConvTile Tile, bool Swapped, int Splits, int KSplit, int GridX, int GridY);

/// <summary>
/// The ST-GCN convolutions as implicit GEMMs on the fp32 SIMT GEMM's compute core (<see cref="Gemm"/>): 256 threads,
/// an 8×8 register tile per thread (two 4×4 quadrants), K-steps of 8 double-buffered through shared memory,
/// float4 fragment reads, one barrier per K-step, launch bounds (256, 2). Blocks are 128×128, or 64×256 (the
/// "Wide" kernels) where M is 64 (<see cref="TileFor"/>). The operands are gathered from the (B, C, T, V)
/// tensors while staging instead of from an im2col buffer. x is (B,Cin,T,V), w (Cout,Cin,kt), y (B,Cout,Tout,V),
/// Tout = (T + 2·pad − kt)/stride + 1.
/// <list type="bullet">
/// <item>Forward, grid z = b: y_b (Cout, Tout·V) = W (Cout, Cin·kt) · X_b[(ci,j), (to,v)] + bias, X_b = x[b,ci,to·s+j−pad,v].</item>
/// <item>Input gradient, grid z = (b, r): dx_b (Cin, T·V) = Wᵀ[(ci), (co,j)] · dY_b[(co,j), (t,v)] with dY_b = dy[b,co,(t+pad−j)/s,v]
/// where the division is exact and in range, else 0. A strided conv splits the frames by phase r = t mod s: frames of
/// phase r meet only the taps j ≡ r + pad (mod s), so each phase is a stride-1 product with about kt/s taps (no
/// multiplications by the zeros; frames no tap reaches get 0).</item>
/// <item>Weight gradient, grid z = split: part[z] (Cout, Cin·kt) = Σ over the split's (b, to, v) of dY · Xᵀ (K = B·Tout·V,
/// split at any k); <see cref="ReduceSplits"/> then adds the splits in order into dW (deterministic, no atomics).
/// With few output channels the operands swap (<see cref="WeightGradTWide"/>: C = X·dYᵀ, stored transposed).</item>
/// </list>
/// Staging: each thread owns one k of the K-step and TM/32 (A) or TN/32 (B) rows of the tile. The k → (ci, j),
/// (co, j) or (b, to, v) decomposition is tracked incrementally per K-step (no division in the loop), and a gathered
/// row's part of the address and its frame offset are computed once (<see cref="ConvColumn"/>), so a staged element
/// costs an add, a compare, two selects and a load (branch-free: an element outside the operand or in the zero padding
/// loads element 0 and is replaced by 0), so any size works; indices inside a tensor are 32-bit (the host checks the sizes).
/// The kernel bodies are generated with the GEMM's (ConvGemm.Kernel.g.cs, from gen/gen_gemm.py); the helpers they call are here.
/// </summary>
public static partial class ConvGemm
{
    /// <summary>Rows and columns of a square block.</summary>
    public const int Tile = 128;
    /// <summary>Rows and columns of a wide block.</summary>
    public const int WideRows = 64, WideCols = 256;
    /// <summary>K per shared-memory stage.</summary>
    public const int KStep = 8;
    /// <summary>Threads per group.</summary>
    public const int Threads = 256;
    /// <summary>Groups per SM the kernels are compiled for (ptxas caps registers at 128 per thread).</summary>
    public const int MinGroupsPerSM = 2;
    /// <summary>The launch bounds to load the GEMM kernels with.</summary>
    public static KernelSpecialization Specialization => new(Threads, MinGroupsPerSM);
    /// <summary>Groups that fill a 132-SM H100 / H200 (<see cref="Gemm.TargetGroups"/>).</summary>
    public const int TargetGroups = Gemm.TargetGroups;
    /// <summary>Least K per weight-gradient split; most splits (a one-block gradient fills the GPU with them);
    /// most floats of partial products (splits × Cout·Cin·kt, 64 MB).</summary>
    public const int MinSplitK = 1024, MaxSplits = TargetGroups, MaxPartials = 1 << 24;

    // Shared-memory row pitch (floats) of both staged tiles: the block's longer side + 4 keeps rows 16-byte aligned
    // for the float4 reads, and (pitch mod 32 = 4) shifts rows k and k+1 by 4 banks so the k-contiguous staging
    // stores (8 k × 4 rows per warp) hit 32 banks. Wide blocks keep their 64-row A tile at the 256-column pitch.
    internal const int Pitch = Tile + 4;
    internal const int TileFloats = KStep * Pitch;
    internal const int Stage = 2 * TileFloats;
    internal const int PitchWide = WideCols + 4;
    internal const int TileFloatsWide = KStep * PitchWide;
    internal const int StageWide = 2 * TileFloatsWide;

    /// <summary>The block shape for an (M, N) product: the one with the smaller padded area (square on a tie).</summary>
    public static ConvTile TileFor(long m, long n) =>
        Padded(m, WideRows) * Padded(n, WideCols) < Padded(m, Tile) * Padded(n, Tile) ? ConvTile.Wide : ConvTile.Square;

    /// <summary>Grid x (column blocks) and y (row blocks) of an (M, N) product.</summary>
    public static (int X, int Y) Blocks(ConvTile tile, long m, long n) => tile == ConvTile.Wide
        ? (checked((int)((n + WideCols - 1) / WideCols)), checked((int)((m + WideRows - 1) / WideRows)))
        : (checked((int)((n + Tile - 1) / Tile)), checked((int)((m + Tile - 1) / Tile)));

    private static long Padded(long x, int tile) => (x + tile - 1) / tile * tile;

    /// <summary>
    /// The launch of a weight gradient: block shape and orientation by the least padded area of C (Cout × Cin·kt
    /// or its transpose), then the K-split: the smallest count within 5% of the best modelled time
    /// ⌈blocks·s / <see cref="TargetGroups"/>⌉ / s, with K per split ≥ <see cref="MinSplitK"/> and at most
    /// <see cref="MaxPartials"/> partial-product floats.
    /// </summary>
    public static ConvWeightGradPlan PlanWeightGrad(ConvArgs p)
    {
        long m = p.Cout, n = (long)p.Cin * p.Kt, k = (long)p.B * p.Tout * p.V;
        var (tile, swapped) = (ConvTile.Square, false);
        long best = Padded(m, Tile) * Padded(n, Tile);
        if (Padded(m, WideRows) * Padded(n, WideCols) < best) { (tile, swapped) = (ConvTile.Wide, false); best = Padded(m, WideRows) * Padded(n, WideCols); }
        if (Padded(n, WideRows) * Padded(m, WideCols) < best) (tile, swapped) = (ConvTile.Wide, true);
        var (gx, gy) = swapped ? Blocks(tile, n, m) : Blocks(tile, m, n);
        long blocks = (long)gx * gy;
        var (splits, kPer) = Gemm.ChooseSplits(blocks, k, MostSplits(m, n, k)); // same K-step (8) and group target as the GEMM
        return new ConvWeightGradPlan(tile, swapped, splits, checked((int)kPer), gx, gy);
    }

    /// <summary>The most K-splits a weight gradient of C (m, n) summed over k may take: at most <see cref="MaxSplits"/>,
    /// K per split ≥ <see cref="MinSplitK"/> and at most <see cref="MaxPartials"/> partial-product floats (at least 1).</summary>
    public static int MostSplits(long m, long n, long k) => (int)Math.Max(1, Math.Min(Math.Min(MaxSplits, k / MinSplitK), MaxPartials / (m * n)));

    /// <summary>Thread e: dW[e] += Σ_z part[z, e].</summary>
    public static void ReduceSplits(Index1D e, ArrayView<float> part, ArrayView<float> dW, int splits, int size)
    {
        double s = 0;
        for (int z = 0; z < splits; z++) s += part[(long)z * size + e];
        dW[e] = (float)(dW[e] + s);
    }

    // The trackers carry their per-K-step increments as fields: computed once before the loop, they stay loop-carried
    // registers (ILGPU's code placement moved a plain local KStep / d into the loop, a division per K-step).

    /// <summary>k = Q·d + R, tracked per K-step: (ci, j) or (co, i) of a tap index. <paramref name="step"/> of
    /// <see cref="Start"/> is the kernel's K-step (8 here, 32 in <see cref="TensorCoreConv"/>).</summary>
    internal struct KDiv
    {
        public int Q, R, Dq, Dr;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static KDiv Start(int k, int d, int step = KStep)
        {
            KDiv r;
            r.Q = k / d;
            r.R = k - r.Q * d;
            r.Dq = step / d;
            r.Dr = step - r.Dq * d;
            return r;
        }

        /// <summary>k + the K-step (Dr &lt; d, so R wraps at most once).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static KDiv Advance(KDiv x, int d)
        {
            x.Q += x.Dq;
            x.R += x.Dr;
            if (x.R >= d) { x.R -= d; x.Q++; }
            return x;
        }
    }

    /// <summary>k = (B·Tout + To)·V + Vi, tracked per K-step (<paramref name="step"/> of <see cref="Start"/>, as
    /// for <see cref="KDiv"/>): the (b, to, v) of a weight gradient's k.</summary>
    internal struct KSample
    {
        public int B, To, Vi, Dq, Dr;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static KSample Start(int k, ConvArgs p, int step = KStep)
        {
            int lout = p.Tout * p.V;
            KSample s;
            s.B = k / lout;
            int l = k - s.B * lout;
            s.To = l / p.V;
            s.Vi = l - s.To * p.V;
            s.Dq = step / p.V;
            s.Dr = step - s.Dq * p.V;
            return s;
        }

        /// <summary>k + the K-step (loops only for Tout·V &lt; the K-step).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static KSample Advance(KSample s, ConvArgs p)
        {
            s.To += s.Dq;
            s.Vi += s.Dr;
            if (s.Vi >= p.V) { s.Vi -= p.V; s.To++; }
            while (s.To >= p.Tout) { s.To -= p.Tout; s.B++; }
            return s;
        }
    }

    /// <summary>A gathered row's fixed part: element (k, row) is src[kOff(k) + On] where Tn + tk(k) is a frame
    /// inside [0, lim), else 0. Rows past the operand get Tn = <see cref="Outside"/> (never inside).</summary>
    internal struct ConvColumn
    {
        public int Tn, On;
    }

    private const int Outside = -(1 << 30);

    /// <summary>Forward B column n = (to, v) of Tout·V: frame to·s − pad + j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ConvColumn ForwardColumn(int n, int nTotal, ConvArgs p)
    {
        int to = n / p.V, v = n - to * p.V;
        ConvColumn g;
        g.Tn = n < nTotal ? to * p.Stride - p.Pad : Outside;
        g.On = g.Tn * p.V + v;
        return g;
    }

    /// <summary>Input-gradient B column n = (t', v) of phase r's frames (see <see cref="InputGrad"/>): dY frame t' + cr − i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ConvColumn InputGradColumn(int n, int nTotal, int cr, ConvArgs p)
    {
        int t = n / p.V, v = n - t * p.V;
        ConvColumn g;
        g.Tn = n < nTotal ? t + cr : Outside;
        g.On = g.Tn * p.V + v;
        return g;
    }

    /// <summary>Offset in a dx row (T·V) of column n = (t', v) of phase r: frame s·t' + r; −1 for n ≥ nTotal.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int PhaseColumn(int n, int nTotal, int r, ConvArgs p)
    {
        int t = n / p.V;
        return n < nTotal ? n + ((p.Stride - 1) * t + r) * p.V : -1;
    }

    /// <summary>Weight-gradient X row n = (ci, j) of Cin·kt: frame to·s + j − pad of channel ci.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ConvColumn WeightGradColumn(int n, int nTotal, ConvArgs p)
    {
        int ci = n / p.Kt, j = n - ci * p.Kt;
        ConvColumn g;
        g.Tn = n < nTotal ? j - p.Pad : Outside;
        g.On = ci * p.T * p.V + (j - p.Pad) * p.V;
        return g;
    }

    /// <summary>src[kOff + g.On] if kv and frame g.Tn + tk lies in [0, lim), else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Gather(ArrayView<float> src, ConvColumn g, bool kv, int kOff, int tk, int lim) =>
        Load(src, kOff + g.On, kv && (uint)(g.Tn + tk) < (uint)lim);

    /// <summary>src[i] if ok, else 0. Branch-free: an element outside loads src[0] (the views are never empty) and
    /// is replaced by 0, so the staging is a select and a load per element instead of a guarded branch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Load(ArrayView<float> src, int i, bool ok)
    {
        float v = src[ok ? i : 0];
        return ok ? v : 0;
    }

    /// <summary>c[row·n + col .. +3] = v + bias inside (m, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreQuad(ArrayView<float> c, int m, int n, int row, int col, float bias, float v0, float v1, float v2, float v3)
    {
        if (row >= m) return;
        int i = row * n + col;
        if (col + 3 < n)
        {
            c[i] = v0 + bias; c[i + 1] = v1 + bias; c[i + 2] = v2 + bias; c[i + 3] = v3 + bias;
        }
        else
        {
            if (col < n) c[i] = v0 + bias;
            if (col + 1 < n) c[i + 1] = v1 + bias;
            if (col + 2 < n) c[i + 2] = v2 + bias;
        }
    }

    /// <summary>c[row·rowLength + o_j] = v_j for the columns inside (o_j ≥ 0), rows inside m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreQuadAt(ArrayView<float> c, int m, int rowLength, int row, int o0, int o1, int o2, int o3, float v0, float v1, float v2, float v3)
    {
        if (row >= m) return;
        int i = row * rowLength;
        if (o0 >= 0) c[i + o0] = v0;
        if (o1 >= 0) c[i + o1] = v1;
        if (o2 >= 0) c[i + o2] = v2;
        if (o3 >= 0) c[i + o3] = v3;
    }

    /// <summary>The transposed store of a swapped product C (m, n): c[(col + j)·m + row] = v_j inside (m, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreQuadT(ArrayView<float> c, int m, int n, int row, int col, float v0, float v1, float v2, float v3)
    {
        if (row >= m) return;
        int i = col * m + row;
        if (col < n) c[i] = v0;
        if (col + 1 < n) c[i + m] = v1;
        if (col + 2 < n) c[i + 2 * m] = v2;
        if (col + 3 < n) c[i + 3 * m] = v3;
    }
}
