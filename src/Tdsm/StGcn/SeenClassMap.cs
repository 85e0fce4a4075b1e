namespace Tdsm.StGcn;

/// <summary>
/// The seen classes of a zero-shot split and the remapping original id -> training label 0..S-1.
/// The encoder is trained through this map only, so unseen-class samples never reach it:
/// <see cref="SelectSeen"/> drops them and <see cref="ToLocal"/> rejects their ids.
/// </summary>
public sealed class SeenClassMap
{
    private readonly Dictionary<int, int> _toLocal = new();
    private readonly int[] _toOriginal;

    /// <summary>Builds the map from the split's seen class ids (0-based original ids, distinct).</summary>
    public SeenClassMap(IReadOnlyList<int> seenClassIds)
    {
        ArgumentNullException.ThrowIfNull(seenClassIds);
        if (seenClassIds.Count == 0) throw new ArgumentException("the seen-class list is empty", nameof(seenClassIds));
        _toOriginal = seenClassIds.ToArray();
        for (int i = 0; i < _toOriginal.Length; i++)
        {
            int id = _toOriginal[i];
            if (id < 0) throw new ArgumentException($"seen class id {id} at position {i} is negative", nameof(seenClassIds));
            if (!_toLocal.TryAdd(id, i)) throw new ArgumentException($"seen class id {id} appears twice (position {_toLocal[id]} and {i})", nameof(seenClassIds));
        }
    }

    /// <summary>Number of seen classes (the classifier width).</summary>
    public int Count => _toOriginal.Length;

    /// <summary>True when <paramref name="originalId"/> is a seen class.</summary>
    public bool IsSeen(int originalId) => _toLocal.ContainsKey(originalId);

    /// <summary>The training label of a seen class; an unseen id is an error.</summary>
    public int ToLocal(int originalId) => _toLocal.TryGetValue(originalId, out var l) ? l
        : throw new ArgumentException($"class {originalId} is not a seen class of this split; the encoder must never see it");

    /// <summary>The original id of training label <paramref name="local"/>.</summary>
    public int ToOriginal(int local) => _toOriginal[local];

    /// <summary>
    /// Keeps only the seen-class samples of x (N, sampleSize) and their labels (original ids), returning
    /// a new tensor (N_seen, sampleSize) and labels remapped to 0..Count-1, in the original order.
    /// </summary>
    public (float[] X, int[] Labels) SelectSeen(ReadOnlySpan<float> x, ReadOnlySpan<int> labels, int sampleSize)
    {
        if (sampleSize < 1 || x.Length != (long)labels.Length * sampleSize)
            throw new ArgumentException($"x holds {x.Length} values, expected {labels.Length} samples x {sampleSize}");
        var keep = new List<int>();
        for (int i = 0; i < labels.Length; i++) if (IsSeen(labels[i])) keep.Add(i);
        var xs = new float[(long)keep.Count * sampleSize];
        var ys = new int[keep.Count];
        for (int j = 0; j < keep.Count; j++)
        {
            x.Slice(keep[j] * sampleSize, sampleSize).CopyTo(xs.AsSpan(j * sampleSize, sampleSize));
            ys[j] = ToLocal(labels[keep[j]]);
        }
        return (xs, ys);
    }
}
