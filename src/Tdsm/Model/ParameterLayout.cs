namespace Tdsm.Model;

/// <summary>One named parameter: its place in the flat buffer, its shape, and whether the loss reaches it.</summary>
public sealed record ParameterEntry(string Name, int Offset, int[] Shape, bool ReceivesGradient)
{
    /// <summary>Number of elements.</summary>
    public int Length => Shape.Aggregate(1, (a, b) => a * b);
}

/// <summary>
/// Every parameter of a model in one contiguous buffer, with the official PyTorch names, in
/// registration order. Gradients and optimiser moments use the same layout, so AdamW is one loop
/// and a checkpoint is one write.
/// </summary>
public sealed class ParameterLayout
{
    private readonly List<ParameterEntry> _entries = [];
    private readonly Dictionary<string, ParameterEntry> _byName = new(StringComparer.Ordinal);

    /// <summary>Total number of floats.</summary>
    public int Count { get; private set; }

    /// <summary>Entries in registration order.</summary>
    public IReadOnlyList<ParameterEntry> Entries => _entries;

    /// <summary>Adds a parameter at the end of the buffer and returns its entry.</summary>
    public ParameterEntry Add(string name, int[] shape, bool receivesGradient = true)
    {
        var e = new ParameterEntry(name, Count, shape, receivesGradient);
        if (!_byName.TryAdd(name, e)) throw new ArgumentException($"duplicate parameter name '{name}'");
        _entries.Add(e);
        Count = checked(Count + e.Length);
        return e;
    }

    /// <summary>The entry called <paramref name="name"/>.</summary>
    public ParameterEntry this[string name] => _byName.TryGetValue(name, out var e) ? e
        : throw new KeyNotFoundException($"no parameter named '{name}'");

    /// <summary>"name[index]" of the flat buffer's element <paramref name="flatIndex"/> (for messages).</summary>
    public string NameAt(int flatIndex)
    {
        foreach (var e in _entries)
            if (flatIndex >= e.Offset && flatIndex < e.Offset + e.Length) return $"{e.Name}[{flatIndex - e.Offset}]";
        throw new ArgumentOutOfRangeException(nameof(flatIndex), $"element {flatIndex} is outside the {Count} parameters");
    }

    /// <summary>True when the layout has <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);
}
