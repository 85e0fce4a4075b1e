using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Cpu;

/// <summary>
/// The managed CPU tier: Linear runs on the packed, cache-blocked SIMD <see cref="Gemm"/>; the
/// forward ops (LayerNorm-modulate, joint attention, SiLU/GELU, gated residual, adds) run in
/// float32 Vector256 SIMD with row blocks spread over <see cref="CpuParallel"/>. Backward ops other
/// than Linear's and the loss/optimiser inherit the reference implementation.
/// </summary>
public class CpuOps : ReferenceOps
{
    /// <inheritdoc/>
    public override string Name => "cpu";

    // Elementwise work is cut into blocks of this many elements (or rows of about this size).
    private const int Grain = 1 << 14;

    private static HostTensor H(Tensor t) => (HostTensor)t;

    /// <summary>An <see cref="IRangeWork"/> around a delegate (the training path may allocate).</summary>
    private sealed class Blocks(int total, int per, Action<int, int> body) : IRangeWork
    {
        public int Count => (total + per - 1) / per;
        public void Run(int index) => body(index * per, Math.Min(total, (index + 1) * per));
    }

    private static void ForBlocks(int total, int per, Action<int, int> body)
    {
        per = Math.Max(1, per);
        var w = new Blocks(total, per, body);
        CpuParallel.For(w.Count, w);
    }

    /// <inheritdoc/>
    public override void Linear(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF)
    {
        HostTensor hx = H(x), hw = H(w), hy = H(y);
        Gemm.MatMulABt(hx.Data, hx.Offset, hw.Data, hw.Offset, hy.Data, hy.Offset, rows, outF, inF, accumulate: false);
        if (b is not null) AddBroadcastRows(y, b, rows);
    }

