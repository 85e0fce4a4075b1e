using ILGPU;
using ILGPU.Runtime;
using Vec4 = Tdsm.Kernels.Gemm.Vec4;

namespace Tdsm.Kernels;

/// <summary>
/// The register-tiled joint attention, forward and backward, for heads of D a multiple of 8 channels (the paper's 64):
/// one group of <see cref="TiledThreads"/> per (row, head), as <see cref="Forward"/>, with the head's whole q, k, v (and
/// dO) staged in shared memory at once by 128-bit loads, one barrier, and every product computed from 128-bit shared
/// reads into register tiles:
/// <list type="bullet">
/// <item>scores-like products (A·Bᵀ over channels: q·kᵀ, dO·vᵀ): a thread owns 4 query × 4 key rows (rows r + nq·i, nq =
/// ⌈S/4⌉, so that 8 neighbouring threads read 8 consecutive staged rows: distinct banks), 8 shared loads per 64 FMA;</item>
/// <item>token mixes (M·X over tokens: P·v, ∂S·k, ∂Sᵀ·q, Pᵀ·dO): a thread owns 4 rows × 8 channels (two 16-byte chunks half a
/// head apart, again distinct banks), 4 scalar and 2 vector shared loads per 32 FMA, stored by 128-bit global stores.</item>
/// </list>
/// The scalar kernels spend their time waiting: two loads per multiply-add from shared memory, a barrier per 32-channel
/// chunk, and S x S scores one per thread (the first visit: 3.6 ms per 2,048-row forward, ~11x its memory time). Each sum
/// runs over channels or tokens in the reference's order in float32, as the scalar kernels do; the softmax is the same code.
/// Needs H a multiple of 4 and 16-byte aligned q/k/v, dO, output and gradient views (<see cref="TiledFits"/>; GpuOps
/// falls back to the scalar kernels otherwise).
/// </summary>
public static partial class JointAttention
{
    /// <summary>Threads per (row, head) group of the tiled kernels: those of the scalar kernels, whose softmax
    /// (<see cref="SoftmaxRows"/>) they share.</summary>
    public const int TiledThreads = Threads;

    /// <summary>Groups per SM the tiled forward is compiled for (its launch bounds): 6, what its 35 KB of shared memory allows
    /// at the paper's S = 36, D = 64. Unbounded, ptxas 12.4 gives it 95 registers (sm_80 and sm_90), 5 groups per SM; bounded,
    /// 80 and no spills.</summary>
    public const int TiledForwardGroupsPerSM = 6;

    /// <summary>Groups per SM the tiled backward is compiled for: 5, what its 44 KB of shared memory allows at S = 36, D = 64.
    /// Unbounded, ptxas 12.4 gives it 104 registers, 4 groups per SM; bounded, 96 (sm_80: no spills; sm_90: one 4-byte spill).</summary>
    public const int TiledBackwardGroupsPerSM = 5;

    /// <summary>The launch bounds to load <see cref="ForwardTiled"/> with.</summary>
    public static KernelSpecialization TiledForwardSpecialization => new(TiledThreads, TiledForwardGroupsPerSM);

    /// <summary>The launch bounds to load <see cref="BackwardTiled"/> with.</summary>
    public static KernelSpecialization TiledBackwardSpecialization => new(TiledThreads, TiledBackwardGroupsPerSM);

    /// <summary>Most dynamic shared memory of a tiled group (floats): 48 KB, what a launch gets without an opt-in.</summary>
    public const int TiledMaxSharedFloats = 48 * 1024 / sizeof(float);

    /// <summary>16-byte chunks per staged token row: D/4 made odd, so that 8 consecutive rows read at the same chunk (one
    /// phase of a 128-bit shared load) fall in 8 distinct groups of 4 banks.</summary>
    public static int TiledPitch4(int d) => (d / 4) | 1;

