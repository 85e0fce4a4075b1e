namespace Tdsm.Evaluation;

/// <summary>
/// Which way a score matrix points. TDSM's zero-shot scores are denoising errors
/// (<see cref="LowerIsBetter"/>, prediction = argmin); the baseline's are cosine similarities
/// (<see cref="HigherIsBetter"/>, prediction = argmax).
/// </summary>
public enum ScoreOrder
{
    /// <summary>Smaller is a better match (TDSM errors).</summary>
    LowerIsBetter,

    /// <summary>Larger is a better match (similarities, logits).</summary>
    HigherIsBetter,
}

/// <summary>
/// Predictions from a score matrix scores (N, K): N samples, K candidate classes whose class ids
/// are <c>candidates</c> (K). Ties go to the lower column index.
/// </summary>
public static class ScoreMatrix
{
    /// <summary>True when score <paramref name="a"/> is strictly better than <paramref name="b"/>.</summary>
    public static bool Better(double a, double b, ScoreOrder order) => order == ScoreOrder.LowerIsBetter ? a < b : a > b;

    /// <summary>The best column of each row, (N).</summary>
    public static int[] ArgBest(double[,] scores, ScoreOrder order)
    {
        int n = scores.GetLength(0), k = scores.GetLength(1);
        if (k == 0) throw new ArgumentException("scores have no candidate columns", nameof(scores));
        var best = new int[n];
        for (int i = 0; i < n; i++)
        {
            int b = 0;
            for (int c = 1; c < k; c++) if (Better(scores[i, c], scores[i, b], order)) b = c;
            best[i] = b;
        }
        return best;
    }

    /// <summary>The predicted class id of each row: <c>candidates[ArgBest]</c>.</summary>
    public static int[] Predict(double[,] scores, IReadOnlyList<int> candidates, ScoreOrder order)
    {
        CheckColumns(scores, candidates);
        return [.. ArgBest(scores, order).Select(c => candidates[c])];
    }

    internal static void CheckColumns(double[,] scores, IReadOnlyList<int> candidates)
    {
        if (scores.GetLength(1) != candidates.Count)
            throw new ArgumentException($"scores have {scores.GetLength(1)} columns but {candidates.Count} candidate classes were given");
        if (candidates.Distinct().Count() != candidates.Count)
            throw new ArgumentException($"candidate class ids repeat: [{string.Join(", ", candidates)}]");
    }
}
