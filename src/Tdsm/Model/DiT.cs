using Tdsm.Ops;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>
/// The TDSM diffusion transformer (TDSM_SPEC.md section 3), written once over <see cref="IOps"/>.
/// Skeleton stream x is (R, 1, H), text stream u is (R, L, H) with L = 35 local text tokens;
/// c = t_embedder(t) + fc_embedder(z_g) drives every adaLN. Parameters and gradients live in one
/// flat buffer each (<see cref="Layout"/>, official PyTorch names). Backward is explicit
/// ("autograd-lite"): each stage replays the activations its forward saved, in reverse.
/// </summary>
public sealed class DiT
{
    /// <summary>A Linear layer's views into the parameter and gradient buffers.</summary>
    public readonly record struct LinearParams(Tensor W, Tensor B, Tensor DW, Tensor DB, int In, int Out);

    /// <summary>One transformer block's layers.</summary>
    public sealed record BlockParams(LinearParams AdaLN, LinearParams AdaLNc, LinearParams Qkv, LinearParams QkvC,
        LinearParams Proj, LinearParams ProjC, LinearParams Fc1, LinearParams Fc2, LinearParams Fc1C, LinearParams Fc2C);

    public DiTConfig Config { get; }
    public IOps Ops { get; }
    public ParameterLayout Layout { get; }

    /// <summary>All parameters, one flat tensor (Layout.Count).</summary>
    public Tensor Parameters { get; }

    /// <summary>All gradients, same layout; accumulated by <see cref="Backward"/>, cleared by <see cref="ZeroGradients"/>.</summary>
    public Tensor Gradients { get; }

    private readonly LinearParams _xEmb, _flEmb, _tMlp0, _tMlp2, _fc0, _fc2, _finalAdaLN, _finalLinear;
    private readonly Tensor _pos, _dpos;
    private readonly BlockParams[] _blocks;

    public DiT(DiTConfig config, IOps ops)
    {
        Config = config.Validated();
        Ops = ops;
        Layout = BuildLayout(config);
        Parameters = ops.Allocate(Layout.Count);
        Gradients = ops.Allocate(Layout.Count);
        LinearParams Lin(string name)
        {
            var w = Layout[name + ".weight"];
            var b = Layout[name + ".bias"];
            return new LinearParams(View(Parameters, w), View(Parameters, b), View(Gradients, w), View(Gradients, b), w.Shape[1], w.Shape[0]);
        }
        _xEmb = Lin("x_embedder");
        _flEmb = Lin("fl_embedder");
        _pos = View(Parameters, Layout["fl_pos_embed"]);
        _dpos = View(Gradients, Layout["fl_pos_embed"]);
        _tMlp0 = Lin("t_embedder.mlp.0");
        _tMlp2 = Lin("t_embedder.mlp.2");
        _fc0 = Lin("fc_embedder.0");
        _fc2 = Lin("fc_embedder.2");
        _blocks = new BlockParams[config.Depth];
        for (int i = 0; i < config.Depth; i++)
        {
            string p = $"blocks.{i}.";
            _blocks[i] = new BlockParams(Lin(p + "adaLN_modulation.1"), Lin(p + "adaLN_modulation_c.1"), Lin(p + "attn.qkv"), Lin(p + "attn.qkv_c"),
                Lin(p + "attn.proj"), Lin(p + "attn.proj_c"), Lin(p + "mlp.fc1"), Lin(p + "mlp.fc2"), Lin(p + "mlp_c.fc1"), Lin(p + "mlp_c.fc2"));
        }
        _finalAdaLN = Lin("final_layer.adaLN_modulation.1");
        _finalLinear = Lin("final_layer.linear");
    }

    private Tensor View(Tensor flat, ParameterEntry e) => Ops.View(flat, e.Offset, e.Shape);

    /// <summary>
    /// The parameter names, shapes and order of the official module. The last block's proj_c and
    /// mlp_c are computed by the official code but never reach the loss: they get no gradient and
    /// AdamW leaves them untouched.
    /// </summary>
    public static ParameterLayout BuildLayout(DiTConfig c)
    {
        var l = new ParameterLayout();
        int h = c.Hidden;
        void Lin(string name, int inF, int outF, bool grad = true)
        {
            l.Add(name + ".weight", [outF, inF], grad);
            l.Add(name + ".bias", [outF], grad);
        }
        Lin("x_embedder", c.InChannels, h);
        Lin("fl_embedder", c.CondSize, h);
        l.Add("fl_pos_embed", [1, c.LocalTokens, h]);
        Lin("t_embedder.mlp.0", Reference.TimestepEmbedding.Dim, h);
        Lin("t_embedder.mlp.2", h, h);
        Lin("fc_embedder.0", c.CondSize, h);
        Lin("fc_embedder.2", h, h);
        for (int i = 0; i < c.Depth; i++)
        {
            bool last = i == c.Depth - 1;
            string p = $"blocks.{i}.";
            Lin(p + "attn.qkv", h, 3 * h);
            Lin(p + "attn.qkv_c", h, 3 * h);
            Lin(p + "attn.proj", h, h);
            Lin(p + "attn.proj_c", h, h, !last);
            Lin(p + "mlp.fc1", h, c.MlpHidden);
            Lin(p + "mlp.fc2", c.MlpHidden, h);
            Lin(p + "mlp_c.fc1", h, c.MlpHidden, !last);
            Lin(p + "mlp_c.fc2", c.MlpHidden, h, !last);
            Lin(p + "adaLN_modulation.1", h, 6 * h);
            Lin(p + "adaLN_modulation_c.1", h, 6 * h);
        }
        Lin("final_layer.adaLN_modulation.1", h, 2 * h);
        Lin("final_layer.linear", h, c.InChannels);
        return l;
    }

