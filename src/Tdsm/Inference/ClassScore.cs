namespace Tdsm.Inference;

/// <summary>
/// One candidate's result: its label, its index in the candidate set, and its denoising error
/// (Σ over the fixed test noises of the mean squared error of the DiT's noise prediction). Lower
/// error = better match; the prediction is the candidate with the lowest error.
/// </summary>
/// <param name="Label">The candidate's label.</param>
/// <param name="Index">The candidate's position in its <see cref="CandidateSet"/>.</param>
/// <param name="Error">The denoising error (lower is better).</param>
public readonly record struct ClassScore(string Label, int Index, double Error);

/// <summary>The ranked result of classifying one sequence: best (lowest error) first.</summary>
public sealed class Prediction
{
    /// <summary>Every candidate, best first (ties keep the candidate order).</summary>
    public IReadOnlyList<ClassScore> Ranked { get; }

    /// <summary>The best candidate.</summary>
    public ClassScore Best => Ranked[0];

    /// <summary>The best candidate's label.</summary>
    public string Label => Ranked[0].Label;

    internal Prediction(ClassScore[] ranked) => Ranked = ranked;

    /// <inheritdoc/>
    public override string ToString() => $"{Label} (error {Best.Error:0.0000})";
}

/// <summary>One action class to recognise, described in words.</summary>
/// <param name="Label">The label phrase, e.g. "drink water".</param>
/// <param name="Description">A sentence describing the motion, e.g. "a person lifts a cup to the mouth and drinks".</param>
public sealed record ActionClass(string Label, string Description);

/// <summary>Progress of a batch: <paramref name="Done"/> of <paramref name="Total"/> sequences classified.</summary>
/// <param name="Done">Sequences finished.</param>
/// <param name="Total">Sequences in the batch.</param>
public readonly record struct BatchProgress(int Done, int Total);