    /// <inheritdoc/>
    public override void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, int rows, int inF, int outF, bool accumulateDx)
    {
        HostTensor hdy = H(dy), hx = H(x), hw = H(w), hdw = H(dw);
        if (dx is not null)
        {
            var hdx = H(dx);
            Gemm.MatMulAB(hdy.Data, hdy.Offset, hw.Data, hw.Offset, hdx.Data, hdx.Offset, rows, inF, outF, accumulateDx);
        }
        Gemm.MatMulAtB(hdy.Data, hdy.Offset, hx.Data, hx.Offset, hdw.Data, hdw.Offset, outF, inF, rows, accumulate: true);
        if (db is null) return;
        // db += the column sums of dy, each column summed in row order (column blocks in parallel).
        var hdb = H(db);
        ForBlocks(outF, BiasColumns, (s, e) =>
        {
            var bias = hdb.Data.AsSpan(hdb.Offset + s, e - s);
            for (int r = 0; r < rows; r++)
                Gemm.Axpy(1f, hdy.Data.AsSpan(hdy.Offset + r * outF + s, e - s), bias);
        });
    }

    // Columns per block of a bias gradient's column sums.
    private const int BiasColumns = 64;

    /// <inheritdoc/>
    public override void Add(Tensor a, Tensor b, Tensor y)
    {
        HostTensor ha = H(a), hb = H(b), hy = H(y);
        if (ha.Length != hy.Length || hb.Length != hy.Length) throw new ArgumentException($"Add: lengths {ha.Length}, {hb.Length}, {hy.Length} differ");
        ForBlocks(hy.Length, Grain, (s, e) => CpuResidual.Add(ha.Data.AsSpan(ha.Offset + s, e - s), hb.Data.AsSpan(hb.Offset + s, e - s), hy.Data.AsSpan(hy.Offset + s, e - s)));
    }

    /// <inheritdoc/>
    public override void AddBroadcastRows(Tensor y, Tensor bias, int rows)
    {
        HostTensor hy = H(y), hb = H(bias);
        int w = hb.Length;
        ForBlocks(rows, Math.Max(1, Grain / Math.Max(1, w)), (s, e) =>
        {
            for (int r = s; r < e; r++)
            {
                var row = hy.Data.AsSpan(hy.Offset + r * w, w);
                CpuResidual.Add(row, hb.Span, row);
            }
        });
    }

    /// <inheritdoc/>
    public override void Silu(Tensor x, Tensor y)
    {
        HostTensor hx = H(x), hy = H(y);
        ForBlocks(hx.Length, Grain, (s, e) => CpuActivations.Silu(hx.Span, hy.Span, s, e));
    }

    /// <inheritdoc/>
    public override void GeluTanh(Tensor x, Tensor y)
    {
        HostTensor hx = H(x), hy = H(y);
        ForBlocks(hx.Length, Grain, (s, e) => CpuActivations.GeluTanh(hx.Span, hy.Span, s, e));
    }

    /// <inheritdoc/>
    public override void LayerNormModulate(Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor y, Tensor mean, Tensor rstd, int b, int n, int h)
    {
        HostTensor hx = H(x), hm = H(mod), hy = H(y), hmean = H(mean), hrstd = H(rstd);
        ForBlocks(b * n, Math.Max(1, Grain / h), (s, e) =>
            CpuLayerNorm.ForwardRows(hx.Span, hm.Span, chunks, shiftChunk, scaleChunk, hy.Span, hmean.Span, hrstd.Span, n, h, s, e));
    }

    /// <inheritdoc/>
    public override void GatedResidual(Tensor x, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor output, int b, int n, int h)
    {
        HostTensor hx = H(x), hm = H(mod), hy = H(y), ho = H(output);
        ForBlocks(b * n, Math.Max(1, Grain / h), (s, e) => CpuResidual.GatedRows(hx.Span, hm.Span, chunks, gateChunk, hy.Span, ho.Span, n, h, s, e));
    }

    /// <inheritdoc/>
    public override void JointAttention(Tensor qkvX, Tensor qkvU, Tensor probs, Tensor outX, Tensor outU, int b, int l, int h, int heads)
    {
        HostTensor qx = H(qkvX), qu = H(qkvU), p = H(probs), ox = H(outX), ou = H(outU);
        ForBlocks(b, 1, (s, e) => CpuAttention.ForwardRows(qx.Span, qu.Span, p.Span, ox.Span, ou.Span, l, h, heads, s, e));
    }

    /// <inheritdoc/>
    /// <remarks>The reference tier's loops (float64 sums) on row blocks across the threads: a forward-only pass runs it once, in
    /// its last block, a thirty-sixth of that block's attention.</remarks>
    public override void JointAttentionSkeletonRow(Tensor qkvX, Tensor textKv, int textKvWidth, Tensor outX, int b, int l, int h, int heads)
    {
        CheckSkeletonRow(qkvX, textKv, textKvWidth, outX, b, l, h);
        HostTensor qx = H(qkvX), kv = H(textKv), ox = H(outX);
        ForBlocks(b, 1, (s, e) => Reference.JointAttention.SkeletonRow<float>(qx.Span.Slice(s * 3 * h, (e - s) * 3 * h),
            kv.Span.Slice(s * l * textKvWidth, (e - s) * l * textKvWidth), textKvWidth, ox.Span.Slice(s * h, (e - s) * h), e - s, l, h, heads));
    }

    /// <remarks>Reassociated (W_kᵀq and W_v·mix per head as products, <see cref="CpuAttention.SkeletonRowMix"/> between them): per row ~3·H² multiply-adds instead of the text keys' and
    /// values' 2·L·H².</remarks>
    public override void JointAttentionSkeletonRowFromText(Tensor qkvX, Tensor hu, Tensor wKv, Tensor bKv, Tensor scratch, Tensor outX,
        int b, int l, int h, int heads)
    {
        CheckSkeletonRowFromText(qkvX, hu, wKv, bKv, scratch, outX, b, l, h, heads);
        if (b == 0) return;
        HostTensor qx = H(qkvX), u = H(hu), w = H(wKv), bias = H(bKv), sc = H(scratch), ox = H(outX);
        int d = h / heads;
        // Scratch: queries by head (heads, B, D), W_kᵀq (heads, B, H), the mixed states (heads, B, H), W_v·mix (heads, B, D).
        int qh = sc.Offset, r = qh + b * h, mix = r + heads * b * h, vOut = mix + heads * b * h;
        ForBlocks(b, 64, (s, e) => CpuAttention.SkeletonRowQueries(qx.Span, sc.Data.AsSpan(qh, b * h), b, h, heads, s, e));
        for (int hd = 0; hd < heads; hd++)                       // W_kᵀq per head: (B, D)·(D, H), W_k's rows of head hd
            Gemm.MatMulAB(sc.Data, qh + hd * b * d, w.Data, w.Offset + hd * d * h, sc.Data, r + hd * b * h, b, h, d, accumulate: false);
        float scale = 1f / MathF.Sqrt(d);
        var weights = new float[b * heads * 2];                 // per row and head: Σ_text p, p_x
        ForBlocks(b, 8, (s, e) => CpuAttention.SkeletonRowMix(qx.Data.AsSpan(qx.Offset), u.Data.AsSpan(u.Offset), bias.Data.AsSpan(bias.Offset, h),
            sc.Data.AsSpan(r, heads * b * h), sc.Data.AsSpan(mix, heads * b * h), weights, b, l, h, heads, scale, s, e));
        for (int hd = 0; hd < heads; hd++)                       // W_v·mix per head: (B, H)·(D, H)ᵀ, W_v's rows of head hd
            Gemm.MatMulABt(sc.Data, mix + hd * b * h, w.Data, w.Offset + (h + hd * d) * h, sc.Data, vOut + hd * b * d, b, d, h, accumulate: false);
        ForBlocks(b, 64, (s, e) => CpuAttention.SkeletonRowCombine(qx.Span, bias.Data.AsSpan(bias.Offset + h, h), sc.Data.AsSpan(vOut, b * h), weights,
            ox.Span, b, h, heads, s, e));
    }

    /// <inheritdoc/>
    public override void SiluBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate)
    {
        HostTensor hx = H(x), hdy = H(dy), hdx = H(dx);
        ForBlocks(hx.Length, Grain, (s, e) => CpuActivations.SiluBackward(hx.Span, hdy.Span, hdx.Span, accumulate, s, e));
    }

    /// <inheritdoc/>
    public override void GeluTanhBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate)
    {
        HostTensor hx = H(x), hdy = H(dy), hdx = H(dx);
        ForBlocks(hx.Length, Grain, (s, e) => CpuActivations.GeluTanhBackward(hx.Span, hdy.Span, hdx.Span, accumulate, s, e));
    }

    /// <inheritdoc/>
    public override void LayerNormModulateBackward(Tensor dy, Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor mean, Tensor rstd,
        Tensor dx, Tensor dmod, int b, int n, int h, bool accumulateDx)
    {
        HostTensor hdy = H(dy), hx = H(x), hm = H(mod), hmean = H(mean), hrstd = H(rstd), hdx = H(dx), hdm = H(dmod);
        ForBlocks(b, Math.Max(1, Grain / Math.Max(1, n * h)), (s, e) => CpuLayerNorm.BackwardSamples(hdy.Span, hx.Span, hm.Span, chunks, shiftChunk, scaleChunk,
            hmean.Span, hrstd.Span, hdx.Span, hdm.Span, n, h, accumulateDx, s, e));
    }

    /// <inheritdoc/>
    public override void GatedResidualBackward(Tensor dout, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor dy, Tensor dmod, int b, int n, int h)
    {
        HostTensor hd = H(dout), hm = H(mod), hy = H(y), hdy = H(dy), hdm = H(dmod);
        ForBlocks(b, Math.Max(1, Grain / Math.Max(1, n * h)), (s, e) => CpuResidual.GatedBackwardSamples(hd.Span, hm.Span, chunks, gateChunk, hy.Span, hdy.Span, hdm.Span, n, h, s, e));
    }

    /// <inheritdoc/>
    public override void JointAttentionBackward(Tensor dOutX, Tensor dOutU, Tensor qkvX, Tensor qkvU, Tensor probs, Tensor dqkvX, Tensor dqkvU,
        int b, int l, int h, int heads)
    {
        HostTensor dox = H(dOutX), dou = H(dOutU), qx = H(qkvX), qu = H(qkvU), p = H(probs), dqx = H(dqkvX), dqu = H(dqkvU);
        ForBlocks(b, 1, (s, e) => CpuAttention.BackwardRows(dox.Span, dou.Span, qx.Span, qu.Span, p.Span, dqx.Span, dqu.Span, l, h, heads, s, e));
    }

    /// <inheritdoc/>
    public override void AdamWStep(Tensor p, Tensor g, Tensor m, Tensor v, double lr, AdamWConfig cfg, int step)
    {
        HostTensor hp = H(p), hg = H(g), hm = H(m), hv = H(v);
        double bc1 = 1 - Math.Pow(cfg.Beta1, step), bc2 = Math.Sqrt(1 - Math.Pow(cfg.Beta2, step));
        double decay = 1 - lr * cfg.WeightDecay, stepSize = lr / bc1;
        ForBlocks(hp.Length, Grain, (s, e) =>
        {
            Span<float> ps = hp.Span, gs = hg.Span, ms = hm.Span, vs = hv.Span;
            int i = s;
            if (Vector256.IsHardwareAccelerated)
            {
                // Eight elements at a time in float64, the same operations in the same order as the scalar loop
                // below (no fused multiply-adds), so both give the same bits.
                var b1 = Vector256.Create(cfg.Beta1); var c1 = Vector256.Create(1 - cfg.Beta1);
                var b2 = Vector256.Create(cfg.Beta2); var c2 = Vector256.Create(1 - cfg.Beta2);
                var dec = Vector256.Create(decay); var st = Vector256.Create(stepSize);
                var bc = Vector256.Create(bc2); var eps = Vector256.Create(cfg.Eps);
                ref float pp = ref MemoryMarshal.GetReference(ps), pg = ref MemoryMarshal.GetReference(gs);
                ref float pm = ref MemoryMarshal.GetReference(ms), pv = ref MemoryMarshal.GetReference(vs);
                for (; i <= e - 8; i += 8)
                {
                    var (gLo, gHi) = Vector256.Widen(Vector256.LoadUnsafe(ref pg, (nuint)i));
                    var (mLo, mHi) = Vector256.Widen(Vector256.LoadUnsafe(ref pm, (nuint)i));
                    var (vLo, vHi) = Vector256.Widen(Vector256.LoadUnsafe(ref pv, (nuint)i));
                    var (pLo, pHi) = Vector256.Widen(Vector256.LoadUnsafe(ref pp, (nuint)i));
                    mLo = b1 * mLo + c1 * gLo; mHi = b1 * mHi + c1 * gHi;
                    vLo = b2 * vLo + c2 * gLo * gLo; vHi = b2 * vHi + c2 * gHi * gHi;
                    pLo = pLo * dec - st * mLo / (Vector256.Sqrt(vLo) / bc + eps);
                    pHi = pHi * dec - st * mHi / (Vector256.Sqrt(vHi) / bc + eps);
                    Vector256.Narrow(pLo, pHi).StoreUnsafe(ref pp, (nuint)i);
                    Vector256.Narrow(mLo, mHi).StoreUnsafe(ref pm, (nuint)i);
                    Vector256.Narrow(vLo, vHi).StoreUnsafe(ref pv, (nuint)i);
                }
            }
            for (; i < e; i++)
            {
                double gi = gs[i];
                double mi = cfg.Beta1 * ms[i] + (1 - cfg.Beta1) * gi;
                double vi = cfg.Beta2 * vs[i] + (1 - cfg.Beta2) * gi * gi;
                ps[i] = (float)(ps[i] * decay - stepSize * mi / (Math.Sqrt(vi) / bc2 + cfg.Eps));
                ms[i] = (float)mi; vs[i] = (float)vi;
            }
        });
    }
}
