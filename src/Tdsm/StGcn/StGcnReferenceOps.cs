using Tdsm.StGcn.Reference;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

/// <summary>The reference tier in float32 storage (float64 accumulation): a thin adapter over <see cref="Ref"/>
/// (plain loops, never optimised: the oracle of the other tiers).</summary>
public sealed class StGcnReferenceOps : StGcnHostOps
{
    /// <inheritdoc/>
    public override string Name => "reference";

    /// <inheritdoc/>
    protected override void InputToBnLayout(Seg x, Seg y, int n, int c, int t, int v, int m) => Ref.InputToBnLayout<float>(x, y, n, c, t, v, m);
    /// <inheritdoc/>
    protected override void InputToBnLayoutBackward(Seg dy, Seg dx, int n, int c, int t, int v, int m) => Ref.InputToBnLayoutBackward<float>(dy, dx, n, c, t, v, m);
    /// <inheritdoc/>
    protected override void BnToBlockLayout(Seg x, Seg y, int b, int c, int t, int v) => Ref.BnToBlockLayout<float>(x, y, b, c, t, v);
    /// <inheritdoc/>
    protected override void BnToBlockLayoutBackward(Seg dy, Seg dx, int b, int c, int t, int v) => Ref.BnToBlockLayoutBackward<float>(dy, dx, b, c, t, v);

    /// <inheritdoc/>
    protected override void BatchNormTrainForward(Seg x, Seg gamma, Seg beta, Seg y, Seg saveMean, Seg saveRstd, Seg runMean, Seg runVar,
        int b, int c, int l, double eps, double momentum) =>
        Ref.BatchNormTrainForward<float>(x, gamma, beta, y, saveMean, saveRstd, runMean, runVar, b, c, l, eps, momentum);
    /// <inheritdoc/>
    protected override void BatchNormEvalForward(Seg x, Seg gamma, Seg beta, Seg y, Seg runMean, Seg runVar, int b, int c, int l, double eps) =>
        Ref.BatchNormEvalForward<float>(x, gamma, beta, y, runMean, runVar, b, c, l, eps);
    /// <inheritdoc/>
    protected override void BatchNormBackward(Seg dy, Seg x, Seg gamma, Seg saveMean, Seg saveRstd, Seg dx, Seg dGamma, Seg dBeta, int b, int c, int l) =>
        Ref.BatchNormBackward<float>(dy, x, gamma, saveMean, saveRstd, dx, dGamma, dBeta, b, c, l);

    /// <inheritdoc/>
    protected override void Conv1x1Forward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int stride) =>
        Ref.Conv1x1Forward<float>(x, w, bias, y, b, cin, cout, t, v, stride);
    /// <inheritdoc/>
    protected override void Conv1x1Backward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int stride) =>
        Ref.Conv1x1Backward<float>(dy, x, w, dx, dW, dBias, b, cin, cout, t, v, stride);

    /// <inheritdoc/>
    protected override void GraphAggregateForward(Seg y, Seg a, Seg imp, Seg o, int b, int k, int c, int t, int v) =>
        Ref.GraphAggregateForward<float>(y, a, imp, o, b, k, c, t, v);
    /// <inheritdoc/>
    protected override void GraphAggregateBackward(Seg dO, Seg y, Seg a, Seg imp, Seg dy, Seg dImp, int b, int k, int c, int t, int v) =>
        Ref.GraphAggregateBackward<float>(dO, y, a, imp, dy, dImp, b, k, c, t, v);

    /// <inheritdoc/>
    protected override void TemporalConvForward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        Ref.TemporalConvForward<float>(x, w, bias, y, b, cin, cout, t, v, kt, stride);
    /// <inheritdoc/>
    protected override void TemporalConvBackward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int kt, int stride) =>
        Ref.TemporalConvBackward<float>(dy, x, w, dx, dW, dBias, b, cin, cout, t, v, kt, stride);

    /// <inheritdoc/>
    protected override void ReluForward(Seg x, Seg y) => Ref.ReluForward<float>(x, y);
    /// <inheritdoc/>
    protected override void ReluBackward(Seg dy, Seg y, Seg dx) => Ref.ReluBackward<float>(dy, y, dx);
    /// <inheritdoc/>
    protected override void ResidualReluForward(Seg a, Seg r, Seg y) => Ref.ResidualReluForward<float>(a, r, y);
    /// <inheritdoc/>
    protected override void ResidualReluBackward(Seg dy, Seg y, Seg da, Seg dr) => Ref.ResidualReluBackward<float>(dy, y, da, dr);

    /// <inheritdoc/>
    protected override void PoolForward(Seg x, Seg f, int n, int m, int c, int l) => Ref.PoolForward<float>(x, f, n, m, c, l);
    /// <inheritdoc/>
    protected override void PoolBackward(Seg df, Seg dx, int n, int m, int c, int l) => Ref.PoolBackward<float>(df, dx, n, m, c, l);

    /// <inheritdoc/>
    protected override void AddInPlace(Seg source, Seg destination)
    {
        for (int i = 0; i < source.Count; i++) destination[i] += source[i];
    }

    /// <inheritdoc/>
    protected override void SgdNesterovStep(Seg p, Seg g, Seg buf, double lr, double momentum, double weightDecay) =>
        SgdNesterov.Update(p, g, buf, lr, momentum, weightDecay);
}
