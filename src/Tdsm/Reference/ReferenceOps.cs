using Tdsm.Ops;
using Tdsm.Tensors;

namespace Tdsm.Reference;

/// <summary>
/// The reference tier: every op is the naive float64-accumulating implementation in this
/// namespace, run on float32 host tensors. Never optimised: it is the oracle.
/// </summary>
public class ReferenceOps : IOps
{
    public virtual string Name => "reference";

    protected static Span<float> S(Tensor t) => ((HostTensor)t).Span;
    protected static Span<float> SOrEmpty(Tensor? t) => t is null ? default : ((HostTensor)t).Span;

    public Tensor Allocate(params int[] shape) => new HostTensor(shape);

    public Tensor View(Tensor storage, int offset, params int[] shape)
    {
        var h = (HostTensor)storage;
        return new HostTensor(h.Data, h.Offset + offset, shape);
    }

    public void Upload(ReadOnlySpan<float> source, Tensor destination) => source.CopyTo(S(destination));
    public void Download(Tensor source, Span<float> destination) => S(source).CopyTo(destination);
    public void Zero(Tensor t) => S(t).Clear();

    public virtual void Add(Tensor a, Tensor b, Tensor y)
    {
        Span<float> sa = S(a), sb = S(b), sy = S(y);
        for (int i = 0; i < sy.Length; i++) sy[i] = sa[i] + sb[i];
    }

