namespace Tdsm.Evaluation;

/// <summary>
/// Compares two zero-shot score matrices (N, K) of the same samples and candidates, e.g. the fp32
/// path against a reduced-precision one: which samples change their argmin, and by how much each
/// path separated the two classes involved (a small margin means a near tie, where rounding may
/// legitimately flip the choice).
/// </summary>
public static class PredictionAgreement
{
    /// <summary>One sample whose argmin differs: the two choices and each path's score gap between them.</summary>
    /// <param name="Sample">Row index.</param>
    /// <param name="ReferenceChoice">argmin of the reference scores.</param>
    /// <param name="OtherChoice">argmin of the other scores.</param>
    /// <param name="ReferenceMargin">reference[OtherChoice] − reference[ReferenceChoice] (≥ 0).</param>
    /// <param name="OtherMargin">other[ReferenceChoice] − other[OtherChoice] (≥ 0).</param>
    /// <param name="RelativeMargin">ReferenceMargin / |reference[ReferenceChoice]|.</param>
    /// <param name="OtherRelativeMargin">OtherMargin / |other[OtherChoice]|.</param>
    public readonly record struct Difference(int Sample, int ReferenceChoice, int OtherChoice, double ReferenceMargin, double OtherMargin,
        double RelativeMargin, double OtherRelativeMargin)
    {
        /// <summary>A tie: the two classes score within <paramref name="relativeTolerance"/> of each other under either scoring.</summary>
        public bool IsTie(double relativeTolerance) => RelativeMargin <= relativeTolerance || OtherRelativeMargin <= relativeTolerance;
    }

    /// <summary>The comparison of two score matrices.</summary>
    /// <param name="Samples">N.</param>
    /// <param name="Differences">Samples whose argmin differs, in sample order.</param>
    /// <param name="MaxRelativeScoreError">max over entries of |other − reference| / |reference|.</param>
    public sealed record Report(int Samples, IReadOnlyList<Difference> Differences, double MaxRelativeScoreError)
    {
        /// <summary>Fraction of samples with the same prediction.</summary>
        public double Agreement => Samples == 0 ? 1 : 1 - (double)Differences.Count / Samples;

        /// <summary>A short printable summary, one line per differing sample (at most <paramref name="maxLines"/>).</summary>
        public IEnumerable<string> Lines(int maxLines = 20)
        {
            yield return $"predictions: {Samples - Differences.Count}/{Samples} identical ({Agreement:P2}), max relative score error {MaxRelativeScoreError:e3}";
            foreach (var d in Differences.Take(maxLines))
                yield return $"  sample {d.Sample}: reference picks {d.ReferenceChoice}, other picks {d.OtherChoice}; reference margin {d.ReferenceMargin:e3} ({d.RelativeMargin:e2} relative), other margin {d.OtherMargin:e3}";
            if (Differences.Count > maxLines) yield return $"  ... {Differences.Count - maxLines} more";
        }
    }

    /// <summary>Compares <paramref name="other"/> against <paramref name="reference"/>; both (N, K), lower is better.</summary>
    public static Report Compare(double[,] reference, double[,] other)
    {
        int n = reference.GetLength(0), k = reference.GetLength(1);
        if (other.GetLength(0) != n || other.GetLength(1) != k)
            throw new ArgumentException($"score matrices differ in shape: reference {n}x{k}, other {other.GetLength(0)}x{other.GetLength(1)}");
        var diffs = new List<Difference>();
        double maxRel = 0;
        for (int i = 0; i < n; i++)
        {
            int a = 0, b = 0;
            for (int c = 0; c < k; c++)
            {
                if (reference[i, c] < reference[i, a]) a = c;
                if (other[i, c] < other[i, b]) b = c;
                double r = reference[i, c];
                double rel = Math.Abs(other[i, c] - r) / Math.Max(Math.Abs(r), double.Epsilon);
                if (rel > maxRel || double.IsNaN(rel)) maxRel = double.IsNaN(rel) ? double.NaN : rel;
            }
            if (a == b) continue;
            double refMargin = reference[i, b] - reference[i, a], otherMargin = other[i, a] - other[i, b];
            diffs.Add(new Difference(i, a, b, refMargin, otherMargin, refMargin / Math.Max(Math.Abs(reference[i, a]), double.Epsilon),
                otherMargin / Math.Max(Math.Abs(other[i, b]), double.Epsilon)));
        }
        return new Report(n, diffs, maxRel);
    }
}
