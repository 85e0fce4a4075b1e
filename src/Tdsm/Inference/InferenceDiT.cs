using Tdsm.Cpu;
using Tdsm.Model;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Inference;

/// <summary>
/// The DiT forward specialised for zero-shot scoring on the CPU (TDSM_SPEC.md sections 3 and 5):
/// every Linear weight is packed once for <see cref="Gemm.MatMulPacked"/>, and everything that
/// depends only on the candidate class (c_k = t_emb(t_test) + fc(z_g_k), every adaLN modulation
/// vector, u_0 = fl_embedder(z_l_k) + pos and the first block's text-stream q/k/v) is computed once
/// per candidate set by <see cref="Precompute"/>. Immutable after construction: one instance serves
/// concurrent callers, each with its own <see cref="InferenceWorkspace"/>.
/// </summary>
internal sealed class InferenceDiT
{
    internal sealed record Layer(PackedMatrix W, float[] Bias)
    {
        public int In => W.K;
        public int Out => W.N;
    }

    internal sealed record Block(Layer AdaLN, Layer AdaLNc, Layer Qkv, Layer QkvC, Layer Proj, Layer ProjC, Layer Fc1, Layer Fc2, Layer Fc1C, Layer Fc2C);

    /// <summary>
    /// The last block's text keys and values as the skeleton row's attention takes them (IOps.JointAttentionSkeletonRowFromText):
    /// per head W_kᵀ packed for q·W_k (its D rows of qkv_c's keys, transposed) and W_v's D rows for W_v·mix; qkv_c's key and
    /// value biases.
    /// </summary>
    internal sealed record TextKeysAndValues(PackedMatrix[] KeysT, PackedMatrix[] Values, float[] KeyBias, float[] ValueBias);

    public DiTConfig Config { get; }
    public float[] TestNoise { get; }
    public int Noises => TestNoise.Length / Config.InChannels;
    internal readonly Layer XEmb, FlEmb, TMlp0, TMlp2, Fc0, Fc2, FinalAdaLN, FinalLinear;
    internal readonly float[] Pos;
    internal readonly Block[] Blocks;
    /// <summary>The last block's, when it is not the first (whose text q/k/v are per-class constants); else null.</summary>
    internal readonly TextKeysAndValues? LastText;
    internal readonly float SqrtAlpha, SqrtOneMinusAlpha;

    /// <param name="config">The DiT shape.</param>
    /// <param name="parameters">All parameters in <see cref="DiT.BuildLayout"/> order.</param>
    /// <param name="testNoise">The J fixed test noises (J, C_in).</param>
    public InferenceDiT(DiTConfig config, float[] parameters, float[] testNoise)
    {
        Config = config.Validated();
        var layout = DiT.BuildLayout(config);
        if (parameters.Length != layout.Count) throw new ArgumentException($"expected {layout.Count} parameters for {config}, got {parameters.Length}", nameof(parameters));
        if (testNoise.Length == 0 || testNoise.Length % config.InChannels != 0)
            throw new ArgumentException($"test noise: expected J x {config.InChannels} values, got {testNoise.Length}", nameof(testNoise));
        if (Finite.IndexOfNonFinite(parameters) is var bad and >= 0)
            throw new ArgumentException($"parameter {layout.NameAt(bad)} holds {parameters[bad]}", nameof(parameters));
        if (Finite.IndexOfNonFinite(testNoise) is var badNoise and >= 0)
            throw new ArgumentException($"test noise value {badNoise} is {testNoise[badNoise]}", nameof(testNoise));
        TestNoise = (float[])testNoise.Clone();
        Layer Lin(string name)
        {
            var w = layout[name + ".weight"];
            var b = layout[name + ".bias"];
            return new Layer(PackedMatrix.Pack(parameters, w.Offset, w.Shape[0], w.Shape[1]), parameters.AsSpan(b.Offset, b.Length).ToArray());
        }
        XEmb = Lin("x_embedder"); FlEmb = Lin("fl_embedder");
        var pos = layout["fl_pos_embed"];
        Pos = parameters.AsSpan(pos.Offset, pos.Length).ToArray();
        TMlp0 = Lin("t_embedder.mlp.0"); TMlp2 = Lin("t_embedder.mlp.2");
        Fc0 = Lin("fc_embedder.0"); Fc2 = Lin("fc_embedder.2");
        Blocks = new Block[config.Depth];
        for (int i = 0; i < config.Depth; i++)
        {
            string p = $"blocks.{i}.";
            Blocks[i] = new Block(Lin(p + "adaLN_modulation.1"), Lin(p + "adaLN_modulation_c.1"), Lin(p + "attn.qkv"), Lin(p + "attn.qkv_c"),
                Lin(p + "attn.proj"), Lin(p + "attn.proj_c"), Lin(p + "mlp.fc1"), Lin(p + "mlp.fc2"), Lin(p + "mlp_c.fc1"), Lin(p + "mlp_c.fc2"));
        }
        if (config.Depth > 1)
        {
            int h = config.Hidden, d = config.HeadDim, heads = config.Heads;
            var w = layout[$"blocks.{config.Depth - 1}.attn.qkv_c.weight"];
            var b = layout[$"blocks.{config.Depth - 1}.attn.qkv_c.bias"];
            var keysT = new PackedMatrix[heads];
            var values = new PackedMatrix[heads];
            var t = new float[h * d];
            for (int hd = 0; hd < heads; hd++)
            {
                for (int n = 0; n < d; n++)
                    for (int c = 0; c < h; c++) t[c * d + n] = parameters[w.Offset + (h + hd * d + n) * h + c];   // W_k's row hd·D + n, as a column
                keysT[hd] = PackedMatrix.Pack(t, 0, h, d);
                values[hd] = PackedMatrix.Pack(parameters, w.Offset + (2 * h + hd * d) * h, d, h);
            }
            LastText = new TextKeysAndValues(keysT, values, parameters.AsSpan(b.Offset + h, h).ToArray(), parameters.AsSpan(b.Offset + 2 * h, h).ToArray());
        }
        FinalAdaLN = Lin("final_layer.adaLN_modulation.1");
        FinalLinear = Lin("final_layer.linear");
        var alphas = NoiseSchedule.AlphasCumprod(config.Steps, config.BetaStart, config.BetaEnd);
        SqrtAlpha = MathF.Sqrt(alphas[config.TTest]);
        SqrtOneMinusAlpha = MathF.Sqrt(1f - alphas[config.TTest]);
    }

