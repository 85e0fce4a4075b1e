namespace Tdsm.Inference;

/// <summary>
/// A set of candidate classes prepared for one <see cref="ActionRecognizer"/>: their labels, their
/// text features and every per-class constant of the DiT, computed once when the set is created.
/// Immutable and thread-safe; keep it and reuse it for every sequence.
/// </summary>
public sealed class CandidateSet
{
    private readonly Stack<InferenceWorkspace> _free = new();

    /// <summary>The candidate labels, in order.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>Number of candidates.</summary>
    public int Count => Labels.Count;

    internal ActionRecognizer Owner { get; }
    internal ClassConstants Constants { get; }

    internal CandidateSet(ActionRecognizer owner, IReadOnlyList<string> labels, ClassConstants constants)
    {
        Owner = owner;
        Labels = [.. labels];
        Constants = constants;
    }

    // One workspace per concurrent caller; returned ones are reused, so steady state allocates nothing.
    internal InferenceWorkspace Rent()
    {
        lock (_free) if (_free.Count > 0) return _free.Pop();
        return new InferenceWorkspace(Owner.Config, Count, Owner.NoiseCount);
    }

    internal void Return(InferenceWorkspace w)
    {
        lock (_free) _free.Push(w);
    }
}
