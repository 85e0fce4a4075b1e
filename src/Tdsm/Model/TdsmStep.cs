using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>
/// One TDSM training forward/backward (TDSM_SPEC.md section 4) for a batch of B samples:
/// q-sample z_t from (z_x, eps, t); the batch is duplicated so rows 0..B-1 see text(y) and rows
/// B..2B-1 see text(y_neg); pred = DiT(z_t, t, z_g, z_l); L = L_diff + λ·L_TD; then the DiT's
/// backward accumulates the gradients. All 2B-row buffers are allocated once here.
/// </summary>
public sealed class TdsmStep
{
    public DiT Model { get; }
    public int Batch { get; }
    public DiTActivations Activations { get; }
    public Tensor X0 { get; }
    public Tensor Eps { get; }
    public Tensor T { get; }
    public Tensor T2 { get; }
    public Tensor Noisy2 { get; }
    public Tensor Zg2 { get; }
    public Tensor Zl2 { get; }
    public Tensor Pred { get; }
    public Tensor DPred { get; }
    public Tensor Mask { get; }
    public Tensor Pos { get; }
    public Tensor Neg { get; }
    private readonly float[] _alphas;
    private readonly int[] _rowLabels;
    private readonly float[] _hostT2, _hostMask;

    public TdsmStep(DiT model, int batch)
    {
        Model = model; Batch = batch;
        var c = model.Config;
        var o = model.Ops;
        int b2 = 2 * batch;
        Activations = model.CreateActivations(b2);
        X0 = o.Allocate(batch, c.InChannels); Eps = o.Allocate(batch, c.InChannels); T = o.Allocate(batch);
        T2 = o.Allocate(b2); Noisy2 = o.Allocate(b2, c.InChannels);
        Zg2 = o.Allocate(b2, c.CondSize); Zl2 = o.Allocate(b2, c.LocalTokens, c.CondSize);
        Pred = o.Allocate(b2, c.InChannels); DPred = o.Allocate(b2, c.InChannels);
        Mask = o.Allocate(batch); Pos = o.Allocate(batch); Neg = o.Allocate(batch);
        _alphas = NoiseSchedule.AlphasCumprod(c.Steps, c.BetaStart, c.BetaEnd);
        _rowLabels = new int[b2];
        _hostT2 = new float[b2];
        _hostMask = new float[batch];
    }

    /// <summary>ᾱ_t of this model's schedule.</summary>
    public ReadOnlySpan<float> AlphasCumprod => _alphas;

    /// <summary>
    /// Runs the forward (and, when <paramref name="backward"/>, the backward into the model's
    /// gradients, which the caller zeroes). x0, eps are (B, C_in); t, labels, labelsNeg are (B).
    /// </summary>
    public TdLossValue Run(ReadOnlySpan<float> x0, ReadOnlySpan<float> eps, ReadOnlySpan<int> t, ReadOnlySpan<int> labels, ReadOnlySpan<int> labelsNeg,
        TextTable text, double margin, double lambda, bool backward)
    {
        var c = Model.Config;
        var o = Model.Ops;
        int b = Batch, cin = c.InChannels;
        if (x0.Length != b * cin || eps.Length != b * cin || t.Length != b || labels.Length != b || labelsNeg.Length != b)
            throw new ArgumentException($"batch inputs must hold B={b} rows of C_in={cin}");
        if (text.Cond != c.CondSize || text.LocalTokens != c.LocalTokens)
            throw new ArgumentException($"text features are (L={text.LocalTokens}, cond={text.Cond}) but the model expects (L={c.LocalTokens}, cond={c.CondSize})");
        o.Upload(x0, X0);
        o.Upload(eps, Eps);
        for (int i = 0; i < b; i++)
        {
            if (t[i] < 0 || t[i] >= c.Steps) throw new ArgumentOutOfRangeException(nameof(t), $"timestep {t[i]} outside [0, {c.Steps})");
            _hostT2[i] = _hostT2[b + i] = t[i];
            _rowLabels[i] = labels[i];
            _rowLabels[b + i] = labelsNeg[i];
            _hostMask[i] = labels[i] != labelsNeg[i] ? 1f : 0f;
        }
        o.Upload(_hostT2.AsSpan(0, b), T);
        o.Upload(_hostT2, T2);
        o.Upload(_hostMask, Mask);
        o.QSample(X0, Eps, T, _alphas, o.View(Noisy2, 0, b, cin), b, cin);
        o.QSample(X0, Eps, T, _alphas, o.View(Noisy2, b * cin, b, cin), b, cin);
        o.GatherRows(text.Global, _rowLabels, Zg2, c.CondSize);
        o.GatherRows(text.Local, _rowLabels, Zl2, c.LocalTokens * c.CondSize);
        Model.Forward(Activations, Noisy2, T2, Zg2, Zl2, Pred);
        var loss = o.TdLoss(Pred, Eps, Mask, Pos, Neg, DPred, b, cin, margin, lambda);
        if (backward) Model.Backward(Activations, DPred, Noisy2, Zg2, Zl2);
        return loss;
    }
}
