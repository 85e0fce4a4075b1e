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
    /// <summary>0: one group per C block covers all of K. Otherwise the K per grid-z split (a multiple of
    /// <see cref="Gemm.KStep"/>): group z writes its partial product to c[z·M·N ..] (launch it with Accumulate = HasBias = 0)
    /// and <see cref="Gemm.ReduceSplits"/> finishes C. See <see cref="Gemm.SplitK"/>.</summary>
    public int KSplit;
    /// <summary>1: C = GELU_tanh(product + bias), the MLP's first Linear without its pre-activation (forward-only
    /// inference); the same float32 operations as <see cref="Activations.GeluForward"/> on the stored sum. Not with Accumulate.</summary>
    public int Gelu;
    /// <summary>1: C = product ⊙ GELU_tanh'(aux) with aux (M, N) passed in the bias slot: the MLP's backward
    /// ∂pre = (dy·W) ⊙ GELU'(pre) in the dx GEMM's epilogue. No bias; not with Accumulate or Gelu.</summary>
    public int GeluGrad;
    /// <summary>1: C is written as bf16 pairs, the packed A operand of a following product (<see cref="TensorCoreGemm.KernelPacked"/>):
    /// c viewed as (M, N/2) uint words, N even; after the bias and GELU. The packed-operand kernels only (KernelPacked,
    /// KernelLdMatrix); not with Accumulate or GeluGrad.</summary>
    public int PackedOut;
    /// <summary>1: c starts on an 8-byte boundary (the host checks), so the tensor-core kernels may store a block that lies
    /// inside C as 64-bit pairs of columns when N is even and no other epilogue option is set.</summary>
    public int PairStores;
}

