using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Ops;

/// <summary>
/// The op set the TDSM model is written against, implemented once per tier (reference oracle,
/// managed CPU, ILGPU). Shape letters: R rows, B samples, N tokens, L text tokens, H hidden,
/// C channels. Activation gradients overwrite their output unless an <c>accumulate</c> flag says
/// otherwise; parameter gradients always accumulate (+=).
/// </summary>
public interface IOps
{
    /// <summary>Name of the tier ("reference", "cpu", "gpu").</summary>
    string Name { get; }

    /// <summary>A zero-filled tensor.</summary>
    Tensor Allocate(params int[] shape);

    /// <summary>A view of a window of <paramref name="storage"/> starting at <paramref name="offset"/>, with the given shape.</summary>
    Tensor View(Tensor storage, int offset, params int[] shape);

    /// <summary>Copies host values into a tensor.</summary>
    void Upload(ReadOnlySpan<float> source, Tensor destination);

    /// <summary>Copies a tensor's values to the host.</summary>
    void Download(Tensor source, Span<float> destination);

    /// <summary>Sets every element to 0.</summary>
    void Zero(Tensor t);

    /// <summary>y = a + b, elementwise (same length).</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>y (R, L·H) += bias (L·H) broadcast over rows (positional embeddings).</summary>
    void AddBroadcastRows(Tensor y, Tensor bias, int rows);

    /// <summary>db (L·H) += Σ_rows dy (R, L·H).</summary>
    void SumRowsInto(Tensor dy, Tensor db, int rows);

    /// <summary>y (R, Out) = x (R, In) Wᵀ + b; W is (Out, In); b may be null.</summary>
    void Linear(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF);

    /// <summary>
    /// y (R, Out) = GELU_tanh(x Wᵀ + b): the MLP's first Linear and its activation in one op, for
    /// forward-only passes that need no pre-activation (the GPU fuses the GELU into the GEMM's epilogue).
    /// </summary>
    void LinearGelu(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF);

    /// <summary>
    /// The forward-only MLP: y (R, Out) = GELU_tanh(x W1ᵀ + b1) W2ᵀ + b2, with hidden (R, Hid) as scratch. By default
    /// <see cref="LinearGelu"/> then <see cref="Linear"/>; the GPU tier with packed bf16 operands hands the hidden
    /// activations from the first product's epilogue to the second as bf16 pairs (hidden is then not written).
    /// </summary>
    void Mlp(Tensor x, Tensor w1, Tensor? b1, Tensor hidden, Tensor w2, Tensor? b2, Tensor y, int rows, int inF, int hiddenF, int outF)
    {
        LinearGelu(x, w1, b1, hidden, rows, inF, hiddenF);
        Linear(hidden, w2, b2, y, rows, hiddenF, outF);
    }

    /// <summary>
    /// The backward of Linear(GELU_tanh(pre)) — x = GELU(pre) (R, In) — into pre: dPre (R, In) = (dy W) ⊙ GELU'(pre)
    /// (overwritten); dW += dyᵀ x; db += Σ dy. The GPU applies GELU' in the dx GEMM's epilogue.
    /// </summary>
    void LinearBackwardGelu(Tensor dy, Tensor x, Tensor w, Tensor pre, Tensor dPre, Tensor dw, Tensor? db, int rows, int inF, int outF);

