using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tdsm.Cpu;

/// <summary>
/// Joint attention over [skeleton token, L text tokens] (S = L + 1), CPU tier, forward and backward.
/// qkvX (B, 3H) and qkvU (B, L, 3H) hold [q | k | v], heads of D = H/heads channels; outX (B, H),
/// outU (B, L, H); probs (B, heads, S, S) is written when not empty (training needs it for the
/// backward; inference passes an empty span). Per (sample, head) the head's Q, V and Kᵀ are gathered
/// into contiguous scratch; the scores of a query are 8 keys per Vector256 over Kᵀ, P·V a Vector256 loop over
/// channels, and the softmax float32 after subtracting the row max (Vector256 exp, scalar sum in token order).
/// </summary>
internal static class CpuAttention
{
    [ThreadStatic] private static float[]? _scratch;

    /// <summary>Rows [b0, b1) of the skeleton row's queries by head: qh (heads, B, D) from the first H channels of qkvX (B, 3H).</summary>
    public static void SkeletonRowQueries(ReadOnlySpan<float> qkvX, Span<float> qh, int b, int h, int heads, int b0, int b1)
    {
        int d = h / heads;
        for (int bi = b0; bi < b1; bi++)
            for (int hd = 0; hd < heads; hd++)
                qkvX.Slice(bi * 3 * h + hd * d, d).CopyTo(qh.Slice((hd * b + bi) * d, d));
    }

    /// <summary>
    /// Rows [b0, b1) of the skeleton row's output: outX[bi, hd·D + n] = vOut[hd, bi, n] + Σ_text p · bV[hd·D + n] + p_x · v_x[bi, hd·D + n],
    /// vOut (heads, B, D) the W_v·mix products, weights (B, heads, 2) from <see cref="SkeletonRowMix"/>, v_x qkvX's last H channels.
    /// </summary>
    public static void SkeletonRowCombine(ReadOnlySpan<float> qkvX, ReadOnlySpan<float> bV, ReadOnlySpan<float> vOut, float[] weights, Span<float> outX,
        int b, int h, int heads, int b0, int b1)
    {
        int d = h / heads;
        for (int bi = b0; bi < b1; bi++)
            for (int hd = 0; hd < heads; hd++)
            {
                float pText = weights[(bi * heads + hd) * 2], pX = weights[(bi * heads + hd) * 2 + 1];
                for (int n = 0; n < d; n++)
                {
                    int c = hd * d + n;
                    outX[bi * h + c] = vOut[(hd * b + bi) * d + n] + pText * bV[c] + pX * qkvX[bi * 3 * h + 2 * h + c];
                }
            }
    }

    /// <summary>
    /// The softmax and the mix of <see cref="CpuOps.JointAttentionSkeletonRowFromText"/> for rows [b0, b1): per row and head the
    /// text scores (W_kᵀq)·hu_j + q·b_k and the skeleton's own q·k_x (scaled), their softmax (float32 after the max), the mixed
    /// states Σ_j p_j hu_j into mix (heads, B, H), and Σ_j p_j, p_x into weights (B, heads, 2). r: W_kᵀq (heads, B, H).
    /// </summary>
    public static void SkeletonRowMix(ReadOnlySpan<float> qkvX, ReadOnlySpan<float> hu, ReadOnlySpan<float> bK, ReadOnlySpan<float> r, Span<float> mix,
        float[] weights, int b, int l, int h, int heads, float scale, int b0, int b1)
    {
        int d = h / heads;
        Span<float> e = l + 1 <= 256 ? stackalloc float[l + 1] : new float[l + 1];
        for (int bi = b0; bi < b1; bi++)
            for (int hd = 0; hd < heads; hd++)
            {
                var q = qkvX.Slice(bi * 3 * h + hd * d, d);
                var rRow = r.Slice((hd * b + bi) * h, h);
                float qb = Gemm.Dot(q, bK.Slice(hd * d, d));
                float max = e[l] = Gemm.Dot(q, qkvX.Slice(bi * 3 * h + h + hd * d, d)) * scale;   // e[l]: the skeleton token
                for (int j = 0; j < l; j++)
                {
                    e[j] = (Gemm.Dot(rRow, hu.Slice((bi * l + j) * h, h)) + qb) * scale;
                    max = MathF.Max(max, e[j]);
                }
                float sum = 0, text = 0;
                for (int j = 0; j <= l; j++) { e[j] = MathF.Exp(e[j] - max); sum += e[j]; }
                var m = mix.Slice((hd * b + bi) * h, h);
                m.Clear();
                for (int j = 0; j < l; j++)
                {
                    float p = e[j] / sum;
                    text += p;
                    Gemm.Axpy(p, hu.Slice((bi * l + j) * h, h), m);
                }
                weights[(bi * heads + hd) * 2] = text;
                weights[(bi * heads + hd) * 2 + 1] = e[l] / sum;
            }
    }

