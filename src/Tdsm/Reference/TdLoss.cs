using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>The three numbers of a TD-loss evaluation.</summary>
public readonly record struct TdLossValue(double Loss, double Diffusion, double Triplet);

/// <summary>
/// The TDSM loss (official code), reference tier. pred is (2B, C): rows 0..B-1 conditioned on the
/// true class, rows B..2B-1 on the negative class; eps (B, C); mask (B) is 1 where y ≠ y_neg.
/// L_diff = mean over rows 0..B-1 and channels of (pred - eps)²; pos_i, neg_i the per-row means;
/// L_TD = mean_i max(pos_i - neg_i + margin, 0)·mask_i; L = L_diff + λ·L_TD.
/// Backward writes dpred (2B, C) = ∂L/∂pred (overwritten). The hinge's gradient at exactly 0 is 0,
/// like torch.relu.
/// </summary>
public static class TdLoss
{
    public static TdLossValue Forward<T>(ReadOnlySpan<T> pred, ReadOnlySpan<T> eps, ReadOnlySpan<T> mask, Span<T> pos, Span<T> neg,
        Span<T> dpred, int b, int c, double margin, double lambda) where T : IFloatingPointIeee754<T>
    {
        double diff = 0, trip = 0;
        for (int i = 0; i < b; i++)
        {
            double p = 0, n = 0;
            for (int k = 0; k < c; k++)
            {
                double e = D(eps[i * c + k]);
                double dp = D(pred[i * c + k]) - e, dn = D(pred[(b + i) * c + k]) - e;
                p += dp * dp; n += dn * dn;
            }
            p /= c; n /= c;
            pos[i] = F<T>(p); neg[i] = F<T>(n);
            diff += p;
            double hinge = p - n + margin;
            double m = D(mask[i]);
            if (hinge > 0) trip += hinge * m;
            // ∂/∂pred: L_diff gives 2(pred-eps)/(B·C); the active hinge adds ±λ·mask·2(pred-eps)/(B·C).
            double active = hinge > 0 ? lambda * m : 0;
            for (int k = 0; k < c; k++)
            {
                double e = D(eps[i * c + k]);
                double dp = D(pred[i * c + k]) - e, dn = D(pred[(b + i) * c + k]) - e;
                dpred[i * c + k] = F<T>(2 * dp * (1 + active) / ((double)b * c));
                dpred[(b + i) * c + k] = F<T>(-2 * dn * active / ((double)b * c));
            }
        }
        diff /= b; trip /= b;
        return new TdLossValue(diff + lambda * trip, diff, trip);
    }
}
