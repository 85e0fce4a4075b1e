using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Vec4 = Tdsm.Kernels.Gemm.Vec4;

namespace Tdsm.Kernels;

/// <summary>
/// The skeleton token's attention row of a forward-only pass's last block with the text tokens' keys and values left implicit
/// (IOps.JointAttentionSkeletonRowFromText): per head hd, with q the skeleton's query, hu_j the text tokens' LN-modulated
/// states and W_k, W_v, b_k, b_v qkv_c's key and value rows,
/// <code>
///   score_j = (r·hu_j + q·b_k)·Scale,  r = W_kᵀq (H)           instead of q·(W_k hu_j + b_k)
///   out     = W_v m + (Σ_j p_j) b_v + p_x v_x,  m = Σ_j p_j hu_j   instead of Σ_j p_j (W_v hu_j + b_v) + p_x v_x
/// </code>
/// about 3·H² multiply-adds per row instead of the 2·L·H² of the keys and values. The GPU tier runs it as: the queries copied
/// out of qkvX (<see cref="SkeletonRowQueries"/>), r for every head as one K-split product (<see cref="Gemm.Kernel"/>, split z =
/// head z's D rows of W_k), the scores, softmax and m (<see cref="SkeletonRowMix"/>), W_v m for every head as another K-split
/// product over W_v regrouped by head (<see cref="ValueWeightsByHead"/>), and the sum (<see cref="SkeletonRowCombine"/>).
/// </summary>
public static partial class JointAttention
{
    /// <summary>Widest H <see cref="SkeletonRowMix"/> holds in registers: six float4 chunks per lane.</summary>
    public const int MaxMixWidth = 6 * 128;

    /// <summary>Most heads (warps) in one <see cref="SkeletonRowMix"/> group: 512 threads, compiled for at most 128 registers.</summary>
    public const int MaxMixHeads = 16;

    /// <summary>The launch bounds to load <see cref="SkeletonRowMix"/> with.</summary>
    public static KernelSpecialization MixSpecialization => new(MaxMixHeads * 32, 1);

    /// <summary>Whether <see cref="SkeletonRowMix"/> takes hidden width <paramref name="h"/> with <paramref name="heads"/> heads
    /// (its views then also need 16-byte alignment).</summary>
    public static bool MixFits(int h, int heads) => h > 0 && h % 4 == 0 && h <= MaxMixWidth && heads >= 1 && heads <= MaxMixHeads;

    /// <summary>Kernel, thread e over B·H: q (B, H) = the skeleton token's queries, the first H channels of each row of qkvX (B, 3H).</summary>
    public static void SkeletonRowQueries(Index1D e, ArrayView<float> qkvX, ArrayView<float> q, int h)
    {
        int row = e / h;
        q[e] = qkvX[(long)row * 3 * h + (e - row * h)];
    }

    /// <summary>
    /// Kernel, thread e over H·H: wvByHead (D, Heads·H) with wvByHead[n, z·H + c] = W_v[z·D + n, c], W_v being wKv's rows
    /// H..2H: so that split z of a K-split product over Heads·H (A = the mixed states (B, Heads·H)) multiplies head z's rows.
    /// </summary>
    public static void ValueWeightsByHead(Index1D e, ArrayView<float> wKv, ArrayView<float> wvByHead, AttentionArgs p)
    {
        int d = p.H / p.Heads, width = p.Heads * p.H;
        int n = e / width, rest = e - n * width, z = rest / p.H, c = rest - z * p.H;
        wvByHead[e] = wKv[(long)(p.H + z * d + n) * p.H + c];
    }