    /// <summary>Floats of dynamic shared memory of <see cref="ForwardTiled"/>: q, k, v (S rows of <see cref="TiledPitch4"/>
    /// chunks each) and the S x (S + 1) scores.</summary>
    public static int TiledForwardSharedFloats(int s, int d) => 3 * s * TiledPitch4(d) * 4 + s * (s + 1);

    /// <summary>Floats of dynamic shared memory of <see cref="BackwardTiled"/>: q, k, v, dO and ∂S, plus P when it does not fit
    /// where v was.</summary>
    public static int TiledBackwardSharedFloats(int s, int d) => 4 * s * TiledPitch4(d) * 4 + s * (s + 1) * (PFitsInV(s, d) ? 1 : 2);

    private static bool PFitsInV(int s, int d) => s + 1 <= TiledPitch4(d) * 4;

    /// <summary>Whether the tiled kernels take S tokens of D channels (H = D·heads): D a multiple of 8, S ≤
    /// <see cref="MaxTokens"/>, both kernels' shared memory within <see cref="TiledMaxSharedFloats"/>. The views must also
    /// start on 16-byte boundaries (the caller checks).</summary>
    public static bool TiledFits(int s, int d) =>
        d > 0 && d % 8 == 0 && s >= 1 && s <= MaxTokens &&
        TiledForwardSharedFloats(s, d) <= TiledMaxSharedFloats && TiledBackwardSharedFloats(s, d) <= TiledMaxSharedFloats;

    /// <summary>
    /// Forward, as <see cref="Forward"/> (same outputs and probs, float32 rounding aside). With <see cref="AttentionArgs.PackOut"/>
    /// outU's rows are also written as bf16 pairs into packedU (H a multiple of 8; else a dummy). Launch: grid B·Heads, group
    /// <see cref="TiledThreads"/>, dynamic shared <see cref="TiledForwardSharedFloats"/>.
    /// </summary>
    public static void ForwardTiled(ArrayView<float> qkvX, ArrayView<float> qkvU, ArrayView<float> probs, ArrayView<float> outX, ArrayView<float> outU,
        ArrayView<uint> packedU, AttentionArgs p)
    {
        int bi = Grid.IdxX / p.Heads, hd = Grid.IdxX - bi * p.Heads;
        int s = p.L + 1, d = p.H / p.Heads, n4 = d >> 2, pitch4 = n4 | 1, sp = s + 1, block4 = s * pitch4;
        var shared = SharedMemory.GetDynamic<float>();                  // TiledForwardSharedFloats(s, d)
        var st4 = shared.Cast<Vec4>();                                  // q | k | v, s rows of pitch4 chunks each
        var sc = shared.SubView(3 * block4 * 4, s * sp);                // scores, then P [query][key], rows sp apart
        // q, k, v of this head: the three parts' chunks at (part·H + hd·D)/4 of each token's 3H/4.
        StageChunks(st4, 0, qkvX.Cast<Vec4>().AsAligned(16), qkvU.Cast<Vec4>().AsAligned(16), 3 * p.H / 4, p.H / 4, hd * n4, 3, bi, s, n4, pitch4, p.L);
        Group.Barrier();
        ScoreTiles(st4, 0, block4, pitch4, n4, sc, sp, s);
        Group.Barrier();
        SoftmaxRows(sc, sp, s, p.Scale, probs, ((long)bi * p.Heads + hd) * s * s, p.NoProbs == 0);
        Group.Barrier();
        // out[i, c] = Σ_j P[i, j]·v[j, c]
        int n8 = n4 >> 1, nq = (s + 3) >> 2;
        var ox4 = outX.Cast<Vec4>().AsAligned(16);
        var ou4 = outU.Cast<Vec4>().AsAligned(16);
        var pu = packedU.Cast<ulong>();   // a 16-byte chunk of outU is two bf16 words: one 64-bit store
        for (int tile = Group.IdxX; tile < nq * n8; tile += TiledThreads)
            MixTile(tile, st4, sc, sp, 1, 2 * block4, pitch4, n8, s, ox4, ou4, p.H / 4, hd * n4, bi, p.L, pu, p.PackOut != 0);
    }