    /// <summary>Clears the gradient buffer.</summary>
    public void ZeroGradients() => Ops.Zero(Gradients);

    /// <summary>
    /// The official initialisation: xavier-uniform Linear weights and zero biases, fl_pos_embed and
    /// the t_embedder weights ~ N(0, 0.02), every adaLN modulation layer and the final linear zero,
    /// so a fresh model outputs exactly 0.
    /// </summary>
    public void InitializeOfficial(ulong seed)
    {
        var rng = new Rng(seed);
        var host = new float[Layout.Count];
        foreach (var e in Layout.Entries)
        {
            var span = host.AsSpan(e.Offset, e.Length);
            bool zeroed = e.Name.Contains("adaLN_modulation", StringComparison.Ordinal) || e.Name.StartsWith("final_layer.linear", StringComparison.Ordinal);
            if (zeroed || e.Name.EndsWith(".bias", StringComparison.Ordinal)) continue;
            if (e.Name == "fl_pos_embed" || e.Name.StartsWith("t_embedder.mlp", StringComparison.Ordinal)) rng.FillNormal(span, 0.02);
            else rng.FillUniform(span, Math.Sqrt(6.0 / (e.Shape[0] + e.Shape[1])));
        }
        Ops.Upload(host, Parameters);
    }

    /// <summary>Sets all parameters from a flat host array in <see cref="Layout"/> order.</summary>
    public void LoadParameters(ReadOnlySpan<float> flat)
    {
        if (flat.Length != Layout.Count) throw new ArgumentException($"expected {Layout.Count} parameters, got {flat.Length}");
        Ops.Upload(flat, Parameters);
    }

    /// <summary>A workspace holding every activation for <paramref name="rows"/> rows.</summary>
    public DiTActivations CreateActivations(int rows) => new(Config, Ops, rows);

    /// <summary>
    /// A forward-only workspace for <paramref name="rows"/> rows: the blocks share one set of
    /// buffers and the streams ping-pong between two, so memory does not grow with depth. Cannot
    /// be used for <see cref="Backward"/>.
    /// </summary>
    public DiTActivations CreateInferenceActivations(int rows) => new(Config, Ops, rows, forwardOnly: true);

    /// <summary>
    /// pred (R, C_in) = DiT(noisy (R, C_in), t (R), z_g (R, cond), z_l (R, L, cond)).
    /// Saves what <see cref="Backward"/> needs in <paramref name="a"/>.
    /// </summary>
    public void Forward(DiTActivations a, Tensor noisy, Tensor t, Tensor zg, Tensor zl, Tensor pred)
    {
        int rl = a.Rows * Config.LocalTokens;
        Ops.Linear(zl, _flEmb.W, _flEmb.B, a.U[0], rl, _flEmb.In, Config.Hidden);  // u (R·L,H)
        ForwardFromTextTokens(a, noisy, t, zg, pred);
    }

    /// <summary>
    /// <see cref="Forward(DiTActivations, Tensor, Tensor, Tensor, Tensor, Tensor)"/> with the text tokens given as a class
    /// table and each row's class: fl_embedder runs once per class (K·L rows instead of R·L; a training batch repeats its
    /// classes) and its outputs are gathered by row, the same values row by row. zlTable (K, L·cond), classIndex (R)
    /// integer-valued floats, uTable (K·L, H) scratch. The backward still takes the gathered z_l (R, L, cond).
    /// </summary>
    public void Forward(DiTActivations a, Tensor noisy, Tensor t, Tensor zg, Tensor zlTable, Tensor classIndex, Tensor uTable, Tensor pred)
    {
        int h = Config.Hidden, l = Config.LocalTokens, kl = checked((int)(uTable.Length / h));
        if (classIndex.Length != a.Rows) throw new ArgumentException($"class index: expected {a.Rows} rows, got {classIndex.Length}", nameof(classIndex));
        if (uTable.Length % ((long)l * h) != 0 || zlTable.Length != (long)kl * Config.CondSize)
            throw new ArgumentException($"class table: {zlTable.Length} text values and {uTable.Length} embedded ones are not K classes of {l}x{Config.CondSize} and {l}x{h}");
        Ops.Linear(Ops.View(zlTable, 0, kl, Config.CondSize), _flEmb.W, _flEmb.B, uTable, kl, _flEmb.In, h); // (K·L,H)
        Ops.GatherRows(uTable, classIndex, a.U[0], l * h);                                                  // u (R,L,H)
        ForwardFromTextTokens(a, noisy, t, zg, pred);
    }

