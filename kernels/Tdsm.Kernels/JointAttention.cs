using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>Shapes of the joint attention: B rows, L text tokens (S = L + 1 ≤ 64), H hidden, Heads.</summary>
public struct AttentionArgs
{
    public int B, L, H, Heads;
    /// <summary>1: the forward kernels do not write probs (a forward-only pass has no backward to save them for); 0: they do.</summary>
    public int NoProbs;
    /// <summary>1: the tiled forward also writes outU as bf16 pairs ((B·L, H/2) words, <see cref="Bf16.Pack"/>), the packed A
    /// operand of the text stream's proj_c product (no pack pass over outU); 0: it does not.</summary>
    public int PackOut;
    /// <summary>1/√D, the scores' scale (set by the host: the same float32 value as 1f / XMath.Sqrt(D) on the device,
    /// both correctly rounded; ILGPU would otherwise recompute it inside the softmax's row loop).</summary>
    public float Scale;
}

/// <summary>
/// Joint multi-head attention over [skeleton token, L text tokens], one group of 128 threads per
/// (row, head). qkvX (B, 3H) and qkvU (B, L, 3H) are [q | k | v] with heads of D = H/Heads
/// contiguous channels. The group stages the head's q, k, v (or dO) in shared memory 32 channels
/// at a time, reading each token's channels contiguously, and keeps the S x S scores there: the
/// score and output loops read shared memory only, spread over all 128 threads (one thread per
/// (query, key) score, per (token, channel) output). The softmax is max-subtracted, one warp per
/// query row. probs (B, Heads, S, S) is saved for the backward, which keeps ∂scores in shared memory.
/// Every dot product runs in the order of the reference (channels, then keys or queries, one after the
/// other from zero), so chunking the channels does not change a bit; the softmax's float64 normaliser (and the
/// backward's Σ P·∂P) is summed across a warp, one warp per query row (the softmax: <see cref="SoftmaxRows"/>).
/// </summary>
public static partial class JointAttention
{
    /// <summary>Threads per (row, head) group.</summary>
    public const int Threads = 128;
    /// <summary>Most tokens (S = L + 1): the shared memory of a group, <see cref="SharedFloats"/>(64), stays under 48 KB.</summary>
    public const int MaxTokens = 64;
    // Channels per shared stage; a stage row has one float of padding so that a warp reading one channel of 32
    // consecutive tokens hits 32 banks.
    private const int Chunk = 32, Stride = Chunk + 1;

    /// <summary>
    /// Floats of dynamic shared memory a group needs for S tokens: the S x S scores and two S x 33 stages. Sized to
    /// the launch's S (15 KB at S = 36) rather than to <see cref="MaxTokens"/> (33 KB), so that 15 groups fit an
    /// H100 SM instead of 6: the kernels are latency-bound (the first visit: 3.6 ms per 2,048-row call, ~11x the
    /// time to move their bytes).
    /// </summary>
    public static int SharedFloats(int tokens) => tokens * tokens + 2 * tokens * Stride;

    private static long Index(int bi, int t, int part, int ch, AttentionArgs p) =>
        t == 0 ? (long)bi * 3 * p.H + part * p.H + ch : ((long)bi * p.L + t - 1) * 3 * p.H + part * p.H + ch;

    private static float Load(ArrayView<float> qkvX, ArrayView<float> qkvU, int bi, int t, int part, int ch, AttentionArgs p) =>
        t == 0 ? qkvX[Index(bi, 0, part, ch, p)] : qkvU[Index(bi, t, part, ch, p)];

    private static float LoadDOut(ArrayView<float> dOutX, ArrayView<float> dOutU, int bi, int t, int ch, AttentionArgs p) =>
        t == 0 ? dOutX[(long)bi * p.H + ch] : dOutU[((long)bi * p.L + t - 1) * p.H + ch];

    private static void Store(ArrayView<float> dqkvX, ArrayView<float> dqkvU, int bi, int t, int part, int ch, AttentionArgs p, float v)
    {
        if (t == 0) dqkvX[Index(bi, 0, part, ch, p)] = v;
        else dqkvU[Index(bi, t, part, ch, p)] = v;
    }