    /// <summary>
    /// Backward, as <see cref="Backward"/> (dqkv overwritten). Launch: grid B·Heads, group <see cref="TiledThreads"/>, dynamic
    /// shared <see cref="TiledBackwardSharedFloats"/>.
    /// </summary>
    public static void BackwardTiled(ArrayView<float> dOutX, ArrayView<float> dOutU, ArrayView<float> qkvX, ArrayView<float> qkvU, ArrayView<float> probs,
        ArrayView<float> dqkvX, ArrayView<float> dqkvU, AttentionArgs p)
    {
        int bi = Grid.IdxX / p.Heads, hd = Grid.IdxX - bi * p.Heads, tid = Group.IdxX;
        int s = p.L + 1, d = p.H / p.Heads, n4 = d >> 2, pitch4 = n4 | 1, sp = s + 1, block4 = s * pitch4;
        var shared = SharedMemory.GetDynamic<float>();                  // TiledBackwardSharedFloats(s, d)
        var st4 = shared.Cast<Vec4>();                                  // q | k | v | dO, s rows of pitch4 chunks each
        var ds = shared.SubView(4 * block4 * 4, s * sp);                // ∂P, then ∂S [query][key]
        // P [query][key] goes where v was once ∂P is computed (v's last use), or after ∂S when it does not fit there.
        int pAt = s + 1 <= pitch4 * 4 ? 2 * block4 * 4 : 4 * block4 * 4 + s * sp;
        var pm = shared.SubView(pAt, s * sp);
        StageChunks(st4, 0, qkvX.Cast<Vec4>().AsAligned(16), qkvU.Cast<Vec4>().AsAligned(16), 3 * p.H / 4, p.H / 4, hd * n4, 3, bi, s, n4, pitch4, p.L);
        StageChunks(st4, 3 * block4, dOutX.Cast<Vec4>().AsAligned(16), dOutU.Cast<Vec4>().AsAligned(16), p.H / 4, 0, hd * n4, 1, bi, s, n4, pitch4, p.L);
        long pBase = ((long)bi * p.Heads + hd) * s * s;
        int warp = tid >> 5, lane = tid & 31;
        float pn0 = warp < s && lane < s ? probs[pBase + (long)warp * s + lane] : 0f;
        float pn1 = warp < s && lane + 32 < s ? probs[pBase + (long)warp * s + lane + 32] : 0f;
        Group.Barrier();
        // ∂P[i, j] = dO_i·v_j
        ScoreTiles(st4, 3 * block4, 2 * block4, pitch4, n4, ds, sp, s);
        Group.Barrier();
        // ∂S[i, j] = P[i, j](∂P[i, j] − Σ_j' P ∂P)·scale, a warp per query row as in Backward; P kept for dv.
        float scale = p.Scale;
        // probs of the warp's next row are loaded a row ahead, the first before ∂P (above), so no row waits out a global load.
        long pNext = pBase + (long)(warp + TiledThreads / 32) * s;   // the next row's probs (a phi)
        for (int i = warp; i < s; i += TiledThreads / 32)
        {
            int j0 = lane, j1 = lane + 32, next = i + TiledThreads / 32;
            float p0 = pn0, p1 = pn1;
            pn0 = next < s && j0 < s ? probs[pNext + j0] : 0f;
            pn1 = next < s && j1 < s ? probs[pNext + j1] : 0f;
            pNext += (TiledThreads / 32) * s;
            float d0 = j0 < s ? ds[i * sp + j0] : 0f, d1 = j1 < s ? ds[i * sp + j1] : 0f;
            double dot = WarpSum((double)(p0 * d0) + (p1 * d1));
            if (j0 < s) { ds[i * sp + j0] = (float)(p0 * (d0 - dot) * scale); pm[i * sp + j0] = p0; }
            if (j1 < s) { ds[i * sp + j1] = (float)(p1 * (d1 - dot) * scale); pm[i * sp + j1] = p1; }
        }
        Group.Barrier();
        // Three mixes as one task list (same code, different operands, so a warp straddling two of them does not diverge):
        // dq[i, c] = Σ_j ∂S[i, j]·k[j, c];  dk[t, c] = Σ_i ∂S[i, t]·q[i, c];  dv[t, c] = Σ_i P[i, t]·dO[i, c].
        int n8 = n4 >> 1, nq = (s + 3) >> 2, tiles = nq * n8;
        var dx4 = dqkvX.Cast<Vec4>().AsAligned(16);
        var du4 = dqkvU.Cast<Vec4>().AsAligned(16);
        for (int task = tid; task < 3 * tiles; task += TiledThreads)
        {
            int part = task < tiles ? 0 : task < 2 * tiles ? 1 : 2;
            int tile = task - part * tiles;
            int matAt = part == 2 ? pAt : 4 * block4 * 4;                 // ∂S, or P for dv
            int rowStep = part == 0 ? sp : 1, colStep = part == 0 ? 1 : sp; // M or Mᵀ
            int xBlock4 = part == 0 ? block4 : part == 1 ? 0 : 3 * block4;  // k, q, dO
            MixTile(tile, st4, shared.SubView(matAt, s * sp), rowStep, colStep, xBlock4, pitch4, n8, s, dx4, du4, 3 * p.H / 4, part * (p.H / 4) + hd * n4, bi, p.L,
                default, false);
        }
    }

