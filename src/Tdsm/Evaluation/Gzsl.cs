namespace Tdsm.Evaluation;

/// <summary>
/// Generalised zero-shot results: top-1 accuracy over the test samples of seen classes (S) and of
/// unseen classes (U), each with every seen + unseen class as a candidate, and their harmonic mean
/// H = 2SU / (S + U). <see cref="Gamma"/> is the calibrated-stacking factor that was applied.
/// </summary>
public sealed record GzslResult(double SeenAccuracy, double UnseenAccuracy, double HarmonicMean, double Gamma, int SeenSamples, int UnseenSamples);

/// <summary>
/// Generalised zero-shot evaluation with calibrated stacking (Chao et al., ECCV 2016) over a score
/// matrix scores (N, K) whose columns are the candidate class ids (seen + unseen).
/// <para>Sign convention: γ always penalises the seen classes, so γ &gt; 0 moves predictions towards
/// unseen classes in both orders. For <see cref="ScoreOrder.LowerIsBetter"/> (TDSM errors) the
/// calibrated score is s + γ for seen columns, prediction argmin; for
/// <see cref="ScoreOrder.HigherIsBetter"/> (cosine) it is s − γ, prediction argmax.</para>
/// <para>Equivalently, with the seen margin d_n = how much better the best seen score is than the best
/// unseen one (positive = seen wins), a sample is predicted as seen iff d_n &gt; γ (a tie goes to
/// unseen), and then as its best seen class, otherwise as its best unseen class.</para>
/// </summary>
public static class Gzsl
{
    /// <summary>2SU / (S + U); 0 when both are 0.</summary>
    public static double HarmonicMean(double seen, double unseen) => seen + unseen <= 0 ? 0 : 2 * seen * unseen / (seen + unseen);

    /// <summary>Predicted class ids (N) after calibrated stacking with factor <paramref name="gamma"/>.</summary>
    public static int[] Predict(double[,] scores, IReadOnlyList<int> candidates, IReadOnlySet<int> seen, ScoreOrder order, double gamma)
    {
        var (margin, bestSeen, bestUnseen) = Margins(scores, candidates, seen, order);
        var pred = new int[margin.Length];
        for (int i = 0; i < pred.Length; i++) pred[i] = margin[i] > gamma ? bestSeen[i] : bestUnseen[i];
        return pred;
    }

    /// <summary>Seen accuracy, unseen accuracy and H of <paramref name="labels"/> (N class ids) at factor <paramref name="gamma"/>.</summary>
    /// <exception cref="ArgumentException">Shapes disagree, a label is not a candidate, or seen or unseen test samples are missing.</exception>
    public static GzslResult Evaluate(double[,] scores, IReadOnlyList<int> labels, IReadOnlyList<int> candidates, IReadOnlySet<int> seen, ScoreOrder order, double gamma)
    {
        if (labels.Count != scores.GetLength(0)) throw new ArgumentException($"{labels.Count} labels for {scores.GetLength(0)} score rows");
        var pred = Predict(scores, candidates, seen, order, gamma);
        var cand = candidates.ToHashSet();
        int ns = 0, nu = 0, cs = 0, cu = 0;
        for (int i = 0; i < labels.Count; i++)
        {
            if (!cand.Contains(labels[i])) throw new ArgumentException($"sample {i}: label {labels[i]} is not a candidate class");
            bool ok = pred[i] == labels[i];
            if (seen.Contains(labels[i])) { ns++; if (ok) cs++; } else { nu++; if (ok) cu++; }
        }
        if (ns == 0 || nu == 0) throw new ArgumentException($"GZSL needs test samples of both seen and unseen classes, got {ns} seen and {nu} unseen");
        double s = (double)cs / ns, u = (double)cu / nu;
        return new GzslResult(s, u, HarmonicMean(s, u), gamma, ns, nu);
    }

    /// <summary>
    /// Per sample: d (N) = the seen margin (positive = best seen beats best unseen), and the best seen
    /// and best unseen class ids.
    /// </summary>
    public static (double[] Margin, int[] BestSeen, int[] BestUnseen) Margins(double[,] scores, IReadOnlyList<int> candidates, IReadOnlySet<int> seen, ScoreOrder order)
    {
        ScoreMatrix.CheckColumns(scores, candidates);
        int n = scores.GetLength(0), k = candidates.Count;
        var isSeen = candidates.Select(seen.Contains).ToArray();
        if (!isSeen.Contains(true) || !isSeen.Contains(false))
            throw new ArgumentException($"GZSL candidates need both seen and unseen classes; {isSeen.Count(s => s)} of {k} candidates are seen");
        var margin = new double[n];
        var bs = new int[n];
        var bu = new int[n];
        for (int i = 0; i < n; i++)
        {
            int s = -1, u = -1;
            for (int c = 0; c < k; c++)
            {
                if (isSeen[c]) { if (s < 0 || ScoreMatrix.Better(scores[i, c], scores[i, s], order)) s = c; }
                else if (u < 0 || ScoreMatrix.Better(scores[i, c], scores[i, u], order)) u = c;
            }
            margin[i] = order == ScoreOrder.LowerIsBetter ? scores[i, u] - scores[i, s] : scores[i, s] - scores[i, u];
            bs[i] = candidates[s];
            bu[i] = candidates[u];
        }
        return (margin, bs, bu);
    }
}