    /// <summary>
    /// Kernel: per row a group of Heads warps, warp hd for head hd (the warps of a row read the same text states, so all but
    /// the first find them in L1). Lane l holds channels 4(l + 32i) .. +3, i = 0..5, of r = W_kᵀq (r: (Heads, B, H)) and of
    /// the running mix. Over the text tokens in order: score_j = (r·hu_j + q·b_k)·Scale (the warp's sum by xor butterfly, the
    /// same bits in every lane), an online softmax that starts from the skeleton's own score q·k_x·Scale (the running max
    /// rescales the sums and the mix when it rises; <see cref="FloatMath.ExpNonPositive"/>), m += e_j·hu_j; token j + 1's
    /// chunks are loaded before token j is scored. Writes mix (B, Heads, H) = m / Σ and weights (B, Heads, 2) = (Σ_j p_j, p_x).
    /// hu (B, L, H), r and mix 16-byte aligned, <see cref="MixFits"/>. Launch: grid B, group 32·Heads, <see cref="MixSpecialization"/>.
    /// </summary>
    public static void SkeletonRowMix(ArrayView<float> qkvX, ArrayView<float> hu, ArrayView<float> bKv, ArrayView<float> r, ArrayView<float> mix,
        ArrayView<float> weights, AttentionArgs p)
    {
        int row = Grid.IdxX, hd = Group.IdxX >> 5, lane = Group.IdxX & 31;
        int d = p.H / p.Heads, h4 = p.H >> 2;
        long xq = (long)row * 3 * p.H + hd * d;
        float qb = 0, qk = 0;
        for (int n = lane; n < d; n += 32)
        {
            float q = qkvX[xq + n];
            qb += q * bKv[hd * d + n];
            qk += q * qkvX[xq + p.H + n];
        }
        qb = WarpSumF(qb);
        float max = WarpSumF(qk) * p.Scale;                 // the skeleton token's score starts the running max
        bool c0 = lane < h4, c1 = lane + 32 < h4, c2 = lane + 64 < h4, c3 = lane + 96 < h4, c4 = lane + 128 < h4, c5 = lane + 160 < h4;
        var r4 = r.Cast<Vec4>().AsAligned(16);
        var u4 = hu.Cast<Vec4>().AsAligned(16);
        long rc = ((long)hd * p.B + row) * h4 + lane;
        Vec4 r0 = default, r1 = default, r2 = default, r3 = default, rr4 = default, r5 = default;
        if (c0) r0 = r4[rc];
        if (c1) r1 = r4[rc + 32];
        if (c2) r2 = r4[rc + 64];
        if (c3) r3 = r4[rc + 96];
        if (c4) rr4 = r4[rc + 128];
        if (c5) r5 = r4[rc + 160];
        long uc = (long)row * p.L * h4 + lane;
        Vec4 u0 = default, u1 = default, u2 = default, u3 = default, uu4 = default, u5 = default;
        if (p.L > 0)
        {
            if (c0) u0 = u4[uc];
            if (c1) u1 = u4[uc + 32];
            if (c2) u2 = u4[uc + 64];
            if (c3) u3 = u4[uc + 96];
            if (c4) uu4 = u4[uc + 128];
            if (c5) u5 = u4[uc + 160];
        }
        Vec4 m0 = default, m1 = default, m2 = default, m3 = default, m4 = default, m5 = default;
        float ex = 1f, text = 0f;                           // e_x and Σ_j e_j relative to the running max
        for (int j = 0; j < p.L; j++)
        {
            // Token j + 1's chunks: in flight while token j is scored.
            uc += h4;
            Vec4 n0 = default, n1 = default, n2 = default, n3 = default, n4 = default, n5 = default;
            if (j + 1 < p.L)
            {
                if (c0) n0 = u4[uc];
                if (c1) n1 = u4[uc + 32];
                if (c2) n2 = u4[uc + 64];
                if (c3) n3 = u4[uc + 96];
                if (c4) n4 = u4[uc + 128];
                if (c5) n5 = u4[uc + 160];
            }
            float dot = Dot(r0, u0) + Dot(r1, u1) + Dot(r2, u2) + Dot(r3, u3) + Dot(rr4, uu4) + Dot(r5, u5);
            float s = (WarpSumF(dot) + qb) * p.Scale;
            if (s > max)                                    // uniform across the warp: every lane holds the same s
            {
                float f = FloatMath.ExpNonPositive(max - s);
                ex *= f;
                text *= f;
                m0 = Scaled(m0, f); m1 = Scaled(m1, f); m2 = Scaled(m2, f); m3 = Scaled(m3, f); m4 = Scaled(m4, f); m5 = Scaled(m5, f);
                max = s;
            }
            float w = FloatMath.ExpNonPositive(s - max);
            text += w;
            m0 = AddScaled(m0, w, u0); m1 = AddScaled(m1, w, u1); m2 = AddScaled(m2, w, u2);
            m3 = AddScaled(m3, w, u3); m4 = AddScaled(m4, w, uu4); m5 = AddScaled(m5, w, u5);
            u0 = n0; u1 = n1; u2 = n2; u3 = n3; uu4 = n4; u5 = n5;
        }
        float inv = 1f / (ex + text);
        var mix4 = mix.Cast<Vec4>().AsAligned(16);
        long mc = ((long)row * p.Heads + hd) * h4 + lane;
        if (c0) mix4[mc] = Scaled(m0, inv);
        if (c1) mix4[mc + 32] = Scaled(m1, inv);
        if (c2) mix4[mc + 64] = Scaled(m2, inv);
        if (c3) mix4[mc + 96] = Scaled(m3, inv);
        if (c4) mix4[mc + 128] = Scaled(m4, inv);
        if (c5) mix4[mc + 160] = Scaled(m5, inv);
        if (lane == 0)
        {
            long wi = ((long)row * p.Heads + hd) * 2;
            weights[wi] = text * inv;
            weights[wi + 1] = ex * inv;
        }
    }