    // The forward from u = fl_embedder(z_l) in a.U[0] (before the positions are added) on.
    private void ForwardFromTextTokens(DiTActivations a, Tensor noisy, Tensor t, Tensor zg, Tensor pred)
    {
        var o = Ops;
        int r = a.Rows, h = Config.Hidden;
        o.Linear(noisy, _xEmb.W, _xEmb.B, a.X[0], r, _xEmb.In, h);                  // x (R,H)
        o.AddBroadcastRows(a.U[0], _pos, r);
        o.TimestepEmbedding(t, a.TFreq, r);                                          // (R,256)
        o.Linear(a.TFreq, _tMlp0.W, _tMlp0.B, a.T1, r, _tMlp0.In, h);
        o.Silu(a.T1, a.T1Act);
        o.Linear(a.T1Act, _tMlp2.W, _tMlp2.B, a.TEmb, r, h, h);
        o.Linear(zg, _fc0.W, _fc0.B, a.F1, r, _fc0.In, h);
        o.Silu(a.F1, a.F1Act);
        o.Linear(a.F1Act, _fc2.W, _fc2.B, a.FcEmb, r, h, h);
        o.Add(a.TEmb, a.FcEmb, a.C);                                                  // c (R,H)
        o.Silu(a.C, a.SiluC);

        o.Linear(a.SiluC, _blocks[0].AdaLNc.W, _blocks[0].AdaLNc.B, a.Blocks[0].ModC, r, h, 6 * h);   // (R,6H)
        for (int i = 0; i < Config.Depth; i++) Block(a, i, textQkvGiven: false, cc: null, classIndex: null);
        o.Linear(a.SiluC, _finalAdaLN.W, _finalAdaLN.B, a.ModFinal, r, h, 2 * h);
        FinalLayer(a, pred);
    }

    /// <summary>
    /// Block i on the streams X[i], U[i] with its text modulation already in s.ModC and, past the first block, its text
    /// stream's LN-modulate already in s.Hu (the previous block's end wrote it). The block fills s.Mod and the next block's
    /// ModC (this block's end LN-modulates the text stream with it): from SiLU(c), or with <paramref name="cc"/> gathered by
    /// <paramref name="classIndex"/> from the class constants; after the text stream's qkv_c, so that on the GPU with packed
    /// operands that product takes its A operand as the LN-modulate before it cast it. With <paramref name="textQkvGiven"/>
    /// the text q/k/v are already in s.QkvU (cached per class for the first block in zero-shot scoring) and the text
    /// LN-modulate and qkv_c are skipped.
    /// </summary>
    private void Block(DiTActivations a, int i, bool textQkvGiven, DiTClassConstants? cc, Tensor? classIndex)
    {
        var o = Ops;
        int r = a.Rows, h = Config.Hidden, l = Config.LocalTokens, rl = r * l;
        var p = _blocks[i];
        var s = a.Blocks[i];
        // attention, the text stream's product first (see modulations).
        // A forward-only pass's last block: its text stream is never read after the attention, so only the skeleton token's
        // attention row is needed, and the text tokens enter it through their keys and values alone (qkv_c's rows H..3H): given
        // their LN-modulated states, the op folds those rows into the row's query and mix (IOps.JointAttentionSkeletonRowFromText),
        // with s.QkvU, unused by now, as its scratch.
        bool skeletonRowOnly = a.ForwardOnly && i == Config.Depth - 1;
        if (!textQkvGiven)
        {
            if (i == 0) o.LayerNormModulate(a.U[0], s.ModC, 6, 0, 1, s.Hu, s.MeanU1, s.RstdU1, r, l, h);
            if (!skeletonRowOnly) o.Linear(s.Hu, p.QkvC.W, p.QkvC.B, s.QkvU, rl, h, 3 * h);
        }
        Modulations(a, i, cc, classIndex);
        o.LayerNormModulate(a.X[i], s.Mod, 6, 0, 1, s.Hx, s.MeanX1, s.RstdX1, r, 1, h);
        o.Linear(s.Hx, p.Qkv.W, p.Qkv.B, s.QkvX, r, h, 3 * h);
        bool lastBlock = i == Config.Depth - 1;
        if (!skeletonRowOnly)
        {
            o.JointAttention(s.QkvX, s.QkvU, s.Probs, s.AttX, s.AttU, r, l, h, Config.Heads);
            // The text stream's proj_c right after the attention: on the GPU with packed operands it takes its A operand as the
            // attention kernel cast it. The last block's text stream never reaches the output.
            if (!lastBlock) o.Linear(s.AttU, p.ProjC.W, p.ProjC.B, s.ProjU, rl, h, h);
        }
        else if (textQkvGiven) o.JointAttentionSkeletonRow(s.QkvX, s.QkvU, 3 * h, s.AttX, r, l, h, Config.Heads); // the cached q/k/v
        else o.JointAttentionSkeletonRowFromText(s.QkvX, s.Hu, o.View(p.QkvC.W, h * h, 2 * h, h), o.View(p.QkvC.B, h, 2 * h), s.QkvU, s.AttX,
            r, l, h, Config.Heads);
        o.Linear(s.AttX, p.Proj.W, p.Proj.B, s.ProjX, r, h, h);
        // gated residual, then the MLP's LN-modulate of its output (one pass where the tier fuses them); mlp, skeleton stream
        o.GatedResidualLayerNormModulate(a.X[i], s.Mod, 6, 2, s.ProjX, s.XMid, s.Mod, 6, 3, 4, s.H2x, s.MeanX2, s.RstdX2, r, 1, h);
        Mlp(a, s.H2x, p.Fc1, p.Fc2, s.Fc1X, a.GeluScratchX, s.Fc2X, r);
        o.GatedResidual(s.XMid, s.Mod, 6, 5, s.Fc2X, a.X[i + 1], r, 1, h);
        if (lastBlock) return;
        o.GatedResidualLayerNormModulate(a.U[i], s.ModC, 6, 2, s.ProjU, s.UMid, s.ModC, 6, 3, 4, s.H2u, s.MeanU2, s.RstdU2, r, l, h);
        Mlp(a, s.H2u, p.Fc1C, p.Fc2C, s.Fc1U, a.GeluScratchU, s.Fc2U, rl);
        // The block's output, then the next block's first LN-modulate of it (one pass where the tier fuses them).
        var next = a.Blocks[i + 1];
        o.GatedResidualLayerNormModulate(s.UMid, s.ModC, 6, 5, s.Fc2U, a.U[i + 1], next.ModC, 6, 0, 1, next.Hu, next.MeanU1, next.RstdU1, r, l, h);
    }