    // stage[t, c] = part `part` of token t, channel c0 + c of head hd (part 3: dO), for t < s, c < dc. Four elements per
    // thread and trip, all loaded before any is stored, so that four global loads are in flight instead of one (a loop
    // of load-then-store waits out each load's latency: the first visit measured these kernels latency-bound).
    private static void Stage(ArrayView<float> stage, ArrayView<float> xs, ArrayView<float> us, int part, int bi, int hd, int c0, int dc, int s, int d, AttentionArgs p)
    {
        // Element idx = (t, c) = (idx / dc, idx mod dc) sits at t·Stride + c = idx + t·(Stride − dc) in the stage.
        int n = s * dc, pad = Stride - dc;
        for (int idx = Group.IdxX; idx < n; idx += 4 * Threads)
        {
            int i1 = idx + Threads, i2 = i1 + Threads, i3 = i2 + Threads;
            int t0 = idx / dc, t1 = i1 / dc, t2 = i2 / dc, t3 = i3 / dc;
            float v0 = StagedValue(xs, us, part, bi, hd, c0, d, p, t0, idx - t0 * dc);
            float v1 = i1 < n ? StagedValue(xs, us, part, bi, hd, c0, d, p, t1, i1 - t1 * dc) : 0f;
            float v2 = i2 < n ? StagedValue(xs, us, part, bi, hd, c0, d, p, t2, i2 - t2 * dc) : 0f;
            float v3 = i3 < n ? StagedValue(xs, us, part, bi, hd, c0, d, p, t3, i3 - t3 * dc) : 0f;
            stage[idx + t0 * pad] = v0;
            if (i1 < n) stage[i1 + t1 * pad] = v1;
            if (i2 < n) stage[i2 + t2 * pad] = v2;
            if (i3 < n) stage[i3 + t3 * pad] = v3;
        }
    }

    // Part `part` (3: dO) of token t, channel c0 + c of head hd.
    private static float StagedValue(ArrayView<float> xs, ArrayView<float> us, int part, int bi, int hd, int c0, int d, AttentionArgs p, int t, int c)
    {
        int ch = hd * d + c0 + c;
        return part == 3 ? LoadDOut(xs, us, bi, t, ch, p) : Load(xs, us, bi, t, part, ch, p);
    }

    // sc[i, j] += Σ_c a[i, c]·b[j, c] over the dc staged channels, continuing each sum where the last chunk left it.
    private static void AccumulateScores(ArrayView<float> sc, ArrayView<float> a, ArrayView<float> b, int s, int dc)
    {
        for (int idx = Group.IdxX; idx < s * s; idx += Threads)
        {
            int i = idx / s, j = idx - i * s;
            float acc = sc[i * s + j];
            for (int c = 0; c < dc; c++) acc += a[i * Stride + c] * b[j * Stride + c];
            sc[i * s + j] = acc;
        }
    }

    // Σ_j w[t, j]·staged[j, c] over the s tokens in order, w = the (query, key) matrix in shared memory or, with
    // byKey, its transpose (w[t, j] = m[j, t]).
    private static float MixTokens(ArrayView<float> m, bool byKey, ArrayView<float> staged, int t, int c, int s)
    {
        float acc = 0;
        for (int j = 0; j < s; j++) acc += (byKey ? m[j * s + t] : m[t * s + j]) * staged[j * Stride + c];
        return acc;
    }

    /// <summary>Launch: grid B·Heads, group <see cref="Threads"/>.</summary>
    public static void Forward(ArrayView<float> qkvX, ArrayView<float> qkvU, ArrayView<float> probs, ArrayView<float> outX, ArrayView<float> outU, AttentionArgs p)
    {
        int bi = Grid.IdxX / p.Heads, hd = Grid.IdxX % p.Heads, tid = Group.IdxX;
        int s = p.L + 1, d = p.H / p.Heads;
        var shared = SharedMemory.GetDynamic<float>();                   // SharedFloats(s)
        var sc = shared.SubView(0, s * s);                               // scores, then probabilities [query][key]
        var sa = shared.SubView(s * s, s * Stride);                      // q chunk, then v chunk [token][channel]
        var sb = shared.SubView(s * s + s * Stride, s * Stride);         // k chunk
        for (int idx = tid; idx < s * s; idx += Threads) sc[idx] = 0f;
        for (int c0 = 0; c0 < d; c0 += Chunk)
        {
            int dc = XMath.Min(Chunk, d - c0);
            Group.Barrier();   // the last chunk's readers are done
            Stage(sa, qkvX, qkvU, 0, bi, hd, c0, dc, s, d, p);
            Stage(sb, qkvX, qkvU, 1, bi, hd, c0, dc, s, d, p);
            Group.Barrier();
            AccumulateScores(sc, sa, sb, s, dc);
        }
        Group.Barrier();
        // Softmax, a warp per query row, written to probs as well (SoftmaxRows, shared with ForwardTiled).
        SoftmaxRows(sc, s, s, p.Scale, probs, ((long)bi * p.Heads + hd) * s * s, p.NoProbs == 0);
        Group.Barrier();
        // out[i, c] = Σ_j P[i, j]·v[j, c]
        for (int c0 = 0; c0 < d; c0 += Chunk)
        {
            int dc = XMath.Min(Chunk, d - c0);
            Group.Barrier();
            Stage(sa, qkvX, qkvU, 2, bi, hd, c0, dc, s, d, p);
            Group.Barrier();
            for (int idx = tid; idx < s * dc; idx += Threads)
            {
                int i = idx / dc, c = idx - i * dc, ch = hd * d + c0 + c;
                float o = MixTokens(sc, false, sa, i, c, s);
                if (i == 0) outX[(long)bi * p.H + ch] = o;
                else outU[((long)bi * p.L + i - 1) * p.H + ch] = o;
            }
        }
    }

