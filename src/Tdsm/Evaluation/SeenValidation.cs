using Tdsm.Data;
using Tdsm.Tensors;

namespace Tdsm.Evaluation;

/// <summary>
/// Seen-class validation data for choosing the GZSL factor γ without touching the test set:
/// a stratified hold-out of the seen training features, and a seeded choice of pseudo-unseen classes.
/// </summary>
public static class SeenValidation
{
    /// <summary>
    /// Splits <paramref name="data"/> per class: ⌊fraction·n_c⌋ samples of each class (at least one
    /// when the class has two or more) go to validation, the rest stay for training. Seeded; row order
    /// inside each part follows the original order.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">fraction outside (0, 1).</exception>
    public static (LabeledFeatures Train, LabeledFeatures Validation) HoldOut(LabeledFeatures data, double fraction, ulong seed)
    {
        if (!(fraction > 0 && fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the validation fraction must be in (0, 1)");
        var rng = new Rng(seed);
        var toVal = new bool[data.Count];
        foreach (var group in Enumerable.Range(0, data.Count).GroupBy(i => data.Labels[i]).OrderBy(g => g.Key))
        {
            var rows = group.ToArray();
            int take = rows.Length < 2 ? 0 : Math.Max(1, (int)Math.Floor(fraction * rows.Length));
            for (int i = rows.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (rows[i], rows[j]) = (rows[j], rows[i]); }
            for (int i = 0; i < take; i++) toVal[rows[i]] = true;
        }
        var all = Enumerable.Range(0, data.Count);
        return (data.Rows([.. all.Where(i => !toVal[i])]), data.Rows([.. all.Where(i => toVal[i])]));
    }

    /// <summary>A seeded choice of <paramref name="count"/> of the seen classes to treat as unseen (sorted).</summary>
    public static int[] PseudoUnseenClasses(IReadOnlyList<int> seen, int count, ulong seed)
    {
        if (count <= 0 || count >= seen.Count) throw new ArgumentOutOfRangeException(nameof(count), count, $"pick between 1 and {seen.Count - 1} of the {seen.Count} seen classes");
        var pool = seen.ToArray();
        var rng = new Rng(seed);
        for (int i = pool.Length - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (pool[i], pool[j]) = (pool[j], pool[i]); }
        return [.. pool.Take(count).Order()];
    }
}