    /// <summary>dx = dy W (or += when <paramref name="accumulateDx"/>; skipped when null); dW += dyᵀ x; db += Σ dy.</summary>
    void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, int rows, int inF, int outF, bool accumulateDx);

    /// <summary>y = SiLU(x).</summary>
    void Silu(Tensor x, Tensor y);

    /// <summary>dx (=, or += when accumulate) = dy·SiLU'(x).</summary>
    void SiluBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate);

    /// <summary>y = GELU_tanh(x).</summary>
    void GeluTanh(Tensor x, Tensor y);

    /// <summary>dx (=, or +=) = dy·GELU_tanh'(x).</summary>
    void GeluTanhBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate);

    /// <summary>y (B,N,H) = LN(x)·(1 + scale) + shift with shift/scale chunks of mod (B, chunks·H); saves mean, rstd (B·N).</summary>
    void LayerNormModulate(Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor y, Tensor mean, Tensor rstd, int b, int n, int h);

    /// <summary>Backward of <see cref="LayerNormModulate"/>: dx (=, or +=); dmod shift/scale chunks +=.</summary>
    void LayerNormModulateBackward(Tensor dy, Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor mean, Tensor rstd,
        Tensor dx, Tensor dmod, int b, int n, int h, bool accumulateDx);

    /// <summary>output (B,N,H) = x + gate·y with the gate chunk of mod.</summary>
    void GatedResidual(Tensor x, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor output, int b, int n, int h);

    /// <summary>
    /// <see cref="GatedResidual"/> then <see cref="LayerNormModulate"/> of its output, as the model runs them back to back:
    /// sum (B,N,H) = x + gate·y with the gate chunk of gateMod (B, gateChunks·H), then ln = LN(sum)·(1 + scale) + shift with the
    /// chunks of lnMod (B, lnChunks·H), saving mean and rstd; the same values as the two ops (a tier may fuse them into one pass).
    /// </summary>
    void GatedResidualLayerNormModulate(Tensor x, Tensor gateMod, int gateChunks, int gateChunk, Tensor y, Tensor sum,
        Tensor lnMod, int lnChunks, int shiftChunk, int scaleChunk, Tensor ln, Tensor mean, Tensor rstd, int b, int n, int h);

    /// <summary>dy = gate·dout (=); dmod gate chunk += Σ_tokens dout·y.</summary>
    void GatedResidualBackward(Tensor dout, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor dy, Tensor dmod, int b, int n, int h);

    /// <summary>Joint attention over [1 skeleton token, L text tokens]; saves probs (B, heads, S, S) for the backward, unless
    /// probs is empty (a forward-only pass).</summary>
    void JointAttention(Tensor qkvX, Tensor qkvU, Tensor probs, Tensor outX, Tensor outU, int b, int l, int h, int heads);

    /// <summary>
    /// The skeleton token's row of <see cref="JointAttention"/> alone, outX (B, H), for a forward-only pass's last block (its text
    /// stream is not used after the attention, so the text queries are not needed): the text tokens' keys and values are the last
    /// 2H channels of each row of textKv (B, L, textKvWidth), [k | v] for width 2H or qkvU's [q | k | v] for 3H. Saves no probs.
    /// </summary>
    void JointAttentionSkeletonRow(Tensor qkvX, Tensor textKv, int textKvWidth, Tensor outX, int b, int l, int h, int heads);

    /// <summary>
    /// <see cref="JointAttentionSkeletonRow"/> with the text tokens' keys and values left implicit: text token j's [k | v] is
    /// wKv·hu_j + bKv, hu (B, L, H) being the text tokens' LN-modulated states and wKv (2H, H), bKv (2H) qkv_c's rows H..3H.
    /// Exact in real arithmetic, a tier may reassociate: per head, q·k_j = (W_kᵀq)·hu_j + q·b_k and Σ_j p_j v_j =
    /// W_v(Σ_j p_j hu_j) + (Σ_j p_j) b_v, about 3·H² multiply-adds per row instead of the keys' and values' 2·L·H².
    /// scratch: at least <see cref="Reference.ReferenceOps.SkeletonRowFromTextScratch"/> floats, overwritten.
    /// </summary>
    void JointAttentionSkeletonRowFromText(Tensor qkvX, Tensor hu, Tensor wKv, Tensor bKv, Tensor scratch, Tensor outX, int b, int l, int h, int heads);

    /// <summary>Backward of <see cref="JointAttention"/> (dqkvX, dqkvU overwritten).</summary>
    void JointAttentionBackward(Tensor dOutX, Tensor dOutU, Tensor qkvX, Tensor qkvU, Tensor probs, Tensor dqkvX, Tensor dqkvU,
        int b, int l, int h, int heads);

    /// <summary>emb (B, 256) = sinusoidal embedding of the timesteps t (B).</summary>
    void TimestepEmbedding(Tensor t, Tensor emb, int b);

    /// <summary>zt (B,C) = √ᾱ_t z0 + √(1-ᾱ_t) eps; eps broadcast when it has one row (as in <see cref="RowMse"/>).</summary>
    void QSample(Tensor z0, Tensor eps, Tensor t, ReadOnlySpan<float> alphasCumprod, Tensor zt, int b, int c);

    /// <summary>
    /// The TD loss on pred (2B, C); writes pos, neg (B), dpred (2B, C) and loss (3) = [L, L_diff, L_TD]
    /// on the backend, so a training loop reads the scalars back only when it wants them.
    /// </summary>
    void TdLoss(Tensor pred, Tensor eps, Tensor mask, Tensor pos, Tensor neg, Tensor dpred, Tensor loss, int b, int c, double margin, double lambda);

    /// <summary>
    /// Per-row score (B) = mean_c (pred - eps)² (zero-shot scoring), added to the old score when
    /// <paramref name="accumulate"/>; eps broadcast when it has one row.
    /// </summary>
    void RowMse(Tensor pred, Tensor eps, Tensor score, int b, int c, bool accumulate);

    /// <summary>index (R) = the first column holding row r's minimum of scores (R, cols), as integer-valued floats.</summary>
    void ArgMinRows(Tensor scores, Tensor index, int rows, int cols);

    /// <summary>One AdamW update of a contiguous parameter range (a view of the parameters; see <see cref="BindParameters"/>).</summary>
    void AdamWStep(Tensor p, Tensor g, Tensor m, Tensor v, double lr, AdamWConfig cfg, int step);

    /// <summary>out (R, W) = table[index[r]] rows; index is on the host.</summary>
    void GatherRows(Tensor table, ReadOnlySpan<int> index, Tensor output, int width);

    /// <summary>out (R, W) = table[index[r]] rows with the index (R) a tensor of integer-valued floats (exact below 2^24).</summary>
    void GatherRows(Tensor table, Tensor index, Tensor output, int width);

    /// <summary>dst = src (same length).</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>dst[i] = N(0,1) number i of (seed, stream) — see <see cref="Tensors.CounterRng"/>.</summary>
    void SampleNormal(Tensor destination, ulong seed, ulong stream);

    /// <summary>dst[i] = uniform integer in [0, n) number i of (seed, stream), stored as a float.</summary>
    void SampleBelow(Tensor destination, int n, ulong seed, ulong stream);

    /// <summary>mask[i] = 1 where a[i] ≠ b[i], else 0.</summary>
    void NotEqual(Tensor a, Tensor b, Tensor mask);

    /// <summary>
    /// Promises that until the returned scope is disposed <paramref name="parameters"/> changes only through
    /// <see cref="AdamWStep"/> on views of it (zero-shot scoring: not at all), so the tier may keep a derived copy of
    /// it for that long and update it in AdamW (the GPU tier's bf16 GEMMs: the weights as bf16 pairs, see
    /// GpuOps.PackedGemm). Zero-shot scoring opens one per call, the trainer one per group of queued steps. Scopes do
    /// not nest. By default nothing is kept.
    /// </summary>
    IDisposable BindParameters(Tensor parameters) => BoundParameters.None;
}

/// <summary>The scope of a tier that keeps nothing for <see cref="IOps.BindParameters"/>.</summary>
public sealed class BoundParameters : IDisposable
{
    /// <summary>The shared do-nothing scope.</summary>
    public static readonly BoundParameters None = new();

    private BoundParameters() { }

    public void Dispose() { }
}