    // Block i's adaLN modulation and the next block's text one (R, 6H): adaLN(SiLU(c)), or gathered by class from cc.
    private void Modulations(DiTActivations a, int i, DiTClassConstants? cc, Tensor? classIndex)
    {
        int r = a.Rows, h = Config.Hidden;
        bool next = i + 1 < Config.Depth;
        if (cc is null)
        {
            Ops.Linear(a.SiluC, _blocks[i].AdaLN.W, _blocks[i].AdaLN.B, a.Blocks[i].Mod, r, h, 6 * h);
            if (next) Ops.Linear(a.SiluC, _blocks[i + 1].AdaLNc.W, _blocks[i + 1].AdaLNc.B, a.Blocks[i + 1].ModC, r, h, 6 * h);
            return;
        }
        Ops.GatherRows(cc.Mod[i], classIndex!, a.Blocks[i].Mod, 6 * h);
        if (next) Ops.GatherRows(cc.ModC[i + 1], classIndex!, a.Blocks[i + 1].ModC, 6 * h);
    }

    // out = fc2(GELU(fc1(h))) (rows, H) with gelu (rows, MlpHidden) holding GELU(fc1(h)). Training keeps the pre-activation
    // in fc1Out and gelu for the backward; a forward-only pass has no use for them and runs the MLP as one op
    // (IOps.Mlp: on the GPU GELU in fc1's epilogue, and with packed bf16 operands nothing written between the products).
    private void Mlp(DiTActivations a, Tensor h, LinearParams fc1, LinearParams fc2, Tensor fc1Out, Tensor gelu, Tensor output, int rows)
    {
        int hid = Config.MlpHidden, width = Config.Hidden;
        if (a.ForwardOnly)
        {
            Ops.Mlp(h, fc1.W, fc1.B, gelu, fc2.W, fc2.B, output, rows, width, hid, width);
            return;
        }
        Ops.Linear(h, fc1.W, fc1.B, fc1Out, rows, width, hid);
        Ops.GeluTanh(fc1Out, gelu);
        Ops.Linear(gelu, fc2.W, fc2.B, output, rows, hid, width);
    }

    /// <summary>pred = final_layer(X[Depth]) with the final modulation already in a.ModFinal.</summary>
    private void FinalLayer(DiTActivations a, Tensor pred)
    {
        int r = a.Rows, h = Config.Hidden;
        Ops.LayerNormModulate(a.X[Config.Depth], a.ModFinal, 2, 0, 1, a.HFinal, a.MeanF, a.RstdF, r, 1, h);
        Ops.Linear(a.HFinal, _finalLinear.W, _finalLinear.B, pred, r, h, Config.InChannels);
    }

    /// <summary>Storage for the per-class constants of up to <paramref name="capacity"/> candidate classes.</summary>
    public DiTClassConstants CreateClassConstants(int capacity) => new(Config, Ops, capacity);