    private static void Linear(float[] x, int xOff, Layer l, float[] y, int yOff, int rows) =>
        Gemm.MatMulPacked(x, xOff, l.W, y, yOff, rows, accumulate: false, l.Bias);

    /// <summary>
    /// The per-class constants for K classes: zg (K, cond) global and zl (K, L, cond) local text features.
    /// </summary>
    public ClassConstants Precompute(float[] zg, float[] zl, int k)
    {
        var c = Config;
        int h = c.Hidden, l = c.LocalTokens, cond = c.CondSize;
        if (zg.Length != k * cond) throw new ArgumentException($"global text features: expected {k}x{cond} values, got {zg.Length}");
        if (zl.Length != k * l * cond) throw new ArgumentException($"local text features: expected {k}x{l}x{cond} values, got {zl.Length}");
        // c_k = t_emb(t_test) + fc(z_g_k); every row shares the timestep embedding.
        var freq = new float[TimestepEmbedding.Dim];
        TimestepEmbedding.Forward<float>([c.TTest], freq, 1);
        var t1 = new float[h]; var temb = new float[h];
        Linear(freq, 0, TMlp0, t1, 0, 1);
        CpuActivations.Silu(t1, t1, 0, h);
        Linear(t1, 0, TMlp2, temb, 0, 1);
        var f1 = new float[k * h]; var cvec = new float[k * h];
        Linear(zg, 0, Fc0, f1, 0, k);
        CpuActivations.Silu(f1, f1, 0, f1.Length);
        Linear(f1, 0, Fc2, cvec, 0, k);
        for (int r = 0; r < k; r++) CpuResidual.Add(cvec.AsSpan(r * h, h), temb, cvec.AsSpan(r * h, h));
        CpuActivations.Silu(cvec, cvec, 0, cvec.Length); // SiLU(c) feeds every adaLN
        var mod = new float[c.Depth][]; var modC = new float[c.Depth][];
        for (int i = 0; i < c.Depth; i++)
        {
            mod[i] = new float[k * 6 * h]; modC[i] = new float[k * 6 * h];
            Linear(cvec, 0, Blocks[i].AdaLN, mod[i], 0, k);
            Linear(cvec, 0, Blocks[i].AdaLNc, modC[i], 0, k);
        }
        var modF = new float[k * 2 * h];
        Linear(cvec, 0, FinalAdaLN, modF, 0, k);
        // u_0 = fl_embedder(z_l) + pos, then the first block's LN-modulate and text q/k/v.
        var u0 = new float[k * l * h];
        Linear(zl, 0, FlEmb, u0, 0, k * l);
        for (int r = 0; r < k; r++) CpuResidual.Add(u0.AsSpan(r * l * h, l * h), Pos, u0.AsSpan(r * l * h, l * h));
        var hu = new float[k * l * h];
        CpuLayerNorm.ForwardRows(u0, modC[0], 6, 0, 1, hu, default, default, l, h, 0, k * l);
        var qkvU0 = new float[k * l * 3 * h];
        Linear(hu, 0, Blocks[0].QkvC, qkvU0, 0, k * l);
        return new ClassConstants(k, mod, modC, modF, u0, qkvU0);
    }