    public virtual void AddBroadcastRows(Tensor y, Tensor bias, int rows)
    {
        Span<float> sy = S(y), sb = S(bias);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < sb.Length; i++) sy[r * sb.Length + i] += sb[i];
    }

    public virtual void SumRowsInto(Tensor dy, Tensor db, int rows)
    {
        Span<float> sy = S(dy), sb = S(db);
        for (int i = 0; i < sb.Length; i++)
        {
            double s = sb[i];
            for (int r = 0; r < rows; r++) s += sy[r * sb.Length + i];
            sb[i] = (float)s;
        }
    }

    public virtual void Linear(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF) =>
        Reference.Linear.Forward<float>(S(x), S(w), SOrEmpty(b), S(y), rows, inF, outF);

    public virtual void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, int rows, int inF, int outF, bool accumulateDx) =>
        Reference.Linear.Backward<float>(S(dy), S(x), S(w), SOrEmpty(dx), S(dw), SOrEmpty(db), rows, inF, outF, accumulateDx);

    /// <summary>Linear, then GELU in place: the same values as the two ops (the GPU tier fuses them).</summary>
    public virtual void LinearGelu(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF)
    {
        Linear(x, w, b, y, rows, inF, outF);
        GeluTanh(y, y);
    }

    /// <summary>LinearBackward into dPre, then GELU' in place: the same values as the two ops (the GPU tier fuses them).</summary>
    public virtual void LinearBackwardGelu(Tensor dy, Tensor x, Tensor w, Tensor pre, Tensor dPre, Tensor dw, Tensor? db, int rows, int inF, int outF)
    {
        LinearBackward(dy, x, w, dPre, dw, db, rows, inF, outF, accumulateDx: false);
        GeluTanhBackward(pre, dPre, dPre, accumulate: false);
    }

    public virtual void Silu(Tensor x, Tensor y) => Activations.SiluForward<float>(S(x), S(y));
    public virtual void SiluBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate) => Activations.SiluBackward<float>(S(x), S(dy), S(dx), accumulate);
    public virtual void GeluTanh(Tensor x, Tensor y) => Activations.GeluTanhForward<float>(S(x), S(y));
    public virtual void GeluTanhBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate) => Activations.GeluTanhBackward<float>(S(x), S(dy), S(dx), accumulate);

    public virtual void LayerNormModulate(Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor y, Tensor mean, Tensor rstd, int b, int n, int h) =>
        Reference.LayerNormModulate.Forward<float>(S(x), S(mod), chunks, shiftChunk, scaleChunk, S(y), S(mean), S(rstd), b, n, h);

    public virtual void LayerNormModulateBackward(Tensor dy, Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor mean, Tensor rstd,
        Tensor dx, Tensor dmod, int b, int n, int h, bool accumulateDx) =>
        Reference.LayerNormModulate.Backward<float>(S(dy), S(x), S(mod), chunks, shiftChunk, scaleChunk, S(mean), S(rstd), S(dx), S(dmod), b, n, h, accumulateDx);

    public virtual void GatedResidual(Tensor x, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor output, int b, int n, int h) =>
        Reference.GatedResidual.Forward<float>(S(x), S(mod), chunks, gateChunk, S(y), S(output), b, n, h);

    /// <inheritdoc/>
    /// <remarks>The two ops one after the other (the CPU tiers gain nothing from a fused pass over rows already in cache).</remarks>
    public virtual void GatedResidualLayerNormModulate(Tensor x, Tensor gateMod, int gateChunks, int gateChunk, Tensor y, Tensor sum,
        Tensor lnMod, int lnChunks, int shiftChunk, int scaleChunk, Tensor ln, Tensor mean, Tensor rstd, int b, int n, int h)
    {
        GatedResidual(x, gateMod, gateChunks, gateChunk, y, sum, b, n, h);
        LayerNormModulate(sum, lnMod, lnChunks, shiftChunk, scaleChunk, ln, mean, rstd, b, n, h);
    }

    public virtual void GatedResidualBackward(Tensor dout, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor dy, Tensor dmod, int b, int n, int h) =>
        Reference.GatedResidual.Backward<float>(S(dout), S(mod), chunks, gateChunk, S(y), S(dy), S(dmod), b, n, h);

    public virtual void JointAttention(Tensor qkvX, Tensor qkvU, Tensor probs, Tensor outX, Tensor outU, int b, int l, int h, int heads) =>
        Reference.JointAttention.Forward<float>(S(qkvX), S(qkvU), S(probs), S(outX), S(outU), b, l, h, heads);

    public virtual void JointAttentionSkeletonRow(Tensor qkvX, Tensor textKv, int textKvWidth, Tensor outX, int b, int l, int h, int heads)
    {
        CheckSkeletonRow(qkvX, textKv, textKvWidth, outX, b, l, h);
        Reference.JointAttention.SkeletonRow<float>(S(qkvX), S(textKv), textKvWidth, S(outX), b, l, h, heads);
    }

    /// <summary>The shape checks of <see cref="JointAttentionSkeletonRow"/>, shared by the tiers.</summary>
    public static void CheckSkeletonRow(Tensor qkvX, Tensor textKv, int textKvWidth, Tensor outX, int b, int l, int h)
    {
        if (textKvWidth < 2 * h) throw new ArgumentException($"JointAttentionSkeletonRow: text rows of {textKvWidth} values cannot hold [k | v] of 2 x {h}", nameof(textKvWidth));
        if (qkvX.Length < (long)b * 3 * h) throw new ArgumentException($"JointAttentionSkeletonRow qkvX: expected {b}x{3 * h} values, got {qkvX.Length}", nameof(qkvX));
        if (textKv.Length < (long)b * l * textKvWidth) throw new ArgumentException($"JointAttentionSkeletonRow textKv: expected {b}x{l}x{textKvWidth} values, got {textKv.Length}", nameof(textKv));
        if (outX.Length < (long)b * h) throw new ArgumentException($"JointAttentionSkeletonRow outX: expected {b}x{h} values, got {outX.Length}", nameof(outX));
    }

    public virtual void JointAttentionSkeletonRowFromText(Tensor qkvX, Tensor hu, Tensor wKv, Tensor bKv, Tensor scratch, Tensor outX, int b, int l, int h, int heads)
    {
        CheckSkeletonRowFromText(qkvX, hu, wKv, bKv, scratch, outX, b, l, h, heads);
        Reference.JointAttention.SkeletonRowFromText<float>(S(qkvX), S(hu), S(wKv), S(bKv), S(outX), b, l, h, heads);
    }

    /// <summary>
    /// The scratch floats <see cref="JointAttentionSkeletonRowFromText"/> needs: what the GPU tier's reassociated form keeps
    /// (the queries, W_kᵀq and the mixed states per head, the value products, two weights per head, W_v regrouped by head), and
    /// at least the 2·L·H keys and values per row of its fallback.
    /// </summary>
    public static long SkeletonRowFromTextScratch(int b, int l, int h, int heads) =>
        Math.Max((long)b * l * 2 * h, 2L * b * heads * h + 2L * b * h + (long)h * h + 2L * b * heads);

    /// <summary>The shape checks of <see cref="JointAttentionSkeletonRowFromText"/>, shared by the tiers.</summary>
    public static void CheckSkeletonRowFromText(Tensor qkvX, Tensor hu, Tensor wKv, Tensor bKv, Tensor scratch, Tensor outX, int b, int l, int h, int heads)
    {
        const string op = "JointAttentionSkeletonRowFromText";
        if (heads <= 0 || h % heads != 0) throw new ArgumentException($"{op}: hidden {h} is not divisible by heads {heads}", nameof(heads));
        if (qkvX.Length < (long)b * 3 * h) throw new ArgumentException($"{op} qkvX: expected {b}x{3 * h} values, got {qkvX.Length}", nameof(qkvX));
        if (hu.Length < (long)b * l * h) throw new ArgumentException($"{op} hu: expected {b}x{l}x{h} values, got {hu.Length}", nameof(hu));
        if (wKv.Length < 2L * h * h) throw new ArgumentException($"{op} wKv: expected {2 * h}x{h} values, got {wKv.Length}", nameof(wKv));
        if (bKv.Length < 2L * h) throw new ArgumentException($"{op} bKv: expected {2 * h} values, got {bKv.Length}", nameof(bKv));
        long need = SkeletonRowFromTextScratch(b, l, h, heads);
        if (scratch.Length < need) throw new ArgumentException($"{op} scratch: expected {need} values, got {scratch.Length}", nameof(scratch));
        if (outX.Length < (long)b * h) throw new ArgumentException($"{op} outX: expected {b}x{h} values, got {outX.Length}", nameof(outX));
    }

    public virtual void JointAttentionBackward(Tensor dOutX, Tensor dOutU, Tensor qkvX, Tensor qkvU, Tensor probs, Tensor dqkvX, Tensor dqkvU,
        int b, int l, int h, int heads) =>
        Reference.JointAttention.Backward<float>(S(dOutX), S(dOutU), S(qkvX), S(qkvU), S(probs), S(dqkvX), S(dqkvU), b, l, h, heads);

    public virtual void TimestepEmbedding(Tensor t, Tensor emb, int b) => Reference.TimestepEmbedding.Forward<float>(S(t), S(emb), b);

    public virtual void QSample(Tensor z0, Tensor eps, Tensor t, ReadOnlySpan<float> alphasCumprod, Tensor zt, int b, int c) =>
        NoiseSchedule.QSample<float>(S(z0), S(eps), S(t), alphasCumprod, S(zt), b, c);

    public virtual void TdLoss(Tensor pred, Tensor eps, Tensor mask, Tensor pos, Tensor neg, Tensor dpred, Tensor loss, int b, int c, double margin, double lambda)
    {
        if (loss.Length != 3) throw new ArgumentException($"TdLoss: loss must hold 3 values, got {loss}");
        var v = Reference.TdLoss.Forward<float>(S(pred), S(eps), S(mask), S(pos), S(neg), S(dpred), b, c, margin, lambda);
        Span<float> l = S(loss);
        l[0] = (float)v.Loss; l[1] = (float)v.Diffusion; l[2] = (float)v.Triplet;
    }

    public virtual void RowMse(Tensor pred, Tensor eps, Tensor score, int b, int c, bool accumulate)
    {
        Span<float> p = S(pred), e = S(eps), s = S(score);
        bool broadcast = e.Length == c;
        for (int i = 0; i < b; i++)
        {
            double acc = 0;
            for (int k = 0; k < c; k++) { double d = p[i * c + k] - (double)e[(broadcast ? 0 : i * c) + k]; acc += d * d; }
            s[i] = accumulate ? (float)(s[i] + acc / c) : (float)(acc / c);
        }
    }

    public virtual void ArgMinRows(Tensor scores, Tensor index, int rows, int cols)
    {
        Span<float> s = S(scores), ix = S(index);
        if (s.Length < rows * cols || ix.Length < rows) throw new ArgumentException($"ArgMinRows: scores {scores} / index {index} hold fewer than {rows} rows of {cols}");
        for (int r = 0; r < rows; r++)
        {
            int best = 0;
            for (int k = 1; k < cols; k++) if (s[r * cols + k] < s[r * cols + best]) best = k;
            ix[r] = best;
        }
    }

    public virtual void AdamWStep(Tensor p, Tensor g, Tensor m, Tensor v, double lr, AdamWConfig cfg, int step) =>
        AdamW.Step<float>(S(p), S(g), S(m), S(v), lr, cfg, step);

    public virtual void GatherRows(Tensor table, ReadOnlySpan<int> index, Tensor output, int width)
    {
        Span<float> src = S(table), dst = S(output);
        int classes = src.Length / width;
        for (int r = 0; r < index.Length; r++)
        {
            if ((uint)index[r] >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(index), $"class index {index[r]} outside [0, {classes})");
            src.Slice(index[r] * width, width).CopyTo(dst.Slice(r * width, width));
        }
    }

    public virtual void GatherRows(Tensor table, Tensor index, Tensor output, int width)
    {
        Span<float> idx = S(index);
        var ints = new int[idx.Length];
        for (int i = 0; i < ints.Length; i++) ints[i] = (int)idx[i];
        GatherRows(table, ints, output, width);
    }

    public void Copy(Tensor source, Tensor destination)
    {
        if (source.Length != destination.Length) throw new ArgumentException($"Copy: {source} into {destination}");
        S(source).CopyTo(S(destination));
    }

    public virtual void SampleNormal(Tensor destination, ulong seed, ulong stream)
    {
        var d = S(destination);
        for (int i = 0; i < d.Length; i++) d[i] = (float)Tensors.CounterRng.Normal(seed, stream, (ulong)i);
    }

    public virtual void SampleBelow(Tensor destination, int n, ulong seed, ulong stream)
    {
        var d = S(destination);
        for (int i = 0; i < d.Length; i++) d[i] = Tensors.CounterRng.Below(n, seed, stream, (ulong)i);
    }

    public virtual void NotEqual(Tensor a, Tensor b, Tensor mask)
    {
        Span<float> sa = S(a), sb = S(b), m = S(mask);
        for (int i = 0; i < m.Length; i++) m[i] = sa[i] != sb[i] ? 1f : 0f;
    }
}