    /// <summary>Launch: grid B·Heads, group <see cref="Threads"/>.</summary>
    public static void Backward(ArrayView<float> dOutX, ArrayView<float> dOutU, ArrayView<float> qkvX, ArrayView<float> qkvU, ArrayView<float> probs,
        ArrayView<float> dqkvX, ArrayView<float> dqkvU, AttentionArgs p)
    {
        int bi = Grid.IdxX / p.Heads, hd = Grid.IdxX % p.Heads, tid = Group.IdxX;
        int s = p.L + 1, d = p.H / p.Heads;
        var shared = SharedMemory.GetDynamic<float>();                   // SharedFloats(s)
        var ds = shared.SubView(0, s * s);                               // ∂P, then ∂scores, then P [query][key]
        var sa = shared.SubView(s * s, s * Stride);
        var sb = shared.SubView(s * s + s * Stride, s * Stride);
        float scale = p.Scale;
        long pBase = ((long)bi * p.Heads + hd) * s * s;
        // ∂P[i, j] = dO_i·v_j
        for (int idx = tid; idx < s * s; idx += Threads) ds[idx] = 0f;
        for (int c0 = 0; c0 < d; c0 += Chunk)
        {
            int dc = XMath.Min(Chunk, d - c0);
            Group.Barrier();
            Stage(sa, dOutX, dOutU, 3, bi, hd, c0, dc, s, d, p);
            Stage(sb, qkvX, qkvU, 2, bi, hd, c0, dc, s, d, p);
            Group.Barrier();
            AccumulateScores(ds, sa, sb, s, dc);
        }
        Group.Barrier();
        // ∂S[i, j] = P[i, j](∂P[i, j] − Σ_j' P ∂P) · scale.
        // A warp per query row (lanes j and j + 32), the float64 sum across the warp (as in the forward's softmax).
        int warp = tid >> 5, lane = tid & 31;
        for (int i = warp; i < s; i += Threads / 32)
        {
            int j0 = lane, j1 = lane + 32;
            float p0 = j0 < s ? probs[pBase + (long)i * s + j0] : 0f, d0 = j0 < s ? ds[i * s + j0] : 0f;
            float p1 = j1 < s ? probs[pBase + (long)i * s + j1] : 0f, d1 = j1 < s ? ds[i * s + j1] : 0f;
            double dot = WarpSum((double)(p0 * d0) + (p1 * d1));
            if (j0 < s) ds[i * s + j0] = (float)(p0 * (d0 - dot) * scale);
            if (j1 < s) ds[i * s + j1] = (float)(p1 * (d1 - dot) * scale);
        }
        // dq[i, c] = Σ_j ∂S[i, j]·k[j, c];  dk[t, c] = Σ_q ∂S[q, t]·q[q, c]
        for (int c0 = 0; c0 < d; c0 += Chunk)
        {
            int dc = XMath.Min(Chunk, d - c0);
            Group.Barrier();
            Stage(sa, qkvX, qkvU, 0, bi, hd, c0, dc, s, d, p);
            Stage(sb, qkvX, qkvU, 1, bi, hd, c0, dc, s, d, p);
            Group.Barrier();
            for (int idx = tid; idx < s * dc; idx += Threads)
            {
                int t = idx / dc, c = idx - t * dc, ch = hd * d + c0 + c;
                Store(dqkvX, dqkvU, bi, t, 0, ch, p, MixTokens(ds, false, sb, t, c, s));
                Store(dqkvX, dqkvU, bi, t, 1, ch, p, MixTokens(ds, true, sa, t, c, s));
            }
        }
        // dv[t, c] = Σ_q P[q, t]·dO[q, c], with P now in ds.
        Group.Barrier();
        for (int idx = tid; idx < s * s; idx += Threads) ds[idx] = probs[pBase + idx];
        for (int c0 = 0; c0 < d; c0 += Chunk)
        {
            int dc = XMath.Min(Chunk, d - c0);
            Group.Barrier();
            Stage(sa, dOutX, dOutU, 3, bi, hd, c0, dc, s, d, p);
            Group.Barrier();
            for (int idx = tid; idx < s * dc; idx += Threads)
            {
                int t = idx / dc, c = idx - t * dc;
                Store(dqkvX, dqkvU, bi, t, 2, hd * d + c0 + c, p, MixTokens(ds, true, sa, t, c, s));
            }
        }
    }
}