    /// <summary>Samples [b0, b1).</summary>
    public static unsafe void ForwardRows(ReadOnlySpan<float> qkvX, ReadOnlySpan<float> qkvU, Span<float> probs, Span<float> outX, Span<float> outU,
        int l, int h, int heads, int b0, int b1)
    {
        int s = l + 1, sp = Padded(s), d = h / heads, need = 3 * sp * d + s * sp + s;
        var scratch = _scratch is { } sc && sc.Length >= need ? sc : (_scratch = new float[need]);
        float scale = 1f / MathF.Sqrt(d);
        fixed (float* px = qkvX, pu = qkvU, pox = outX, pou = outU, ps = scratch)
        {
            float* q = ps, kT = ps + sp * d, v = kT + sp * d, p = v + sp * d, rowSum = p + s * sp;
            new Span<float>(kT, sp * d).Clear(); // the padding keys stay 0
            for (int bi = b0; bi < b1; bi++)
                for (int hd = 0; hd < heads; hd++)
                {
                    // Gather the head's q and v rows and kᵀ (token 0 from qkvX, tokens 1..L from qkvU).
                    for (int t = 0; t < s; t++)
                    {
                        float* src = t == 0 ? px + (long)bi * 3 * h : pu + ((long)bi * l + t - 1) * 3 * h;
                        Copy(src + hd * d, q + t * d, d);
                        for (int c = 0; c < d; c++) kT[c * sp + t] = src[h + hd * d + c];
                        Copy(src + 2 * h + hd * d, v + t * d, d);
                    }
                    Product(q, d, s, d, kT, sp, sp, scale, p, sp);                 // scores (S, sp) = Q·Kᵀ·scale
                    for (int i = 0; i < s; i++) ExpMinus(p + i * sp, sp, RowMax(p + i * sp, s));
                    // Each row's sum is a scalar float32 sum in token order: the vector-summed variant moved the
                    // ill-conditioned out.m0.loss_triplet (a difference of row means at margin 0) of DiTTests' fixture
                    // from 7.3e-6 to 1.0e-5 relative, so the sums stay scalar, four rows at a time so that their
                    // chains of dependent adds overlap.
                    RowReductions.Sums(p, sp, s, s, rowSum);
                    for (int i = 0; i < s; i++)
                    {
                        float* pi = p + i * sp;
                        Scale(pi, s, 1f / rowSum[i]);
                        if (!probs.IsEmpty) new Span<float>(pi, s).CopyTo(probs.Slice(((bi * heads + hd) * s + i) * s, s));
                    }
                    Product(p, sp, 1, s, v, d, d, 1f, pox + (long)bi * h + hd * d, 0);              // P·V: token 0 into outX
                    Product(p + sp, sp, l, s, v, d, d, 1f, pou + (long)bi * l * h + hd * d, h);     // tokens 1..L into outU
                }
        }
    }

    // Key counts rounded up to whole Vector256s: kᵀ / vᵀ rows and score rows are this long.
    private static int Padded(int s) => (s + 7) & ~7;