    // Stages `parts` parts (part·partStride4 + col4 chunks into each token's row of rowX4 chunks) of the s tokens into
    // consecutive blocks of st4 from block0Of4 (chunk units, s rows of pitch4 chunks per block): token 0 from xs4 (B rows),
    // token t ≥ 1 from us4 (B·L rows). A warp per pair of tokens t, t + 4 and a lane per chunks r, r + 32 of a token, so
    // that the address of a chunk within a row is computed once per lane, and four 128-bit loads are in flight per lane.
    // Indexes into the rows are phis (advanced per trip), not products: ILGPU recomputes loop-invariant arithmetic at
    // its use inside the loop.
    private static void StageChunks(ArrayView<Vec4> st4, int block0Of4, ArrayView<Vec4> xs4, ArrayView<Vec4> us4, int rowX4, int partStride4, int col4,
        int parts, int bi, int s, int n4, int pitch4, int l)
    {
        const int Warps = TiledThreads / 32;
        int per = parts * n4, warp = Group.IdxX >> 5, lane = Group.IdxX & 31;
        for (int r0 = 0; r0 < per; r0 += 64)
        {
            int ra = r0 + lane, rb = ra + 32;
            bool va = ra < per, vb = rb < per;
            int pa = PartOf(ra, n4), pb = PartOf(rb, n4);
            int ga = pa * partStride4 + col4 + ra - pa * n4, gb = pb * partStride4 + col4 + rb - pb * n4;   // chunk in a token's row
            int sa = block0Of4 + pa * s * pitch4 + ra - pa * n4, sb = block0Of4 + pb * s * pitch4 + rb - pb * n4;   // token 0's slot
            long row = ((long)bi * l + warp - 1) * rowX4;      // token t's row in us4 (t ≥ 1)
            int at = warp * pitch4;                              // token t's staged row
            for (int t = warp; t < s; t += 2 * Warps)
            {
                bool second = t + Warps < s;
                long row2 = row + Warps * rowX4;
                int at2 = at + Warps * pitch4;
                Vec4 x0 = default, x1 = default;
                if (t == 0)
                {
                    long r = (long)bi * rowX4;
                    x0 = va ? xs4[r + ga] : default;
                    x1 = vb ? xs4[r + gb] : default;
                }
                else
                {
                    x0 = va ? us4[row + ga] : default;
                    x1 = vb ? us4[row + gb] : default;
                }
                Vec4 x2 = second && va ? us4[row2 + ga] : default;
                Vec4 x3 = second && vb ? us4[row2 + gb] : default;
                if (va) st4[sa + at] = x0;
                if (vb) st4[sb + at] = x1;
                if (second && va) st4[sa + at2] = x2;
                if (second && vb) st4[sb + at2] = x3;
                row += 2 * Warps * rowX4;
                at += 2 * Warps * pitch4;
            }
        }
    }