    /// <summary>
    /// errors (K) = Σ_j mean_c (DiT(q_sample(z, eps_j, t_test), t_test, class k) - eps_j)² for one
    /// skeleton feature z (C_in) against every class of <paramref name="cc"/>. All J noises go
    /// through the network together (row r = j·K + k), so every weight is streamed once per call.
    /// Allocates nothing.
    /// </summary>
    public void Score(ReadOnlySpan<float> feature, ClassConstants cc, InferenceWorkspace w, Span<double> errors, CancellationToken cancel)
    {
        var c = Config;
        int k = cc.Classes, jn = Noises, r = jn * k, h = c.Hidden, l = c.LocalTokens, cin = c.InChannels, mh = c.MlpHidden, rl = r * l;
        cancel.ThrowIfCancellationRequested();
        for (int j = 0; j < jn; j++)
            for (int i = 0; i < cin; i++) w.Noisy[j * cin + i] = SqrtAlpha * feature[i] + SqrtOneMinusAlpha * TestNoise[j * cin + i];
        // The skeleton token does not depend on the class: embed once per noise, copy to its K rows.
        Linear(w.Noisy, 0, XEmb, w.X0, 0, jn);
        for (int j = 0; j < jn; j++)
            for (int q = 0; q < k; q++) w.X0.AsSpan(j * h, h).CopyTo(w.X.AsSpan((j * k + q) * h, h));
        // The first block's text input and q/k/v are per class: repeat the cached rows for every noise.
        for (int j = 0; j < jn; j++)
        {
            cc.U0.CopyTo(w.U, j * k * l * h);
            cc.QkvU0.CopyTo(w.QkvU, j * k * l * 3 * h);
        }
        for (int i = 0; i < c.Depth; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var p = Blocks[i];
            bool last = i == c.Depth - 1;
            float[] mod = cc.Mod[i], modC = cc.ModC[i];
            if (i > 0)
            {
                w.LayerNorm(w.U, modC, 6, 0, 1, w.Hu, l, h, rl, k);
                if (!last) Linear(w.Hu, 0, p.QkvC, w.QkvU, 0, rl);
            }
            w.LayerNorm(w.X, mod, 6, 0, 1, w.Hx, 1, h, r, k);
            Linear(w.Hx, 0, p.Qkv, w.QkvX, 0, r);
            // The last block's text stream is never read after its attention: only the skeleton token's row, with the text keys
            // and values folded into its query and mix (a block past the first: the first's text q/k/v are the cached ones).
            if (last && i > 0) SkeletonRowFromText(w, r);
            else w.Attention(w.QkvX, w.QkvU, w.AttX, w.AttU, l, h, c.Heads, r);
            Linear(w.AttX, 0, p.Proj, w.ProjX, 0, r);
            w.Gated(w.X, mod, 6, 2, w.ProjX, w.X, 1, h, r, k);              // X = XMid
            w.LayerNorm(w.X, mod, 6, 3, 4, w.Hx, 1, h, r, k);
            Linear(w.Hx, 0, p.Fc1, w.Fc1X, 0, r);
            w.Gelu(w.Fc1X, r * mh);
            Linear(w.Fc1X, 0, p.Fc2, w.ProjX, 0, r);
            w.Gated(w.X, mod, 6, 5, w.ProjX, w.X, 1, h, r, k);              // X = block output
            if (last) continue; // the last block's text stream never reaches the output
            Linear(w.AttU, 0, p.ProjC, w.Hu, 0, rl);
            w.Gated(w.U, modC, 6, 2, w.Hu, w.U, l, h, rl, k);              // U = UMid
            w.LayerNorm(w.U, modC, 6, 3, 4, w.Hu, l, h, rl, k);
            Linear(w.Hu, 0, p.Fc1C, w.Fc1U, 0, rl);
            w.Gelu(w.Fc1U, rl * mh);
            Linear(w.Fc1U, 0, p.Fc2C, w.Hu, 0, rl);
            w.Gated(w.U, modC, 6, 5, w.Hu, w.U, l, h, rl, k);              // U = block output
        }
        w.LayerNorm(w.X, cc.ModF, 2, 0, 1, w.Hx, 1, h, r, k);
        Linear(w.Hx, 0, FinalLinear, w.Pred, 0, r);
        errors.Slice(0, k).Clear();
        for (int j = 0; j < jn; j++)
            for (int q = 0; q < k; q++)
            {
                double acc = 0;
                int row = (j * k + q) * cin;
                for (int i = 0; i < cin; i++) { double d = w.Pred[row + i] - (double)TestNoise[j * cin + i]; acc += d * d; }
                errors[q] += acc / cin;
            }
    }
    // AttX (r, H) = the skeleton token's attention row with the text keys and values implicit (as CpuOps.JointAttentionSkeletonRowFromText):
    // per head W_kᵀq, the row's softmax and mixed text states, W_v·mix, then the value bias and the skeleton's own value weighted in.
    private void SkeletonRowFromText(InferenceWorkspace w, int r)
    {
        var c = Config;
        var t = LastText!;
        int h = c.Hidden, heads = c.Heads, d = c.HeadDim;
        float[] sc = w.RowScratch;
        int qh = 0, rq = qh + r * h, mix = rq + heads * r * h, vOut = mix + heads * r * h;
        CpuAttention.SkeletonRowQueries(w.QkvX, sc.AsSpan(qh, r * h), r, h, heads, 0, r);
        for (int hd = 0; hd < heads; hd++) Gemm.MatMulPacked(sc, qh + hd * r * d, t.KeysT[hd], sc, rq + hd * r * h, r, accumulate: false);
        w.SkeletonMix(w.QkvX, w.Hu, t.KeyBias, rq, mix, l: c.LocalTokens, h, heads, 1f / MathF.Sqrt(d), r);
        for (int hd = 0; hd < heads; hd++) Gemm.MatMulPacked(sc, mix + hd * r * h, t.Values[hd], sc, vOut + hd * r * d, r, accumulate: false);
        CpuAttention.SkeletonRowCombine(w.QkvX, t.ValueBias, sc.AsSpan(vOut, r * h), w.RowWeights, w.AttX, r, h, heads, 0, r);
    }
}