    // ds[j] = p[j]·(dp[j] − dot)·scale over j in [0, n): elementwise, the same bits at any width.
    private static unsafe void SoftmaxGradRow(float* p, float* dp, float dot, float scale, float* ds, int n)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vdot = Vector256.Create(dot), vs = Vector256.Create(scale);
            for (; j <= n - 8; j += 8) Vector256.Store(Vector256.Load(p + j) * (Vector256.Load(dp + j) - vdot) * vs, ds + j);
        }
        for (; j < n; j++) ds[j] = p[j] * (dp[j] - dot) * scale;
    }

    // max over p[0..n) (exact in any order: 8 lanes, then the lanes and the tail).
    private static unsafe float RowMax(float* p, int n)
    {
        float max = float.NegativeInfinity;
        int j = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Load(p);
            for (j = 8; j <= n - 8; j += 8) m = Vector256.Max(m, Vector256.Load(p + j));
            for (int lane = 0; lane < 8; lane++) max = Math.Max(max, m.GetElement(lane));
        }
        for (; j < n; j++) if (p[j] > max) max = p[j];
        return max;
    }

    // p[0..n) *= f, each element one product (the same bits at any width).
    private static unsafe void Scale(float* p, int n, float f)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vf = Vector256.Create(f);
            for (; j <= n - 8; j += 8) Vector256.Store(Vector256.Load(p + j) * vf, p + j);
        }
        for (; j < n; j++) p[j] *= f;
    }

    // p[j] = exp(p[j] - max) over sp entries (a multiple of 8).
    private static unsafe void ExpMinus(float* p, int sp, float max)
    {
        var m = Vector256.Create(max);
        for (int j = 0; j < sp; j += 8) Vector256.Store(Vector256.Exp(Vector256.Load(p + j) - m), p + j);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Copy(float* src, float* dst, int n) => Buffer.MemoryCopy(src, dst, n * sizeof(float), n * sizeof(float));

    /// <summary>
    /// o[i, j] = scale · Σ_t a[i, t]·b[t, j] for <paramref name="rows"/> rows of a (row pitch aPitch, <paramref name="inner"/>
    /// columns) and <paramref name="cols"/> columns of b (row pitch bPitch) into o (row pitch oPitch): the attention's
    /// small products (scores and ∂P over a transposed Kᵀ / Vᵀ, P·V and the backward's weighted sums). Each element sums
    /// over t in order, with fused multiply-adds on the columns the 8-wide blocks cover and plain ones on a tail of
    /// cols mod 8, on every path (so scalar and vector machines give the same bits). Two rows and 32 columns at a
    /// time: 8 independent accumulator chains hide the FMA latency, and each loaded b vector serves both rows.
    /// </summary>
    private static unsafe void Product(float* a, int aPitch, int rows, int inner, float* b, int bPitch, int cols, float scale, float* o, int oPitch, int aStep = 1)
    {
        int r = 0, c8 = cols & ~7;
        if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(scale);
            for (; r + 2 <= rows; r += 2)
            {
                float* a0r = a + (long)r * aPitch, a1r = a0r + aPitch, o0 = o + (long)r * oPitch, o1 = o0 + oPitch;
                int c = 0;
                for (; c <= cols - 32; c += 32)
                {
                    Vector256<float> x0 = default, x1 = default, x2 = default, x3 = default, y0 = default, y1 = default, y2 = default, y3 = default;
                    for (int t = 0; t < inner; t++)
                    {
                        float* bt = b + (long)t * bPitch + c;
                        Vector256<float> v0 = Vector256.Load(bt), v1 = Vector256.Load(bt + 8), v2 = Vector256.Load(bt + 16), v3 = Vector256.Load(bt + 24);
                        var u = Vector256.Create(a0r[(long)t * aStep]);
                        x0 = Vector256.FusedMultiplyAdd(u, v0, x0); x1 = Vector256.FusedMultiplyAdd(u, v1, x1);
                        x2 = Vector256.FusedMultiplyAdd(u, v2, x2); x3 = Vector256.FusedMultiplyAdd(u, v3, x3);
                        var w = Vector256.Create(a1r[(long)t * aStep]);
                        y0 = Vector256.FusedMultiplyAdd(w, v0, y0); y1 = Vector256.FusedMultiplyAdd(w, v1, y1);
                        y2 = Vector256.FusedMultiplyAdd(w, v2, y2); y3 = Vector256.FusedMultiplyAdd(w, v3, y3);
                    }
                    Vector256.Store(x0 * vs, o0 + c); Vector256.Store(x1 * vs, o0 + c + 8); Vector256.Store(x2 * vs, o0 + c + 16); Vector256.Store(x3 * vs, o0 + c + 24);
                    Vector256.Store(y0 * vs, o1 + c); Vector256.Store(y1 * vs, o1 + c + 8); Vector256.Store(y2 * vs, o1 + c + 16); Vector256.Store(y3 * vs, o1 + c + 24);
                }
                for (; c < c8; c += 8)
                {
                    Vector256<float> x0 = default, y0 = default;
                    for (int t = 0; t < inner; t++)
                    {
                        var v0 = Vector256.Load(b + (long)t * bPitch + c);
                        x0 = Vector256.FusedMultiplyAdd(Vector256.Create(a0r[(long)t * aStep]), v0, x0);
                        y0 = Vector256.FusedMultiplyAdd(Vector256.Create(a1r[(long)t * aStep]), v0, y0);
                    }
                    Vector256.Store(x0 * vs, o0 + c);
                    Vector256.Store(y0 * vs, o1 + c);
                }
                Tail(a0r, aStep, b, inner, bPitch, c8, cols, scale, o0);
                Tail(a1r, aStep, b, inner, bPitch, c8, cols, scale, o1);
            }
        }
        for (; r < rows; r++)
        {
            float* ar = a + (long)r * aPitch, or = o + (long)r * oPitch;
            int c = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var vs = Vector256.Create(scale);
                for (; c <= cols - 32; c += 32)
                {
                    Vector256<float> x0 = default, x1 = default, x2 = default, x3 = default;
                    for (int t = 0; t < inner; t++)
                    {
                        float* bt = b + (long)t * bPitch + c;
                        var u = Vector256.Create(ar[(long)t * aStep]);
                        x0 = Vector256.FusedMultiplyAdd(u, Vector256.Load(bt), x0); x1 = Vector256.FusedMultiplyAdd(u, Vector256.Load(bt + 8), x1);
                        x2 = Vector256.FusedMultiplyAdd(u, Vector256.Load(bt + 16), x2); x3 = Vector256.FusedMultiplyAdd(u, Vector256.Load(bt + 24), x3);
                    }
                    Vector256.Store(x0 * vs, or + c); Vector256.Store(x1 * vs, or + c + 8); Vector256.Store(x2 * vs, or + c + 16); Vector256.Store(x3 * vs, or + c + 24);
                }
                for (; c < c8; c += 8)
                {
                    Vector256<float> x0 = default;
                    for (int t = 0; t < inner; t++) x0 = Vector256.FusedMultiplyAdd(Vector256.Create(ar[(long)t * aStep]), Vector256.Load(b + (long)t * bPitch + c), x0);
                    Vector256.Store(x0 * vs, or + c);
                }
            }
            for (; c < c8; c++)
            {
                float acc = 0;
                for (int t = 0; t < inner; t++) acc = MathF.FusedMultiplyAdd(ar[(long)t * aStep], b[(long)t * bPitch + c], acc);
                or[c] = acc * scale;
            }
            Tail(ar, aStep, b, inner, bPitch, c8, cols, scale, or);
        }
    }

    // o[c] = scale · Σ_t a[t]·b[t, c] for the columns c in [c0, cols), plain multiply-adds.
    private static unsafe void Tail(float* a, int aStep, float* b, int inner, int bPitch, int c0, int cols, float scale, float* o)
    {
        for (int c = c0; c < cols; c++)
        {
            float acc = 0;
            for (int t = 0; t < inner; t++) acc += a[(long)t * aStep] * b[(long)t * bPitch + c];
            o[c] = acc * scale;
        }
    }

    [ThreadStatic] private static float[]? _backScratch;

    /// <summary>
    /// Backward for samples [b0, b1): per (sample, head) the head's q, k, Vᵀ and dO rows are gathered into
    /// contiguous scratch; the query pass gives ∂S = P∘(∂P − rowsum(P∘∂P))·scale with ∂P = dO·Vᵀ (8 keys per
    /// Vector256, as the forward's scores); then dq = ∂S·K, dk = ∂Sᵀ·Q and dv = Pᵀ·dO as weighted row sums, ∂Sᵀ and Pᵀ
    /// read in place down their columns. dqkvX / dqkvU are overwritten.
    /// </summary>
    public static unsafe void BackwardRows(ReadOnlySpan<float> dOutX, ReadOnlySpan<float> dOutU, ReadOnlySpan<float> qkvX, ReadOnlySpan<float> qkvU,
        ReadOnlySpan<float> probs, Span<float> dqkvX, Span<float> dqkvU, int l, int h, int heads, int b0, int b1)
    {
        int s = l + 1, sp = Padded(s), d = h / heads, need = 3 * s * d + sp * d + s * s + s * sp + s;
        float scale = 1f / MathF.Sqrt(d);
        var scratch = _backScratch is { } sc && sc.Length >= need ? sc : (_backScratch = new float[need]);
        fixed (float* pdx = dOutX, pdu = dOutU, px = qkvX, pu = qkvU, pp = probs, pgx = dqkvX, pgu = dqkvU, ps = scratch)
        {
            float* q = ps, k = q + s * d, vT = k + s * d, dO = vT + sp * d, ds = dO + s * d, dp = ds + s * s, dots = dp + s * sp;
            new Span<float>(vT, sp * d).Clear(); // the padding keys stay 0
            for (int b = b0; b < b1; b++)
                for (int hd = 0; hd < heads; hd++)
                {
                    int c0 = hd * d;
                    float* p = pp + (long)(b * heads + hd) * s * s;
                    for (int t = 0; t < s; t++)
                    {
                        float* src = t == 0 ? px + (long)b * 3 * h : pu + ((long)b * l + t - 1) * 3 * h;
                        float* dsrc = t == 0 ? pdx + (long)b * h : pdu + ((long)b * l + t - 1) * h;
                        Copy(src + c0, q + t * d, d);
                        Copy(src + h + c0, k + t * d, d);
                        for (int c = 0; c < d; c++) vT[c * sp + t] = src[2 * h + c0 + c];
                        Copy(dsrc + c0, dO + t * d, d);
                    }
                    Product(dO, d, s, d, vT, sp, sp, 1f, dp, sp);                  // ∂P (S, sp) = dO·Vᵀ
                    // rowsum(P∘∂P) as scalar sums in token order, four rows at a time (their dependent adds overlap).
                    RowReductions.Dots(p, s, dp, sp, s, s, dots);
                    for (int i = 0; i < s; i++) SoftmaxGradRow(p + i * s, dp + i * sp, dots[i], scale, ds + i * s, s);
                    // Token 0 into dqkvX, tokens 1..L into dqkvU (row pitch 3H): dq_t = Σ_j ∂S[t,j] k_j, dk_t = Σ_j ∂S[j,t] q_j,
                    // dv_t = Σ_j P[j,t] dO_j.
                    float* gx = pgx + (long)b * 3 * h + c0, gu = pgu + (long)b * l * 3 * h + c0;
                    Product(ds, s, 1, s, k, d, d, 1f, gx, 0);
                    Product(ds + s, s, l, s, k, d, d, 1f, gu, 3 * h);
                    // ∂Sᵀ and Pᵀ are read in place: A's row t is column t, its k-th value k rows further (aStep = S).
                    Product(ds, 1, 1, s, q, d, d, 1f, gx + h, 0, aStep: s);
                    Product(ds + 1, 1, l, s, q, d, d, 1f, gu + h, 3 * h, aStep: s);
                    Product(p, 1, 1, s, dO, d, d, 1f, gx + 2 * h, 0, aStep: s);
                    Product(p + 1, 1, l, s, dO, d, d, 1f, gu + 2 * h, 3 * h, aStep: s);
                }
        }
    }
}