    // The part of chunk r = part·n4 + c4 of a token's staged parts (at most 4: comparisons, not a division).
    private static int PartOf(int r, int n4) => (r >= n4 ? 1 : 0) + (r >= 2 * n4 ? 1 : 0) + (r >= 3 * n4 ? 1 : 0);

    // out[i·sp + j] = Σ_c a[i, c]·b[j, c] (channels in order) for the s x s pairs: a at block aOf4, b at bOf4 of st4.
    // A thread's tile: rows qb + nq·u and keys kb + nq·v (u, v < 4); rows past s read row s − 1 and are not stored.
    private static void ScoreTiles(ArrayView<Vec4> st4, int aOf4, int bOf4, int pitch4, int n4, ArrayView<float> sc, int sp, int s)
    {
        int nq = (s + 3) >> 2;
        for (int tile = Group.IdxX; tile < nq * nq; tile += TiledThreads)
        {
            int qb = tile / nq, kb = tile - qb * nq;
            int i0 = qb, i1 = qb + nq, i2 = qb + 2 * nq, i3 = qb + 3 * nq;
            int j0 = kb, j1 = kb + nq, j2 = kb + 2 * nq, j3 = kb + 3 * nq;
            // The eight rows' chunk indexes are phis advanced by 2 per trip (n4 is even), the second chunk at +1 (an immediate).
            int a0 = aOf4 + Clamp(i0, s) * pitch4, a1 = aOf4 + Clamp(i1, s) * pitch4, a2 = aOf4 + Clamp(i2, s) * pitch4, a3 = aOf4 + Clamp(i3, s) * pitch4;
            int b0 = bOf4 + Clamp(j0, s) * pitch4, b1 = bOf4 + Clamp(j1, s) * pitch4, b2 = bOf4 + Clamp(j2, s) * pitch4, b3 = bOf4 + Clamp(j3, s) * pitch4;
            Vec4 s0 = default, s1 = default, s2 = default, s3 = default;   // s_u = (row u · key v) for v = X..W
            for (int c4 = 0; c4 < n4; c4 += 2)
            {
                Vec4 k0 = st4[b0], k1 = st4[b1], k2 = st4[b2], k3 = st4[b3];
                s0 = Dot4(s0, st4[a0], k0, k1, k2, k3);
                s1 = Dot4(s1, st4[a1], k0, k1, k2, k3);
                s2 = Dot4(s2, st4[a2], k0, k1, k2, k3);
                s3 = Dot4(s3, st4[a3], k0, k1, k2, k3);
                k0 = st4[b0 + 1]; k1 = st4[b1 + 1]; k2 = st4[b2 + 1]; k3 = st4[b3 + 1];
                s0 = Dot4(s0, st4[a0 + 1], k0, k1, k2, k3);
                s1 = Dot4(s1, st4[a1 + 1], k0, k1, k2, k3);
                s2 = Dot4(s2, st4[a2 + 1], k0, k1, k2, k3);
                s3 = Dot4(s3, st4[a3 + 1], k0, k1, k2, k3);
                a0 += 2; a1 += 2; a2 += 2; a3 += 2; b0 += 2; b1 += 2; b2 += 2; b3 += 2;
            }
            StoreScoreRow(sc, sp, s, i0, j0, j1, j2, j3, s0);
            StoreScoreRow(sc, sp, s, i1, j0, j1, j2, j3, s1);
            StoreScoreRow(sc, sp, s, i2, j0, j1, j2, j3, s2);
            StoreScoreRow(sc, sp, s, i3, j0, j1, j2, j3, s3);
        }
    }

    private static int Clamp(int row, int s) => row < s ? row : s - 1;