    /// <summary>
    /// Computes everything of the forward that depends only on the candidate class (TDSM_SPEC.md
    /// section 5 scoring runs every sample against every class at the same t_test): c_k =
    /// t_emb(t_test) + fc(z_g_k), every adaLN modulation, u_0 = fl_embedder(z_l_k) + pos and the first
    /// block's text q/k/v. zg (K, cond), zl (K, L·cond); recompute after the parameters change.
    /// </summary>
    public void PrecomputeClassConstants(DiTClassConstants cc, Tensor zg, Tensor zl, int k)
    {
        var o = Ops;
        int h = Config.Hidden, l = Config.LocalTokens, kl = k * l;
        if (k <= 0 || k > cc.Capacity) throw new ArgumentOutOfRangeException(nameof(k), $"{k} classes for constants sized for {cc.Capacity}");
        if (zg.Length < (long)k * Config.CondSize || zl.Length < (long)kl * Config.CondSize)
            throw new ArgumentException($"text features: expected {k} classes of {Config.CondSize} global and {l}x{Config.CondSize} local values, got {zg.Length} and {zl.Length}");
        cc.Classes = k;
        o.TimestepEmbedding(cc.T, cc.TFreq, 1);                                      // one row: every class shares t_test
        o.Linear(cc.TFreq, _tMlp0.W, _tMlp0.B, cc.T1, 1, _tMlp0.In, h);
        o.Silu(cc.T1, cc.T1Act);
        o.Linear(cc.T1Act, _tMlp2.W, _tMlp2.B, cc.TEmb, 1, h, h);
        var f1 = o.View(cc.F1, 0, k, h);
        var f1Act = o.View(cc.F1Act, 0, k, h);
        var c = o.View(cc.C, 0, k, h);
        var siluC = o.View(cc.SiluC, 0, k, h);
        o.Linear(o.View(zg, 0, k, Config.CondSize), _fc0.W, _fc0.B, f1, k, _fc0.In, h);
        o.Silu(f1, f1Act);
        o.Linear(f1Act, _fc2.W, _fc2.B, c, k, h, h);
        o.AddBroadcastRows(c, cc.TEmb, k);                                            // c = fc + t_emb (same sum as Forward's t_emb + fc)
        o.Silu(c, siluC);
        for (int i = 0; i < Config.Depth; i++)
        {
            o.Linear(siluC, _blocks[i].AdaLN.W, _blocks[i].AdaLN.B, o.View(cc.Mod[i], 0, k, 6 * h), k, h, 6 * h);
            o.Linear(siluC, _blocks[i].AdaLNc.W, _blocks[i].AdaLNc.B, o.View(cc.ModC[i], 0, k, 6 * h), k, h, 6 * h);
        }
        o.Linear(siluC, _finalAdaLN.W, _finalAdaLN.B, o.View(cc.ModF, 0, k, 2 * h), k, h, 2 * h);
        var u0 = o.View(cc.U0, 0, k, l * h);
        o.Linear(o.View(zl, 0, kl, Config.CondSize), _flEmb.W, _flEmb.B, u0, kl, _flEmb.In, h);
        o.AddBroadcastRows(u0, _pos, k);
        var hu = o.View(cc.Hu0, 0, k, l * h);
        o.LayerNormModulate(u0, o.View(cc.ModC[0], 0, k, 6 * h), 6, 0, 1, hu, o.View(cc.Mean0, 0, kl), o.View(cc.Rstd0, 0, kl), k, l, h);
        o.Linear(hu, _blocks[0].QkvC.W, _blocks[0].QkvC.B, o.View(cc.QkvU0, 0, k, l * 3 * h), kl, h, 3 * h);
    }

    /// <summary>
    /// The forward at t_test for rows whose condition is a candidate class: pred (R, C_in) =
    /// DiT(noisy (R, C_in), t_test, class classIndex[r]) with classIndex (R) integer-valued floats
    /// indexing the classes of <paramref name="cc"/>. The class-only parts are gathered from the
    /// cache instead of recomputed; the result equals <see cref="Forward(DiTActivations, Tensor, Tensor, Tensor, Tensor, Tensor)"/> with the same inputs.
    /// </summary>
    public void ForwardWithClassConstants(DiTActivations a, Tensor noisy, DiTClassConstants cc, Tensor classIndex, Tensor pred)
    {
        var o = Ops;
        int r = a.Rows, h = Config.Hidden, l = Config.LocalTokens;
        if (classIndex.Length != r) throw new ArgumentException($"class index: expected {r} rows, got {classIndex.Length}", nameof(classIndex));
        if (cc.Classes == 0) throw new InvalidOperationException("class constants not computed: call PrecomputeClassConstants first");
        o.Linear(noisy, _xEmb.W, _xEmb.B, a.X[0], r, _xEmb.In, h);                  // x (R,H)
        o.GatherRows(cc.U0, classIndex, a.U[0], l * h);                              // u (R,L,H)
        o.GatherRows(cc.ModC[0], classIndex, a.Blocks[0].ModC, 6 * h);
        o.GatherRows(cc.QkvU0, classIndex, a.Blocks[0].QkvU, l * 3 * h);
        for (int i = 0; i < Config.Depth; i++) Block(a, i, textQkvGiven: i == 0, cc, classIndex);
        o.GatherRows(cc.ModF, classIndex, a.ModFinal, 2 * h);
        FinalLayer(a, pred);
    }

