using System.Numerics;

namespace Tdsm.StGcn.Reference;

// Softmax cross-entropy, mean over the batch. logits (N,K), labels (N) in 0..K-1.
// loss = mean_n (logsumexp(z_n) - z_n[y_n]); dLogits = (softmax(z) - onehot(y)) / N (overwritten).
public static partial class Ref
{
    /// <summary>Returns the loss and writes its gradient.</summary>
    public static double CrossEntropy<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> labels, Span<T> dLogits, int n, int k) where T : IFloatingPointIeee754<T>
    {
        Need<T>(logits, (long)n * k, "logits"); Need<T>(dLogits, (long)n * k, "dLogits");
        if (labels.Length < n) throw new ArgumentException($"labels hold {labels.Length} entries, expected {n}");
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            int y = labels[i];
            if (y < 0 || y >= k) throw new ArgumentOutOfRangeException(nameof(labels), $"label {y} of sample {i} is outside 0..{k - 1}");
            double max = double.NegativeInfinity;
            for (int j = 0; j < k; j++) max = Math.Max(max, D(logits[i * k + j]));
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(D(logits[i * k + j]) - max);
            double lse = max + Math.Log(sum);
            loss += lse - D(logits[i * k + y]);
            for (int j = 0; j < k; j++)
                dLogits[i * k + j] = F<T>((Math.Exp(D(logits[i * k + j]) - lse) - (j == y ? 1.0 : 0.0)) / n);
        }
        return loss / n;
    }
}