    // acc.v += Σ over the chunk's 4 channels (in order) of a·k_v, v = X..W.
    private static Vec4 Dot4(Vec4 acc, Vec4 a, Vec4 k0, Vec4 k1, Vec4 k2, Vec4 k3)
    {
        acc.X += a.X * k0.X; acc.X += a.Y * k0.Y; acc.X += a.Z * k0.Z; acc.X += a.W * k0.W;
        acc.Y += a.X * k1.X; acc.Y += a.Y * k1.Y; acc.Y += a.Z * k1.Z; acc.Y += a.W * k1.W;
        acc.Z += a.X * k2.X; acc.Z += a.Y * k2.Y; acc.Z += a.Z * k2.Z; acc.Z += a.W * k2.W;
        acc.W += a.X * k3.X; acc.W += a.Y * k3.Y; acc.W += a.Z * k3.Z; acc.W += a.W * k3.W;
        return acc;
    }

    private static void StoreScoreRow(ArrayView<float> sc, int sp, int s, int i, int j0, int j1, int j2, int j3, Vec4 v)
    {
        if (i >= s) return;
        if (j0 < s) sc[i * sp + j0] = v.X;
        if (j1 < s) sc[i * sp + j1] = v.Y;
        if (j2 < s) sc[i * sp + j2] = v.Z;
        if (j3 < s) sc[i * sp + j3] = v.W;
    }

    // Softmax of each scaled score row in place (rows sp apart), a warp of the group per row, written to probs (rows s
    // apart) as well when saved: max-subtracted, its float64 normaliser summed across the warp, without branches (unrolled shuffles,
    // ExpNonPositive, one float64 division per row: e·(1/Σ)). Both forward kernels' softmax.
    private static void SoftmaxRows(ArrayView<float> sc, int sp, int s, float scale, ArrayView<float> probs, long pBase, bool save)
    {
        int warp = Group.IdxX >> 5, lane = Group.IdxX & 31;
        const int warps = Threads / 32;   // both kernels launch Threads (a constant: fewer instructions per row than Group.DimX)
        long pr = pBase + (long)warp * s;   // row i of this head's probs, advanced with i (a phi)
        for (int i = warp; i < s; i += warps)
        {
            int j0 = lane, j1 = lane + 32;
            float x0 = j0 < s ? sc[i * sp + j0] * scale : float.NegativeInfinity;
            float x1 = j1 < s ? sc[i * sp + j1] * scale : float.NegativeInfinity;
            float max = WarpMax(ILGPU.Algorithms.XMath.Max(x0, x1));
            float e0 = FloatMath.ExpNonPositive(x0 - max), e1 = FloatMath.ExpNonPositive(x1 - max);
            double inv = 1.0 / WarpSum((double)e0 + e1);
            float v0 = (float)(e0 * inv), v1 = (float)(e1 * inv);
            if (j0 < s) { sc[i * sp + j0] = v0; if (save) probs[pr + j0] = v0; }
            if (j1 < s) { sc[i * sp + j1] = v1; if (save) probs[pr + j1] = v1; }
            pr += warps * s;
        }
    }

    // Across the warp, unrolled (ILGPU keeps a shuffle loop a loop).
    private static float WarpMax(float v)
    {
        v = ILGPU.Algorithms.XMath.Max(v, Warp.ShuffleXor(v, 16));
        v = ILGPU.Algorithms.XMath.Max(v, Warp.ShuffleXor(v, 8));
        v = ILGPU.Algorithms.XMath.Max(v, Warp.ShuffleXor(v, 4));
        v = ILGPU.Algorithms.XMath.Max(v, Warp.ShuffleXor(v, 2));
        return ILGPU.Algorithms.XMath.Max(v, Warp.ShuffleXor(v, 1));
    }

    private static double WarpSum(double v)
    {
        v += Warp.ShuffleXor(v, 16);
        v += Warp.ShuffleXor(v, 8);
        v += Warp.ShuffleXor(v, 4);
        v += Warp.ShuffleXor(v, 2);
        return v + Warp.ShuffleXor(v, 1);
    }

