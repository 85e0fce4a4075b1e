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

    /// <summary>Class ids of the batch (B) and of its negatives (B), integer-valued floats.</summary>
    public Tensor Y { get; }
    public Tensor YNeg { get; }

    /// <summary>Class ids of the 2B rows: [y ; y_neg].</summary>
    public Tensor Labels2 { get; }
    public Tensor Pos { get; }
    public Tensor Neg { get; }

    /// <summary>(3) [L, L_diff, L_TD] of the last <see cref="Run"/>.</summary>
    public Tensor Loss { get; }

    /// <summary>fl_embedder's output per class and token (K·L, H), when the text table has fewer classes than the step has rows.</summary>
    public Tensor? UTable { get; }

    private readonly float[] _alphas;
    private readonly float[] _staging; // host copies of [t | y | y_neg], (3B)

    /// <param name="model">The DiT.</param>
    /// <param name="batch">B: the step runs 2B rows.</param>
    /// <param name="textClasses">Classes of the text tables the step will be given (0: unknown). With fewer than 2B, the
    /// text tokens are embedded once per class and gathered (<see cref="DiT.Forward(DiTActivations, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)"/>).</param>
    public TdsmStep(DiT model, int batch, int textClasses = 0)
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
        Y = o.Allocate(batch); YNeg = o.Allocate(batch); Labels2 = o.Allocate(b2);
        Loss = o.Allocate(3);
        if (textClasses > 0 && textClasses < b2) UTable = o.Allocate(textClasses * c.LocalTokens, c.Hidden);
        _alphas = NoiseSchedule.AlphasCumprod(c.Steps, c.BetaStart, c.BetaEnd);
        _staging = new float[3 * batch];
    }

    /// <summary>ᾱ_t of this model's schedule.</summary>
    public ReadOnlySpan<float> AlphasCumprod => _alphas;

    /// <summary>
    /// Runs the forward (and, when <paramref name="backward"/>, the backward into the model's
    /// gradients, which the caller zeroes). x0, eps are (B, C_in); t, labels, labelsNeg are (B).
    /// Waits for the loss to come back.
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
            if ((uint)labels[i] >= (uint)text.Classes || (uint)labelsNeg[i] >= (uint)text.Classes)
                throw new ArgumentOutOfRangeException(nameof(labels), $"class id outside [0, {text.Classes})");
            _staging[i] = t[i];
            _staging[b + i] = labels[i];
            _staging[2 * b + i] = labelsNeg[i];
        }
        o.Upload(_staging.AsSpan(0, b), T);
        o.Upload(_staging.AsSpan(b, b), Y);
        o.Upload(_staging.AsSpan(2 * b, b), YNeg);
        RunStaged(text, margin, lambda, backward, Loss);
        Span<float> l = stackalloc float[3];
        o.Download(Loss, l);
        return new TdLossValue(l[0], l[1], l[2]);
    }

    /// <summary>
    /// The step from inputs already on the backend: <see cref="X0"/>, <see cref="Eps"/>,
    /// <see cref="T"/>, <see cref="Y"/> and <see cref="YNeg"/> (filled by the caller, e.g. by
    /// on-device sampling). Nothing crosses to the host: the loss scalars [L, L_diff, L_TD] go to
    /// <paramref name="loss"/> (3) on the backend.
    /// </summary>
    public void RunStaged(TextTable text, double margin, double lambda, bool backward, Tensor loss)
    {
        var c = Model.Config;
        var o = Model.Ops;
        int b = Batch, cin = c.InChannels;
        o.Copy(T, o.View(T2, 0, b));
        o.Copy(T, o.View(T2, b, b));
        o.Copy(Y, o.View(Labels2, 0, b));
        o.Copy(YNeg, o.View(Labels2, b, b));
        o.NotEqual(Y, YNeg, Mask);
        o.QSample(X0, Eps, T, _alphas, o.View(Noisy2, 0, b, cin), b, cin);
        o.Copy(o.View(Noisy2, 0, b, cin), o.View(Noisy2, b * cin, b, cin)); // the negatives' rows see the same z_t
        o.GatherRows(text.Global, Labels2, Zg2, c.CondSize);
        bool byClass = UTable is not null && UTable.Length == (long)text.Classes * c.LocalTokens * c.Hidden;
        if (backward || !byClass) o.GatherRows(text.Local, Labels2, Zl2, c.LocalTokens * c.CondSize); // fl_embedder's weight gradient reads the rows
        if (byClass) Model.Forward(Activations, Noisy2, T2, Zg2, text.Local, Labels2, UTable!, Pred);
        else Model.Forward(Activations, Noisy2, T2, Zg2, Zl2, Pred);
        o.TdLoss(Pred, Eps, Mask, Pos, Neg, DPred, loss, b, cin, margin, lambda);
        if (backward) Model.Backward(Activations, DPred, Noisy2, Zg2, Zl2);
    }
}