/// <summary>Everything of the DiT forward that depends only on the candidate class, for K classes.</summary>
internal sealed record ClassConstants(int Classes, float[][] Mod, float[][] ModC, float[] ModF, float[] U0, float[] QkvU0);

/// <summary>
/// Scratch for one <see cref="InferenceDiT.Score"/> call on K classes and J noises (J·K rows): allocated once, reused for
/// every call (a workspace serves one caller at a time). Also the row-parallel job of the
/// non-GEMM ops, so they go over <see cref="CpuParallel"/> without allocating.
/// </summary>
internal sealed class InferenceWorkspace : IRangeWork
{
    public int Classes { get; }
    public readonly float[] Noisy, X0, X, Hx, QkvX, AttX, ProjX, Fc1X, U, Hu, QkvU, AttU, Fc1U, Pred;
    public readonly double[] Errors;
    public readonly int[] Order;

    private enum Kind { LayerNorm, Attention, Gelu, Gated, SkeletonMix }
    private const int Grain = 1 << 13;
    private Kind _kind;
    private float[] _a = [], _b = [], _c = [], _d = [];
    private int _chunks, _c0, _c1, _n, _h, _heads, _rows, _per, _modRows, _rOff, _mixOff, _mixRows;
    private float _scale;

    /// <summary>The last block's skeleton-row attention scratch (queries by head, W_kᵀq and the mixed states per head, W_v·mix):
    /// the text q/k/v buffer when that is large enough (the last block does not fill it), else an array of its own.</summary>
    public readonly float[] RowScratch;
    /// <summary>Per row and head Σ_text p and p_x of the last block's softmax.</summary>
    public readonly float[] RowWeights;