/// <summary>
/// Choosing the calibrated-stacking factor γ without touching the unseen test data. Two criteria:
/// <list type="bullet">
/// <item><see cref="BySeenFraction"/> needs only held-out samples of seen classes (e.g. a split-off
/// part of the seen training features, scored against seen + unseen candidates): γ is set so that a
/// target fraction q of them stays predicted as some seen class. This caps the seen accuracy lost to
/// calibration at 1 − q, but cannot see how much unseen accuracy is gained, so q is a stated choice
/// (default 0.9), not a measured optimum.</item>
/// <item><see cref="ByHarmonicMean"/> is the protocol of Chao et al. and of the gating models in
/// SynSE / SA-DVAE (their gate is tuned on seen data only): hold out some seen classes as
/// pseudo-unseen, train a model on the rest, score a validation set holding samples of both, and pick
/// the γ that maximises the harmonic mean there. It measures the trade-off, at the cost of a second
/// training run; the γ found is then applied to the model trained on all seen classes.</item>
/// </list>
/// Both search the exact breakpoints of the piecewise-constant criterion (midpoints between sorted margins).
/// </summary>
public static class GzslCalibration
{
    /// <summary>
    /// γ such that a fraction <paramref name="keepSeen"/> of the seen-class validation samples keeps a
    /// seen prediction: the samples whose seen margin d is among the lowest ⌊(1−q)·N⌋ flip to unseen.
    /// </summary>
    /// <param name="scores">(N, K) scores of held-out seen-class samples against every seen + unseen candidate.</param>
    /// <param name="candidates">(K) class ids of the columns.</param>
    /// <param name="seen">The seen class ids.</param>
    /// <param name="order">Score direction.</param>
    /// <param name="keepSeen">q in (0, 1].</param>
    public static double BySeenFraction(double[,] scores, IReadOnlyList<int> candidates, IReadOnlySet<int> seen, ScoreOrder order, double keepSeen = 0.9)
    {
        if (!(keepSeen > 0 && keepSeen <= 1)) throw new ArgumentOutOfRangeException(nameof(keepSeen), keepSeen, "the fraction of seen samples to keep must be in (0, 1]");
        var d = Gzsl.Margins(scores, candidates, seen, order).Margin;
        if (d.Length == 0) throw new ArgumentException("no validation samples", nameof(scores));
        Array.Sort(d);
        int flip = (int)Math.Floor((1 - keepSeen) * d.Length + 1e-9);
        // Samples with d <= γ go unseen: γ between the flip-th and (flip+1)-th smallest margin.
        return flip == 0 ? Below(d[0]) : 0.5 * (d[flip - 1] + d[Math.Min(flip, d.Length - 1)]);
    }

    /// <summary>
    /// γ maximising the harmonic mean of seen and (pseudo-)unseen accuracy on a validation set whose
    /// labels include both kinds; ties go to the smallest γ.
    /// </summary>
    /// <param name="scores">(N, K) validation scores from a model that did not train on the pseudo-unseen classes.</param>
    /// <param name="labels">(N) class ids.</param>
    /// <param name="candidates">(K) class ids of the columns.</param>
    /// <param name="seen">Classes the validation model trained on; every other candidate is pseudo-unseen.</param>
    /// <param name="order">Score direction.</param>
    public static double ByHarmonicMean(double[,] scores, IReadOnlyList<int> labels, IReadOnlyList<int> candidates, IReadOnlySet<int> seen, ScoreOrder order)
    {
        var (d, bs, bu) = Gzsl.Margins(scores, candidates, seen, order);
        if (labels.Count != d.Length) throw new ArgumentException($"{labels.Count} labels for {d.Length} score rows");
        int n = d.Length, ns = labels.Count(seen.Contains), nu = n - ns;
        if (ns == 0 || nu == 0) throw new ArgumentException($"calibration by harmonic mean needs validation samples of seen and pseudo-unseen classes, got {ns} and {nu}");
        var idx = Enumerable.Range(0, n).OrderBy(i => d[i]).ToArray();
        // Start with γ below every margin (all predicted seen), then flip samples to unseen in margin order.
        int cs = 0, cu = 0;
        for (int i = 0; i < n; i++) if (seen.Contains(labels[i]) && bs[i] == labels[i]) cs++;
        double bestH = Gzsl.HarmonicMean((double)cs / ns, 0), bestGamma = Below(d[idx[0]]);
        for (int r = 0; r < n; r++)
        {
            int i = idx[r];
            bool isSeen = seen.Contains(labels[i]);
            if (isSeen && bs[i] == labels[i]) cs--;
            if (!isSeen && bu[i] == labels[i]) cu++;
            if (r + 1 < n && d[idx[r + 1]] == d[i]) continue; // equal margins flip together
            double h = Gzsl.HarmonicMean((double)cs / ns, (double)cu / nu);
            if (h > bestH) { bestH = h; bestGamma = r + 1 < n ? 0.5 * (d[i] + d[idx[r + 1]]) : d[i] + Math.Max(1e-6, Math.Abs(d[i]) * 1e-6); }
        }
        return bestGamma;
    }

    private static double Below(double x) => x - Math.Max(1e-6, Math.Abs(x) * 1e-6);
}