    /// <summary>
    /// Accumulates ∂L/∂parameters into <see cref="Gradients"/> given dpred (R, C_in), replaying the
    /// activations of the last <see cref="Forward(DiTActivations, Tensor, Tensor, Tensor, Tensor, Tensor)"/> on <paramref name="a"/>.
    /// </summary>
    public void Backward(DiTActivations a, Tensor dpred, Tensor noisy, Tensor zg, Tensor zl)
    {
        var o = Ops;
        var g = a.Grad ?? throw new InvalidOperationException("these activations were created for inference (no saved activations or gradient scratch): use CreateActivations for training");
        int r = a.Rows, h = Config.Hidden, l = Config.LocalTokens, rl = r * l, mh = Config.MlpHidden;
        o.LinearBackward(dpred, a.HFinal, _finalLinear.W, g.H, _finalLinear.DW, _finalLinear.DB, r, h, Config.InChannels, false);
        o.Zero(g.ModF);
        o.LayerNormModulateBackward(g.H, a.X[Config.Depth], a.ModFinal, 2, 0, 1, a.MeanF, a.RstdF, g.X, g.ModF, r, 1, h, false);
        o.LinearBackward(g.ModF, a.SiluC, _finalAdaLN.W, g.SiluC, _finalAdaLN.DW, _finalAdaLN.DB, r, h, 2 * h, false);
        o.Zero(g.U); // the last block's text output is unused

        for (int i = Config.Depth - 1; i >= 0; i--)
        {
            var p = _blocks[i];
            var s = a.Blocks[i];
            bool last = i == Config.Depth - 1;
            o.Zero(g.Mod);
            o.Zero(g.ModC);
            // mlp, skeleton stream: X[i+1] = XMid + gate·fc2(gelu(fc1(LNmod(XMid))))
            o.GatedResidualBackward(g.X, s.Mod, 6, 5, s.Fc2X, g.Fc2X, g.Mod, r, 1, h);
            o.GeluTanh(s.Fc1X, a.GeluScratchX);
            o.LinearBackwardGelu(g.Fc2X, a.GeluScratchX, p.Fc2.W, s.Fc1X, g.GeluX, p.Fc2.DW, p.Fc2.DB, r, mh, h); // g.GeluX = ∂fc1 output
            o.LinearBackward(g.GeluX, s.H2x, p.Fc1.W, g.H, p.Fc1.DW, p.Fc1.DB, r, h, mh, false);
            o.LayerNormModulateBackward(g.H, s.XMid, s.Mod, 6, 3, 4, s.MeanX2, s.RstdX2, g.X, g.Mod, r, 1, h, true); // g.X is now dXMid
            // attention output, skeleton stream: XMid = X[i] + gate·proj(attX)
            o.GatedResidualBackward(g.X, s.Mod, 6, 2, s.ProjX, g.ProjX, g.Mod, r, 1, h);
            o.LinearBackward(g.ProjX, s.AttX, p.Proj.W, g.AttX, p.Proj.DW, p.Proj.DB, r, h, h, false);
            if (last)
            {
                o.Zero(g.AttU);
            }
            else
            {
                o.GatedResidualBackward(g.U, s.ModC, 6, 5, s.Fc2U, g.Fc2U, g.ModC, r, l, h);
                o.GeluTanh(s.Fc1U, a.GeluScratchU);
                o.LinearBackwardGelu(g.Fc2U, a.GeluScratchU, p.Fc2C.W, s.Fc1U, g.GeluU, p.Fc2C.DW, p.Fc2C.DB, rl, mh, h);
                o.LinearBackward(g.GeluU, s.H2u, p.Fc1C.W, g.Hu, p.Fc1C.DW, p.Fc1C.DB, rl, h, mh, false);
                o.LayerNormModulateBackward(g.Hu, s.UMid, s.ModC, 6, 3, 4, s.MeanU2, s.RstdU2, g.U, g.ModC, r, l, h, true);
                o.GatedResidualBackward(g.U, s.ModC, 6, 2, s.ProjU, g.ProjU, g.ModC, r, l, h);
                o.LinearBackward(g.ProjU, s.AttU, p.ProjC.W, g.AttU, p.ProjC.DW, p.ProjC.DB, rl, h, h, false);
            }
            o.JointAttentionBackward(g.AttX, g.AttU, s.QkvX, s.QkvU, s.Probs, g.QkvX, g.QkvU, r, l, h, Config.Heads);
            o.LinearBackward(g.QkvX, s.Hx, p.Qkv.W, g.H, p.Qkv.DW, p.Qkv.DB, r, h, 3 * h, false);
            o.LinearBackward(g.QkvU, s.Hu, p.QkvC.W, g.Hu, p.QkvC.DW, p.QkvC.DB, rl, h, 3 * h, false);
            // g.X / g.U hold the identity paths into X[i] / U[i]; add the LN branches.
            o.LayerNormModulateBackward(g.H, a.X[i], s.Mod, 6, 0, 1, s.MeanX1, s.RstdX1, g.X, g.Mod, r, 1, h, true);
            o.LayerNormModulateBackward(g.Hu, a.U[i], s.ModC, 6, 0, 1, s.MeanU1, s.RstdU1, g.U, g.ModC, r, l, h, true);
            o.LinearBackward(g.Mod, a.SiluC, p.AdaLN.W, g.SiluC, p.AdaLN.DW, p.AdaLN.DB, r, h, 6 * h, true);
            o.LinearBackward(g.ModC, a.SiluC, p.AdaLNc.W, g.SiluC, p.AdaLNc.DW, p.AdaLNc.DB, r, h, 6 * h, true);
        }
        // embeddings
        o.SiluBackward(a.C, g.SiluC, g.C, false);
        o.LinearBackward(g.C, a.T1Act, _tMlp2.W, g.T1, _tMlp2.DW, _tMlp2.DB, r, h, h, false);
        o.SiluBackward(a.T1, g.T1, g.T1, false);
        o.LinearBackward(g.T1, a.TFreq, _tMlp0.W, null, _tMlp0.DW, _tMlp0.DB, r, _tMlp0.In, h, false);
        o.LinearBackward(g.C, a.F1Act, _fc2.W, g.F1, _fc2.DW, _fc2.DB, r, h, h, false);
        o.SiluBackward(a.F1, g.F1, g.F1, false);
        o.LinearBackward(g.F1, zg, _fc0.W, null, _fc0.DW, _fc0.DB, r, _fc0.In, h, false);
        o.SumRowsInto(g.U, _dpos, r);
        o.LinearBackward(g.U, zl, _flEmb.W, null, _flEmb.DW, _flEmb.DB, rl, _flEmb.In, h, false);
        o.LinearBackward(g.X, noisy, _xEmb.W, null, _xEmb.DW, _xEmb.DB, r, _xEmb.In, h, false);
    }
}