/// <summary>
/// Float32 SIMT GEMM, C (M,N) (= or +=) op(A)·op(B) (+ bias[n]), any M, N, K, plain fp32 multiply-adds
/// (the parity path). A group of 256 threads computes a 128×128 block of C in K-steps of 8:
/// <list type="bullet">
/// <item>Each K-step's A tile (128×8) and B tile (8×128) are staged k-major in shared memory
/// (<c>[k][m]</c>, <c>[k][n]</c>, rows padded to 132 floats), whatever the operand layouts, so the inner
/// loop reads both fragments as contiguous float4s (ld.shared.v4). Two stages: while the block
/// multiplies one K-step, each thread loads its 8 elements of the next one into registers, stored into
/// the other stage at the top of the next iteration; one barrier per K-step.</item>
/// <item>Thread (ty, tx), both in 0..15, owns the 8×8 register tile rows ty·4+i and 64+ty·4+i, columns
/// tx·4+j and 64+tx·4+j: 4 float4 shared loads feed 64 FMAs. A warp spans 4 ty × 8 tx, so its fragment
/// loads touch 4 (A) and 8 (B) distinct float4s: one shared-memory wavefront each, no bank conflicts.</item>
/// <item>Global loads are scalar and coalesced: for an operand contiguous along k, 8 threads read the 8
/// k-values of one row (32 bytes, a sector); otherwise 32 threads read 32 consecutive rows of one k.
/// <see cref="KernelVecABt"/> (x·Wᵀ, both operands on 16-byte boundaries, K a multiple of 4: the host checks, as sub-views
/// need not be) loads the same sectors as one 128-bit load of four k per thread and operand (ptxas 11.8, sm_90: 636
/// instructions per K-step of 512 FFMA instead of 661). Tiles inside M, N and K load unguarded; edge tiles guard
/// each element and read 0 outside. Indexes are 32-bit (operands of at most <see cref="MaxOperandElements"/>):
/// with 64-bit ones, address arithmetic was ~60 of the ~260 instructions a K-step issued besides its 512 FFMAs.</item>
/// <item>Shapes with too few 128×128 blocks to fill the GPU but a long K (the weight gradients: K = rows)
/// split K over grid z into a workspace, summed in split order by <see cref="ReduceSplits"/> (deterministic,
/// no atomics); <see cref="SplitK"/> picks the split.</item>
/// </list>
/// ILGPU 1.5 neither unrolls loops nor keeps loop-indexed arrays in registers, so the kernel body with
/// its 64 scalar accumulators and the 8×8 outer product of one k is generated (Gemm.Kernel.g.cs, from
/// gen/gen_gemm.py); this file holds the hand-written pieces it calls. The K loop is one loop over trips of two k
/// (four per K-step), the K-step's staging in the first trip of each: ILGPU's code placement (O2) moves arithmetic
/// next to its use and groups it by use chain, which turned a fully unrolled K-step into 64 accumulator chains with
/// all 128 fragment floats of the K-step live at once (read from its PTX); a trip of two k keeps 32 live, its eight
/// fragments read from one base per operand and trip (offsets as immediates). As two nested loops (K-steps, then
/// trips) the accumulators were carried through both, and ptxas 11.8 moved 24 of them out of and back into the
/// fragment registers at every K-step: 692 instructions per K-step of 512 FFMA on sm_90, 661 as one loop.
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

    /// <summary>Groups that fill the GPU: <see cref="MinGroupsPerSM"/> per SM on a 132-SM H100 / H200. A fixed
    /// number rather than the device's, so a shape splits (and rounds) the same way on every machine.</summary>
    public const int TargetGroups = MinGroupsPerSM * 132;
    /// <summary>Least K per split: below it the extra pass over the partial products costs more than the idle SMs. 256 since
    /// stop 29 (was 512): the skeleton stream's products (M = 512 rows in training, 1,920 in scoring) have K = 768 and 24-90
    /// blocks for the GPU's 264 slots, which only splits of 384 or 256 spread over the SMs.</summary>
    public const int MinSplitK = 256;
    /// <summary>With <c>splitFullShapes</c> (<see cref="SplitK"/>), the most a split may leave of the unsplit time, in waves, for a
    /// shape whose blocks already fill the GPU: the partial products' extra pass has to be paid from the idle last wave.</summary>
    public const double FullShapeSplitGain = 0.85;
    /// <summary>Most K-splits.</summary>
    public const int MaxSplits = 16;

    /// <summary>
    /// The K-split of an (M,N,K) product: (1, 0) when K is short or, unless <paramref name="splitFullShapes"/>, when the C
    /// blocks alone fill <see cref="TargetGroups"/>; otherwise the split count s ≥ 2 and the K per split (a multiple of
    /// <paramref name="kStep"/>, the kernel's K-step, <see cref="KStep"/> here and <see cref="TensorCoreGemm.KStep"/> for the
    /// tensor-core GEMMs, which have the same 128x128 blocks; the last split takes the rest). The time is modelled as waves
    /// of groups × work per group, ⌈blocks·s / TargetGroups⌉ / s; s is the smallest count within 5% of the best (fewer splits,
    /// less partial-product traffic). With <paramref name="splitFullShapes"/> (the fp32 SIMT kernel, whose products take long
    /// next to the pass over the partials) a shape that fills the GPU splits too where that model gives at most
    /// <see cref="FullShapeSplitGain"/> of its unsplit time: a mostly idle last wave, e.g. 270 blocks (1,920 x 2,304).
    /// </summary>
    public static (int Splits, int KPerSplit) SplitK(int m, int n, int k, int kStep = KStep, bool splitFullShapes = false)
    {
        long blocks = (long)((m + Tile - 1) / Tile) * ((n + Tile - 1) / Tile);
        int most = Math.Min(MaxSplits, k / MinSplitK);
        if ((blocks >= TargetGroups && !splitFullShapes) || most < 2) return (1, 0);
        var (splits, kPer) = ChooseSplits(blocks, k, most, kStep);
        if (splits < 2) return (1, 0);
        if (blocks >= TargetGroups && WaveTime(blocks, splits) > FullShapeSplitGain * WaveTime(blocks, 1)) return (1, 0);
        return (splits, (int)kPer);
    }

    // The wave model: waves of TargetGroups groups, each split a 1/s of the work.
    private static double WaveTime(long blocks, int s) => (double)((blocks * s + TargetGroups - 1) / TargetGroups) / s;

    /// <summary>
    /// The wave model shared by the GEMM and the convolutions' weight gradients: for <paramref name="blocks"/> C blocks,
    /// the smallest split count s ≤ <paramref name="most"/> within 5% of the best ⌈blocks·s / TargetGroups⌉ / s, and
    /// the K per split rounded up to <paramref name="kStep"/> (the kernel's K-step); the split count is then what that
    /// K per split needs.
    /// </summary>
    public static (int Splits, long KPerSplit) ChooseSplits(long blocks, long k, int most, int kStep = KStep)
    {
        double best = double.MaxValue;
        for (int s = 1; s <= most; s++) best = Math.Min(best, WaveTime(blocks, s));
        int splits = 1;
        while (WaveTime(blocks, splits) > 1.05 * best) splits++;
        long kPer = ((k + splits - 1) / splits + kStep - 1) / kStep * kStep;
        return ((int)((k + kPer - 1) / kPer), kPer);
    }

    /// <summary>Kernel, thread e over M·N: C[e] (= or +=) Σ_z part[z·M·N + e] in z order (+ bias[e mod N]).
    /// part is (splits, M, N), the split kernel's output.</summary>
    public static void ReduceSplits(Index1D e, ArrayView<float> part, ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int splits)
    {
        long mn = (long)p.M * p.N;
        float s = 0;
        for (int z = 0; z < splits; z++) s += part[z * mn + e];
        if (p.HasBias != 0) s += bias[e % p.N];
        if (p.Gelu != 0) s = Activations.Gelu(s);
        if (p.GeluGrad != 0) s *= Activations.GeluDerivative(bias[e]);
        c[e] = p.Accumulate != 0 ? c[e] + s : s;
    }

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
        /// <summary>Element index of (row0 + m, kBegin + Kk) in the operand: this thread's element of the first K-step.</summary>
        public int Base;
        /// <summary>Index step per k (1 or the operand's rows).</summary>
        public int KStride;
        /// <summary>Index step per 32 rows.</summary>
        public int RowStep;
        public int Kk;
        /// <summary>Rows left in the operand from this thread's first row: element j exists if 32j &lt; RowsLeft.</summary>
        public int RowsLeft;
        /// <summary>Offset of element 0 inside a stage's tile (k-major, pitch <see cref="Pitch"/>).</summary>
        public int Smem;
    }

    /// <summary>Most elements an operand of <see cref="Kernel"/> may have: the staging indexes in 32 bits (an IMAD per load
    /// instead of the 64-bit arithmetic that was about a fifth of what a K-step issued besides its FFMAs).</summary>
    public const long MaxOperandElements = int.MaxValue;

    /// <summary>
    /// The staging map of thread <paramref name="tid"/> for an operand of <paramref name="rows"/> rows whose
    /// block starts at <paramref name="row0"/>. Contiguous along k: 8 threads per row, 4 rows per warp (one
    /// 32-byte sector each); otherwise 32 consecutive rows of one k per warp. rows·k ≤ <see cref="MaxOperandElements"/>
    /// (the host checks), so every index fits 32 bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Stager MakeStager(bool kContiguous, int tid, int row0, int rows, int k, int kBegin)
    {
        // tid ≥ 0 and KStep = 8, Rows = 32: shifts and masks (signed / and % would become divisions in the K-step loop).
        int kk = kContiguous ? tid & (KStep - 1) : tid >> 5;
        int m = kContiguous ? tid >> 3 : tid & (Rows - 1);
        int rowStride = kContiguous ? k : 1, kStride = kContiguous ? 1 : rows;
        Stager s;
        s.Base = (row0 + m) * rowStride + (kBegin + kk) * kStride;
        s.KStride = kStride;
        s.RowStep = Rows * rowStride;
        s.Kk = kk;
        s.RowsLeft = rows - row0 - m;
        s.Smem = kk * Pitch + m;
        return s;
    }

    /// <summary>This thread's 4 elements of the K-step at <paramref name="k0"/> (of the <paramref name="k"/> this group multiplies);
    /// <paramref name="full"/>: the tile lies inside the operand.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vec4 LoadTile(ArrayView<float> x, Stager s, int k0, int k, bool full)
    {
        // Indexes of rows past the operand's end may wrap; those rows are not read.
        int i = s.Base + k0 * s.KStride, i1 = i + s.RowStep, i2 = i1 + s.RowStep, i3 = i2 + s.RowStep;
        Vec4 r;
        if (full)
        {
            r.X = x[i];
            r.Y = x[i1];
            r.Z = x[i2];
            r.W = x[i3];
        }
        else
        {
            r.X = 0; r.Y = 0; r.Z = 0; r.W = 0;
            if (k0 + s.Kk < k)
            {
                if (s.RowsLeft > 0) r.X = x[i];
                if (s.RowsLeft > Rows) r.Y = x[i1];
                if (s.RowsLeft > 2 * Rows) r.Z = x[i2];
                if (s.RowsLeft > 3 * Rows) r.W = x[i3];
            }
        }
        return r;
    }

    /// <summary>Stores a thread's 4 staged elements into the tile at <paramref name="tile"/> (a float offset in shared memory).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreTile(ArrayView<float> smem, int tile, Stager s, Vec4 v)
    {
        var st = smem.SubView(tile + s.Smem);   // one base: the element offsets become immediates in st.shared
        st[0] = v.X;
        st[Rows] = v.Y;
        st[2 * Rows] = v.Z;
        st[3 * Rows] = v.W;
    }

    /// <summary>
    /// The staging map of <see cref="KernelVecABt"/> for a k-contiguous operand (rows, K) whose chunks of four k start on
    /// 16-byte boundaries: thread tid holds k 4·(tid &amp; 1) .. +3 of tile row tid / 2 (128 rows), so a warp reads 16 rows
    /// x 32 bytes, one sector each, as the scalar map does, in one 128-bit load per thread instead of four. A map of its own
    /// (with <see cref="LoadTileVecK"/> and <see cref="StoreTileVecK"/>) rather than a mode argument of <see cref="MakeStager"/>:
    /// with the mode a constant argument, ILGPU still placed <see cref="Kernel"/>'s code differently (ptxas then issued 152
    /// instead of 150 instructions per trip), and a run-time mode cost more than the 128-bit loads saved.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Stager MakeStagerVecK(int tid, int row0, int rows, int k, int kBegin)
    {
        int kk = (tid & 1) << 2, m = tid >> 1;
        Stager s;
        s.Base = (row0 + m) * k + kBegin + kk;
        s.KStride = 1;
        s.RowStep = 0;   // one row per thread
        s.Kk = kk;
        s.RowsLeft = rows - row0 - m;
        s.Smem = kk * Pitch + m;
        return s;
    }

    /// <summary>This thread's four k of its row for the K-step at <paramref name="k0"/> (<see cref="MakeStagerVecK"/>), one 128-bit
    /// load, or zeros for a row past the operand or k past this group's K: with K a multiple of 4 a chunk lies wholly inside
    /// K or wholly past it (<paramref name="full"/>: the tile lies inside the operand, no test).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vec4 LoadTileVecK(ArrayView<Vec4> x4, Stager s, int k0, int k, bool full)
    {
        int e = s.Base + k0;   // a multiple of 4: the row starts on a chunk (K % 4 == 0) and so does k0 + Kk
        if (full || (s.RowsLeft > 0 && k0 + s.Kk < k)) return x4[e >> 2];
        Vec4 r;
        r.X = 0; r.Y = 0; r.Z = 0; r.W = 0;
        return r;
    }

    /// <summary>Stores the four k of <see cref="LoadTileVecK"/> into the k-major tile at <paramref name="tile"/>: a tile row apart
    /// (the warp's 32 stores of one k fall in distinct banks: rows 0-15 of k and k + 4 are 16 banks apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreTileVecK(ArrayView<float> smem, int tile, Stager s, Vec4 v)
    {
        var st = smem.SubView(tile + s.Smem);
        st[0] = v.X;
        st[Pitch] = v.Y;
        st[2 * Pitch] = v.Z;
        st[3 * Pitch] = v.W;
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

    /// <summary>
    /// C[cBase + row·N + col .. +3] (= or +=) v + bias, then GELU or ⊙ GELU'(aux[row·N + col ..]) when asked (aux is the
    /// bias slot's view); <paramref name="full"/>: the block lies inside C, no guards.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreQuad(ArrayView<float> c, ArrayView<float> aux, long cBase, GemmArgs p, int row, int col, bool full, Vec4 bias,
        float v0, float v1, float v2, float v3)
    {
        if (!full && row >= p.M) return;
        long i = cBase + (long)row * p.N + col;
        v0 += bias.X; v1 += bias.Y; v2 += bias.Z; v3 += bias.W;
        if (p.Gelu != 0) { v0 = Activations.Gelu(v0); v1 = Activations.Gelu(v1); v2 = Activations.Gelu(v2); v3 = Activations.Gelu(v3); }
        if (p.GeluGrad != 0)
        {
            long a = (long)row * p.N + col;   // columns past N are never stored: leave them unread
            if (full || col < p.N) v0 *= Activations.GeluDerivative(aux[a]);
            if (full || col + 1 < p.N) v1 *= Activations.GeluDerivative(aux[a + 1]);
            if (full || col + 2 < p.N) v2 *= Activations.GeluDerivative(aux[a + 2]);
            if (full || col + 3 < p.N) v3 *= Activations.GeluDerivative(aux[a + 3]);
        }
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
