using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>AdamW hyper-parameters (the official run: lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0.01).</summary>
public sealed record AdamWConfig(double Lr = 1e-4, double Beta1 = 0.9, double Beta2 = 0.999, double Eps = 1e-8, double WeightDecay = 0.01);

/// <summary>
/// AdamW with decoupled weight decay, as torch.optim.AdamW: p -= lr·wd·p, then the bias-corrected
/// Adam step. p, g, m, v are one parameter's (or one contiguous range's) elements; <c>step</c> is
/// 1 for the first update.
/// </summary>
public static class AdamW
{
    public static void Step<T>(Span<T> p, ReadOnlySpan<T> g, Span<T> m, Span<T> v, double lr, AdamWConfig cfg, int step)
        where T : IFloatingPointIeee754<T>
    {
        double bc1 = 1 - Math.Pow(cfg.Beta1, step), bc2 = 1 - Math.Pow(cfg.Beta2, step);
        for (int i = 0; i < p.Length; i++)
        {
            double gi = D(g[i]);
            double pi = D(p[i]) * (1 - lr * cfg.WeightDecay);
            double mi = cfg.Beta1 * D(m[i]) + (1 - cfg.Beta1) * gi;
            double vi = cfg.Beta2 * D(v[i]) + (1 - cfg.Beta2) * gi * gi;
            pi -= lr / bc1 * mi / (Math.Sqrt(vi) / Math.Sqrt(bc2) + cfg.Eps);
            p[i] = F<T>(pi); m[i] = F<T>(mi); v[i] = F<T>(vi);
        }
    }
}

/// <summary>
/// The official learning-rate schedule: linear warm-up then cosine decay to 0.
/// lr(s) = base·s/warmup for s &lt; warmup, else base·½(1 + cos(π(s - warmup)/(total - warmup))),
/// where s counts scheduler steps taken before this optimiser step (so the first step uses 0).
/// </summary>
public static class CosineSchedule
{
    public static double LearningRate(double baseLr, int s, int warmup, int total)
    {
        if (s < warmup) return baseLr * s / warmup;
        double progress = total > warmup ? (double)(s - warmup) / (total - warmup) : 1;
        return baseLr * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(progress, 1)));
    }
}