    /// <summary>
    /// Kernel, thread e over B·H: outX[row, hd·D + n] = valueOut[hd, row, n] + Σ_j p_j · b_v[hd·D + n] + p_x · v_x[row, hd·D + n],
    /// valueOut (Heads, B, D) = W_v·m per head (the second K-split product), weights (B, Heads, 2) from <see cref="SkeletonRowMix"/>,
    /// b_v = bKv's second half, v_x the last H channels of qkvX's rows.
    /// </summary>
    public static void SkeletonRowCombine(Index1D e, ArrayView<float> qkvX, ArrayView<float> bKv, ArrayView<float> valueOut, ArrayView<float> weights,
        ArrayView<float> outX, AttentionArgs p)
    {
        int d = p.H / p.Heads;
        int row = e / p.H, c = e - row * p.H, hd = c / d, n = c - hd * d;
        long wi = ((long)row * p.Heads + hd) * 2;
        outX[e] = valueOut[((long)hd * p.B + row) * d + n] + weights[wi] * bKv[p.H + c] + weights[wi + 1] * qkvX[(long)row * 3 * p.H + 2 * p.H + c];
    }

    // The warp's sum by xor butterfly: each step adds the same two values in every lane pair, so every lane ends with the same bits.
    private static float WarpSumF(float v)
    {
        v += Warp.ShuffleXor(v, 16);
        v += Warp.ShuffleXor(v, 8);
        v += Warp.ShuffleXor(v, 4);
        v += Warp.ShuffleXor(v, 2);
        return v + Warp.ShuffleXor(v, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(Vec4 a, Vec4 b) => a.X * b.X + a.Y * b.Y + a.Z * b.Z + a.W * b.W;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vec4 Scaled(Vec4 v, float f)
    {
        Vec4 r;
        r.X = v.X * f; r.Y = v.Y * f; r.Z = v.Z * f; r.W = v.W * f;
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vec4 AddScaled(Vec4 acc, float w, Vec4 u)
    {
        Vec4 r;
        r.X = acc.X + w * u.X; r.Y = acc.Y + w * u.Y; r.Z = acc.Z + w * u.Z; r.W = acc.W + w * u.W;
        return r;
    }
}