/// <summary>
/// Every activation the DiT saves for its backward, for a fixed number of rows, allocated once
/// (a training step then allocates nothing). X[i] / U[i] are the stream inputs of block i
/// (X[Depth] feeds the final layer); GELU outputs are recomputed in the backward instead of kept.
/// </summary>
public sealed class DiTActivations
{
    public sealed class Block
    {
        public required Tensor Mod, ModC, Hx, Hu, MeanX1, RstdX1, MeanU1, RstdU1, QkvX, QkvU, Probs, AttX, AttU,
            ProjX, ProjU, XMid, UMid, H2x, H2u, MeanX2, RstdX2, MeanU2, RstdU2, Fc1X, Fc1U, Fc2X, Fc2U;

        // The same tensors but the text modulation: forward-only blocks alternate between two (a block's end reads its own and the next one's).
        internal Block WithModC(Tensor modC)
        {
            var b = (Block)MemberwiseClone();
            b.ModC = modC;
            return b;
        }
    }

    /// <summary>Gradient scratch, reused across blocks.</summary>
    public sealed class Grads
    {
        public required Tensor X, U, H, Hu, Mod, ModC, ModF, SiluC, C, T1, F1, Fc2X, Fc2U, GeluX, GeluU, ProjX, ProjU, AttX, AttU, QkvX, QkvU;
    }

    public int Rows { get; }
    public Tensor[] X { get; }
    public Tensor[] U { get; }
    public Tensor TFreq { get; }
    public Tensor T1 { get; }
    public Tensor T1Act { get; }
    public Tensor TEmb { get; }
    public Tensor F1 { get; }
    public Tensor F1Act { get; }
    public Tensor FcEmb { get; }
    public Tensor C { get; }
    public Tensor SiluC { get; }
    public Tensor ModFinal { get; }
    public Tensor HFinal { get; }
    public Tensor MeanF { get; }
    public Tensor RstdF { get; }
    public Tensor GeluScratchX { get; }
    public Tensor GeluScratchU { get; }
    public Block[] Blocks { get; }

    /// <summary>Gradient scratch; null for forward-only activations.</summary>
    public Grads? Grad { get; }

    /// <summary>True when the blocks share storage (<see cref="DiT.CreateInferenceActivations"/>).</summary>
    public bool ForwardOnly { get; }

    private readonly DiTConfig _config;
    private readonly List<Tensor> _storage = [];   // every tensor in allocation order, for Prefix

    public DiTActivations(DiTConfig c, IOps o, int rows, bool forwardOnly = false)
        : this(c, rows, forwardOnly, shape => o.Allocate(shape))
    {
    }

    /// <summary>
    /// The first <paramref name="rows"/> rows of these activations as a set of their own: views on
    /// the same storage (every tensor is row-major with the rows leading), for a last chunk smaller
    /// than the rest. Allocates nothing on the backend.
    /// </summary>
    public DiTActivations Prefix(IOps o, int rows)
    {
        if (rows <= 0 || rows > Rows) throw new ArgumentOutOfRangeException(nameof(rows), $"a prefix of 1..{Rows} rows, got {rows}");
        if (rows == Rows) return this;
        // The same constructor makes the same allocations in the same order: the i-th one becomes a view of the i-th tensor here.
        int next = 0;
        return new DiTActivations(_config, rows, ForwardOnly, shape => o.View(_storage[next++], 0, shape));
    }

