namespace Tdsm.Training;

/// <summary>
/// The training loss stopped being a finite number (NaN or ±∞): training stops at that read-back,
/// so no later checkpoint replaces the ones on disk. Carries the loss curve up to and including the
/// first bad step so that the caller can still write it.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>The first step whose loss is not finite.</summary>
    public LossPoint At { get; }

    /// <summary>The logged loss points, the bad one last.</summary>
    public IReadOnlyList<LossPoint> Curve { get; }

    /// <summary>Seconds since training started for each <see cref="Curve"/> point.</summary>
    public IReadOnlyList<double> CurveSeconds { get; }

    /// <summary>The step of the newest checkpoint on disk (written before the bad step); null when none was written.</summary>
    public int? LastCheckpointStep { get; }

    public TrainingDivergedException(LossPoint at, IReadOnlyList<LossPoint> curve, IReadOnlyList<double> curveSeconds, int? lastCheckpointStep, string? checkpointDir)
        : base(Describe(at, lastCheckpointStep, checkpointDir))
    {
        At = at;
        Curve = curve;
        CurveSeconds = curveSeconds;
        LastCheckpointStep = lastCheckpointStep;
    }

    private static string Describe(LossPoint at, int? lastCheckpointStep, string? dir) =>
        System.FormattableString.Invariant(
            $"training diverged: the loss is {at.Loss} at step {at.Step} (diffusion {at.Diffusion}, triplet {at.Triplet}, lr {at.LearningRate:0.0##e+0}); stopped. ") +
        (dir is null ? "This run writes no checkpoints. "
            : lastCheckpointStep is not { } s ? $"No checkpoint had been written to {dir} yet. "
            : s == at.Step - 1 ? $"The newest checkpoint in {dir} (step {s}) holds the parameters that gave this loss. "
            : $"The newest checkpoint in {dir} is of step {s}. ") +
        "Try a lower learning rate or more warm-up steps, or fp32 GEMMs if a tensor-core backend was used.";
}