    /// <param name="c">The DiT shape.</param>
    /// <param name="k">Candidate classes.</param>
    /// <param name="noises">J: the rows are J·K (every noise against every class).</param>
    public InferenceWorkspace(Model.DiTConfig c, int k, int noises)
    {
        Classes = k;
        int h = c.Hidden, l = c.LocalTokens, mh = c.MlpHidden;
        Noisy = new float[noises * c.InChannels]; X0 = new float[noises * h];
        k *= noises; // rows
        int kl = k * l;
        X = new float[k * h]; Hx = new float[k * h]; QkvX = new float[k * 3 * h]; AttX = new float[k * h]; ProjX = new float[k * h]; Fc1X = new float[k * mh];
        U = new float[kl * h]; Hu = new float[kl * h]; QkvU = new float[kl * 3 * h]; AttU = new float[kl * h]; Fc1U = new float[kl * mh];
        Pred = new float[k * c.InChannels];
        long scratch = 2L * k * h + 2L * c.Heads * k * h;
        RowScratch = scratch <= QkvU.Length ? QkvU : new float[scratch];
        RowWeights = new float[k * c.Heads * 2];
        Errors = new double[Classes];
        Order = new int[Classes];
    }

    private void Go(int rows, int rowWidth)
    {
        _rows = rows;
        _per = Math.Max(1, Grain / Math.Max(1, rowWidth));
        int blocks = (rows + _per - 1) / _per;
        CpuParallel.For(blocks, this);
        _a = _b = _c = _d = [];
    }

    public void LayerNorm(float[] x, float[] mod, int chunks, int shift, int scale, float[] y, int n, int h, int rows, int modRows)
    {
        _kind = Kind.LayerNorm; _a = x; _b = mod; _c = y; _chunks = chunks; _c0 = shift; _c1 = scale; _n = n; _h = h; _modRows = modRows;
        Go(rows, h);
    }

    public void Attention(float[] qkvX, float[] qkvU, float[] outX, float[] outU, int l, int h, int heads, int rows)
    {
        _kind = Kind.Attention; _a = qkvX; _b = qkvU; _c = outX; _d = outU; _n = l; _h = h; _heads = heads;
        Go(rows, (l + 1) * (l + 1) * h);
    }

    /// <summary>The last block's softmax and mixed text states (<see cref="CpuAttention.SkeletonRowMix"/>) into <see cref="RowScratch"/>
    /// at <paramref name="mixOff"/>, from W_kᵀq at <paramref name="rOff"/>; weights into <see cref="RowWeights"/>.</summary>
    public void SkeletonMix(float[] qkvX, float[] hu, float[] keyBias, int rOff, int mixOff, int l, int h, int heads, float scale, int rows)
    {
        _kind = Kind.SkeletonMix; _a = qkvX; _b = hu; _c = keyBias; _rOff = rOff; _mixOff = mixOff; _n = l; _h = h; _heads = heads; _scale = scale;
        _mixRows = rows;
        Go(rows, l * h);
    }

    public void Gelu(float[] x, int count)
    {
        _kind = Kind.Gelu; _a = x;
        Go(count, 1);
    }

    public void Gated(float[] x, float[] mod, int chunks, int gate, float[] y, float[] output, int n, int h, int rows, int modRows)
    {
        _kind = Kind.Gated; _a = x; _b = mod; _c = y; _d = output; _chunks = chunks; _c0 = gate; _n = n; _h = h; _modRows = modRows;
        Go(rows, h);
    }

    public void Run(int index)
    {
        int s = index * _per, e = Math.Min(_rows, s + _per);
        switch (_kind)
        {
            case Kind.LayerNorm:
                CpuLayerNorm.ForwardRows(_a, _b, _chunks, _c0, _c1, _c, default, default, _n, _h, s, e, _modRows);
                break;
            case Kind.Attention:
                CpuAttention.ForwardRows(_a, _b, default, _c, _d, _n, _h, _heads, s, e);
                break;
            case Kind.Gelu:
                CpuActivations.GeluTanh(_a, _a, s, e);
                break;
            case Kind.Gated:
                CpuResidual.GatedRows(_a, _b, _chunks, _c0, _c, _d, _n, _h, s, e, _modRows);
                break;
            case Kind.SkeletonMix:
                int span = _heads * _mixRows * _h;
                CpuAttention.SkeletonRowMix(_a, _b, _c, RowScratch.AsSpan(_rOff, span), RowScratch.AsSpan(_mixOff, span), RowWeights,
                    _mixRows, _n, _h, _heads, _scale, s, e);
                break;
        }
    }
}