    private DiTActivations(DiTConfig c, int rows, bool forwardOnly, Func<int[], Tensor> allocate)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows));
        _config = c;
        Rows = rows;
        ForwardOnly = forwardOnly;
        Tensor Alloc(params int[] shape)
        {
            var t = allocate(shape);
            _storage.Add(t);
            return t;
        }
        int r = rows, h = c.Hidden, l = c.LocalTokens, s = c.Tokens, mh = c.MlpHidden;
        if (forwardOnly)
        {
            // Block i reads X[i], U[i] and writes X[i+1], U[i+1]: two buffers per stream suffice.
            Tensor[] x2 = [Alloc(r, h), Alloc(r, h)], u2 = [Alloc(r, l, h), Alloc(r, l, h)];
            X = Enumerable.Range(0, c.Depth + 1).Select(i => x2[i % 2]).ToArray();
            U = Enumerable.Range(0, c.Depth).Select(i => u2[i % 2]).ToArray();
        }
        else
        {
            X = Enumerable.Range(0, c.Depth + 1).Select(_ => Alloc(r, h)).ToArray();
            // U[Depth] would be the unused text output of the last block: not allocated.
            U = Enumerable.Range(0, c.Depth).Select(_ => Alloc(r, l, h)).ToArray();
        }
        TFreq = Alloc(r, Reference.TimestepEmbedding.Dim);
        T1 = Alloc(r, h); T1Act = Alloc(r, h); TEmb = Alloc(r, h);
        F1 = Alloc(r, h); F1Act = Alloc(r, h); FcEmb = Alloc(r, h);
        C = Alloc(r, h); SiluC = Alloc(r, h);
        ModFinal = Alloc(r, 2 * h); HFinal = Alloc(r, h); MeanF = Alloc(r); RstdF = Alloc(r);
        GeluScratchX = Alloc(r, mh); GeluScratchU = Alloc(r, l, mh);
        Blocks = new Block[c.Depth];
        Tensor AllocQkvUAndScratch()
        {
            long scratch = Reference.ReferenceOps.SkeletonRowFromTextScratch(r, l, h, c.Heads);
            return scratch > (long)r * l * 3 * h ? Alloc(checked((int)scratch)) : Alloc(r, l, 3 * h);
        }
        for (int i = 0; i < c.Depth; i++)
        {
            // Forward-only blocks share their tensors but the text modulation, which alternates (DiT.Block's end reads the next one's).
            if (forwardOnly && i > 0) { Blocks[i] = i == 1 ? Blocks[0].WithModC(Alloc(r, 6 * h)) : Blocks[i % 2]; continue; }
            bool last = i == c.Depth - 1 && !forwardOnly;
            // The last block's text-stream tensors after attention are never written.
            Tensor U3(int w) => last ? Alloc(1) : Alloc(r, l, w);
            Tensor U1() => last ? Alloc(1) : Alloc(r * l);
            Blocks[i] = new Block
            {
                Mod = Alloc(r, 6 * h), ModC = Alloc(r, 6 * h),
                Hx = Alloc(r, h), Hu = Alloc(r, l, h),
                MeanX1 = Alloc(r), RstdX1 = Alloc(r), MeanU1 = Alloc(r * l), RstdU1 = Alloc(r * l),
                // Forward-only: QkvU is also the last block's attention scratch (DiT.Block), which may exceed the text q/k/v at few
                // rows; Probs is empty (IOps.JointAttention then saves none: no backward reads them).
                QkvX = Alloc(r, 3 * h), QkvU = forwardOnly ? AllocQkvUAndScratch() : Alloc(r, l, 3 * h), Probs = forwardOnly ? Alloc(0) : Alloc(r, c.Heads, s, s),
                AttX = Alloc(r, h), AttU = Alloc(r, l, h),
                ProjX = Alloc(r, h), ProjU = U3(h), XMid = Alloc(r, h), UMid = U3(h),
                H2x = Alloc(r, h), H2u = U3(h), MeanX2 = Alloc(r), RstdX2 = Alloc(r), MeanU2 = U1(), RstdU2 = U1(),
                // Forward-only blocks run the MLP as one op (DiT.Mlp, IOps.Mlp): no pre-activation to keep.
                Fc1X = forwardOnly ? Alloc(1) : Alloc(r, mh), Fc1U = forwardOnly ? Alloc(1) : U3(mh), Fc2X = Alloc(r, h), Fc2U = U3(h),
            };
        }
        if (forwardOnly) return;
        Grad = new Grads
        {
            X = Alloc(r, h), U = Alloc(r, l, h), H = Alloc(r, h), Hu = Alloc(r, l, h),
            Mod = Alloc(r, 6 * h), ModC = Alloc(r, 6 * h), ModF = Alloc(r, 2 * h),
            SiluC = Alloc(r, h), C = Alloc(r, h), T1 = Alloc(r, h), F1 = Alloc(r, h),
            Fc2X = Alloc(r, h), Fc2U = Alloc(r, l, h), GeluX = Alloc(r, mh), GeluU = Alloc(r, l, mh),
            ProjX = Alloc(r, h), ProjU = Alloc(r, l, h), AttX = Alloc(r, h), AttU = Alloc(r, l, h),
            QkvX = Alloc(r, 3 * h), QkvU = Alloc(r, l, 3 * h),
        };
    }
}

/// <summary>
/// The per-class constants of zero-shot scoring (<see cref="DiT.PrecomputeClassConstants"/>) for up
/// to <see cref="Capacity"/> classes, on the model's backend: per block the adaLN modulations Mod,
/// ModC (K, 6H), the final modulation ModF (K, 2H), the text stream input U0 (K, L, H) and the
/// first block's text q/k/v QkvU0 (K, L, 3H), plus the scratch that computes them.
/// </summary>
public sealed class DiTClassConstants
{
    public int Capacity { get; }

    /// <summary>How many classes the last <see cref="DiT.PrecomputeClassConstants"/> filled (0 before).</summary>
    public int Classes { get; internal set; }

    internal readonly Tensor T, TFreq, T1, T1Act, TEmb, F1, F1Act, C, SiluC, ModF, U0, Hu0, Mean0, Rstd0, QkvU0;
    internal readonly Tensor[] Mod, ModC;

    internal DiTClassConstants(DiTConfig c, IOps o, int capacity)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity));
        Capacity = capacity;
        int k = capacity, h = c.Hidden, l = c.LocalTokens;
        T = o.Allocate(1);
        o.Upload([c.TTest], T);
        TFreq = o.Allocate(1, Reference.TimestepEmbedding.Dim);
        T1 = o.Allocate(1, h); T1Act = o.Allocate(1, h); TEmb = o.Allocate(1, h);
        F1 = o.Allocate(k, h); F1Act = o.Allocate(k, h); C = o.Allocate(k, h); SiluC = o.Allocate(k, h);
        Mod = Enumerable.Range(0, c.Depth).Select(_ => o.Allocate(k, 6 * h)).ToArray();
        ModC = Enumerable.Range(0, c.Depth).Select(_ => o.Allocate(k, 6 * h)).ToArray();
        ModF = o.Allocate(k, 2 * h);
        U0 = o.Allocate(k, l, h); Hu0 = o.Allocate(k, l, h); Mean0 = o.Allocate(k * l); Rstd0 = o.Allocate(k * l);
        QkvU0 = o.Allocate(k, l, 3 * h);
    }
}