    // o[t, c] = Σ_u m(t, u)·x[u, c] over u = 0..s−1 in order, m(t, u) = mat[t·rowStep + u·colStep], x the staged block at
    // xOf4, for tile = (tb, cb): rows tb + nq·v (v < 4) and the chunks cb and cb + n8 (channels 4cb.. and D/2 + 4cb..).
    // Row t is stored to chunk col4 + (cb, cb + n8) of token t's row of rowX4 chunks: dx4 (t = 0) or du4; with pack, a row
    // t ≥ 1 also as bf16 pairs to pu (a 64-bit word per chunk, at the chunk's index in du4).
    private static void MixTile(int tile, ArrayView<Vec4> st4, ArrayView<float> mat, int rowStep, int colStep, int xOf4, int pitch4, int n8, int s,
        ArrayView<Vec4> dx4, ArrayView<Vec4> du4, int rowX4, int col4, int bi, int l, ArrayView<ulong> pu, bool pack)
    {
        int nq = (s + 3) >> 2;
        int tb = tile / n8, cb = tile - tb * n8;
        int t0 = tb, t1 = tb + nq, t2 = tb + 2 * nq, t3 = tb + 3 * nq;
        // Indexes as phis advanced per trip (see StageChunks): the four rows' m(t, u) and the staged row u of x.
        int m0 = Clamp(t0, s) * rowStep, m1 = Clamp(t1, s) * rowStep, m2 = Clamp(t2, s) * rowStep, m3 = Clamp(t3, s) * rowStep;
        int xu = xOf4 + cb;
        Vec4 o0 = default, o1 = default, o2 = default, o3 = default;   // chunk cb of rows t0..t3
        Vec4 h0 = default, h1 = default, h2 = default, h3 = default;   // chunk cb + n8
        for (int u = 0; u < s; u++)
        {
            float w0 = mat[m0], w1 = mat[m1], w2 = mat[m2], w3 = mat[m3];
            Vec4 lo = st4[xu], hi = st4[xu + n8];
            o0 = Axpy(o0, w0, lo); h0 = Axpy(h0, w0, hi);
            o1 = Axpy(o1, w1, lo); h1 = Axpy(h1, w1, hi);
            o2 = Axpy(o2, w2, lo); h2 = Axpy(h2, w2, hi);
            o3 = Axpy(o3, w3, lo); h3 = Axpy(h3, w3, hi);
            m0 += colStep; m1 += colStep; m2 += colStep; m3 += colStep; xu += pitch4;
        }
        StoreMixRow(dx4, du4, rowX4, col4 + cb, n8, bi, l, s, t0, o0, h0, pu, pack);
        StoreMixRow(dx4, du4, rowX4, col4 + cb, n8, bi, l, s, t1, o1, h1, pu, pack);
        StoreMixRow(dx4, du4, rowX4, col4 + cb, n8, bi, l, s, t2, o2, h2, pu, pack);
        StoreMixRow(dx4, du4, rowX4, col4 + cb, n8, bi, l, s, t3, o3, h3, pu, pack);
    }

    private static Vec4 Axpy(Vec4 acc, float w, Vec4 x)
    {
        acc.X += w * x.X; acc.Y += w * x.Y; acc.Z += w * x.Z; acc.W += w * x.W;
        return acc;
    }

    private static void StoreMixRow(ArrayView<Vec4> dx4, ArrayView<Vec4> du4, int rowX4, int col, int n8, int bi, int l, int s, int t, Vec4 lo, Vec4 hi,
        ArrayView<ulong> pu, bool pack)
    {
        if (t >= s) return;
        if (t == 0) { long at = (long)bi * rowX4 + col; dx4[at] = lo; dx4[at + n8] = hi; }
        else
        {
            long at = ((long)bi * l + t - 1) * rowX4 + col;
            du4[at] = lo; du4[at + n8] = hi;
            if (pack) { pu[at] = Bf16.PackChunk(lo); pu[at + n8] = Bf16.PackChunk(hi); }
        }
    }
}
