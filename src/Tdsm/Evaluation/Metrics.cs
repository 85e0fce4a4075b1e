namespace Tdsm.Evaluation;

/// <summary>
/// A confusion matrix over a fixed class list: <see cref="Counts"/>[t, p] = samples of true class
/// <c>Classes[t]</c> predicted as <c>Classes[p]</c>. Built by <see cref="Metrics.Confusion"/>.
/// </summary>
public sealed class ConfusionMatrix
{
    /// <summary>The class ids of the rows and columns, in order.</summary>
    public IReadOnlyList<int> Classes { get; }

    /// <summary>(K, K) counts, row = true class, column = predicted class.</summary>
    public int[,] Counts { get; }

    internal ConfusionMatrix(IReadOnlyList<int> classes, int[,] counts) { Classes = classes; Counts = counts; }

    /// <summary>Samples counted.</summary>
    public int Total { get { int s = 0; foreach (int c in Counts) s += c; return s; } }

    /// <summary>Samples on the diagonal.</summary>
    public int Correct { get { int s = 0; for (int i = 0; i < Classes.Count; i++) s += Counts[i, i]; return s; } }

    /// <summary>Samples of each true class (row sums).</summary>
    public int[] Support => [.. Enumerable.Range(0, Classes.Count).Select(t => Enumerable.Range(0, Classes.Count).Sum(p => Counts[t, p]))];

    /// <summary>Accuracy of each class (diagonal / row sum); NaN for a class with no samples.</summary>
    public double[] PerClassAccuracy()
    {
        var support = Support;
        return [.. Enumerable.Range(0, Classes.Count).Select(t => support[t] == 0 ? double.NaN : (double)Counts[t, t] / support[t])];
    }

    /// <summary>Mean of the per-class accuracies over classes that have samples.</summary>
    public double MeanPerClassAccuracy()
    {
        var acc = PerClassAccuracy().Where(a => !double.IsNaN(a)).ToArray();
        return acc.Length == 0 ? double.NaN : acc.Average();
    }
}

/// <summary>Classification metrics over predicted and true class ids.</summary>
public static class Metrics
{
    /// <summary>Top-1 accuracy in [0, 1]: the fraction of samples whose prediction equals the label.</summary>
    /// <exception cref="ArgumentException">Lengths differ or there are no samples.</exception>
    public static double Top1(IReadOnlyList<int> predicted, IReadOnlyList<int> labels)
    {
        CheckLengths(predicted, labels);
        int correct = 0;
        for (int i = 0; i < labels.Count; i++) if (predicted[i] == labels[i]) correct++;
        return (double)correct / labels.Count;
    }

    /// <summary>The confusion matrix over <paramref name="classes"/> (K class ids, the order of rows and columns).</summary>
    /// <exception cref="ArgumentException">A label or prediction is not one of <paramref name="classes"/>.</exception>
    public static ConfusionMatrix Confusion(IReadOnlyList<int> predicted, IReadOnlyList<int> labels, IReadOnlyList<int> classes)
    {
        CheckLengths(predicted, labels);
        var index = new Dictionary<int, int>();
        for (int i = 0; i < classes.Count; i++)
            if (!index.TryAdd(classes[i], i)) throw new ArgumentException($"class id {classes[i]} appears twice in the class list", nameof(classes));
        var counts = new int[classes.Count, classes.Count];
        for (int i = 0; i < labels.Count; i++)
        {
            if (!index.TryGetValue(labels[i], out int t)) throw new ArgumentException($"sample {i}: label {labels[i]} is not one of the {classes.Count} classes", nameof(labels));
            if (!index.TryGetValue(predicted[i], out int p)) throw new ArgumentException($"sample {i}: prediction {predicted[i]} is not one of the {classes.Count} classes", nameof(predicted));
            counts[t, p]++;
        }
        return new ConfusionMatrix([.. classes], counts);
    }

    private static void CheckLengths(IReadOnlyList<int> predicted, IReadOnlyList<int> labels)
    {
        if (predicted.Count != labels.Count) throw new ArgumentException($"{predicted.Count} predictions for {labels.Count} labels");
        if (labels.Count == 0) throw new ArgumentException("no samples to evaluate");
    }
}

/// <summary>Mean ± standard deviation of a metric over runs (seeds). Std is the sample std (n−1), 0 for one run.</summary>
public readonly record struct MeanStd(double Mean, double Std, int Count)
{
    /// <summary>Summarises <paramref name="values"/>.</summary>
    /// <exception cref="ArgumentException">No values.</exception>
    public static MeanStd Of(IEnumerable<double> values)
    {
        var v = values.ToArray();
        if (v.Length == 0) throw new ArgumentException("mean ± std of no values", nameof(values));
        double mean = v.Average();
        double std = v.Length < 2 ? 0 : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
        return new MeanStd(mean, std, v.Length);
    }

    /// <summary>"mean ± std" with the given format (e.g. percentages: Of(...).Scale(100).ToString("F2")).</summary>
    public string ToString(string format) => $"{Mean.ToString(format, System.Globalization.CultureInfo.InvariantCulture)} ± {Std.ToString(format, System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Both numbers times <paramref name="factor"/>.</summary>
    public MeanStd Scale(double factor) => new(Mean * factor, Std * factor, Count);
}
