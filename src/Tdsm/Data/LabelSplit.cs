using System.Text.Json;
using Tdsm.Formats;

namespace Tdsm.Data;

/// <summary>A zero-shot class split: 0-based seen and unseen class ids (disjoint).</summary>
public sealed record LabelSplit(int[] Seen, int[] Unseen)
{
    /// <summary>Reads a split file (<c>ru5.npy</c>, <c>rs55.npy</c>: 1-D integer class ids, 0-based).</summary>
    /// <exception cref="TensorFormatException">The file is not a 1-D integer .npy.</exception>
    public static int[] ReadIds(string path, string what = "a split")
    {
        var a = Npy.Read(path);
        if (a.Shape.Length != 1 && !(a.Shape.Length == 2 && a.Shape[1] == 1))
            throw new TensorFormatException(path, $"{what} is a 1-D array of class ids, got shape ({string.Join(", ", a.Shape)})");
        if (a.DType is not (DType.I32 or DType.I64)) throw new TensorFormatException(path, $"{what} holds integer class ids, got dtype {a.DType}");
        var wide = a.ToInt64();
        for (int i = 0; i < wide.Length; i++)
            if (wide[i] is < 0 or > int.MaxValue) throw new TensorFormatException(path, $"entry {i} is {wide[i]}, not a class id (0 to {int.MaxValue})");
        return wide.Select(v => (int)v).ToArray();
    }

    /// <summary>Loads <c>ru{unseen}.npy</c> and the matching <c>rs{classCount-unseen}.npy</c> from a folder
    /// (e.g. <c>label_splits/ntu60</c>, unseen 5 -> ru5 + rs55) and validates them against the class count.</summary>
    /// <exception cref="DataFormatException">Ids out of range, overlapping or not covering every class.</exception>
    public static LabelSplit Load(string folder, int unseenCount, int classCount)
    {
        var unseen = ReadIds(Path.Combine(folder, $"ru{unseenCount}.npy"));
        var seen = ReadIds(Path.Combine(folder, $"rs{classCount - unseenCount}.npy"));
        var split = new LabelSplit(seen, unseen);
        split.Validate(classCount, $"{folder} (ru{unseenCount}/rs{classCount - unseenCount})");
        return split;
    }

    /// <summary>A split from an unseen list alone: every other class of <paramref name="classCount"/> is seen.</summary>
    public static LabelSplit FromUnseen(IEnumerable<int> unseen, int classCount, string source)
    {
        var u = unseen.ToArray();
        var set = new HashSet<int>(u);
        var split = new LabelSplit(Enumerable.Range(0, classCount).Where(c => !set.Contains(c)).ToArray(), u);
        split.Validate(classCount, source);
        return split;
    }

    /// <summary>Checks ids are in [0, classCount), have no repeats, seen and unseen are disjoint and
    /// together cover every class.</summary>
    /// <exception cref="DataFormatException">Names <paramref name="source"/> and the offending id.</exception>
    public void Validate(int classCount, string source)
    {
        var all = new HashSet<int>();
        foreach (var (ids, kind) in new[] { (Seen, "seen"), (Unseen, "unseen") })
            foreach (int c in ids)
            {
                if (c < 0 || c >= classCount)
                    throw new DataFormatException($"{source}: {kind} class id {c} is outside the class list's 0..{classCount - 1} ({classCount} classes)");
                if (!all.Add(c)) throw new DataFormatException($"{source}: class id {c} appears twice (in {kind}, or in both seen and unseen)");
            }
        if (all.Count != classCount)
            throw new DataFormatException($"{source}: seen ({Seen.Length}) + unseen ({Unseen.Length}) cover {all.Count} classes but the class list has {classCount}");
    }

    /// <summary>Writes <c>ru{U}.npy</c> and <c>rs{S}.npy</c> (int64) into <paramref name="folder"/>.</summary>
    public void Write(string folder)
    {
        Npy.Write(Path.Combine(folder, $"ru{Unseen.Length}.npy"), [Unseen.Length], Unseen.Select(i => (long)i).ToArray());
        Npy.Write(Path.Combine(folder, $"rs{Seen.Length}.npy"), [Seen.Length], Seen.Select(i => (long)i).ToArray());
    }

    /// <summary>Reads SMIE's random splits json: name -> unseen class ids (0-based); keys starting with '_' are comments.</summary>
    /// <exception cref="DataFormatException">Not a json object of integer arrays.</exception>
    public static Dictionary<string, int[]> ReadSmieSplits(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (FileNotFoundException e) { throw new DataFormatException($"{path}: file not found", e); }
        var result = new Dictionary<string, int[]>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{path}: expected a json object of name -> class id list");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name.StartsWith('_')) continue;
                if (p.Value.ValueKind != JsonValueKind.Array) throw new DataFormatException($"{path}: '{p.Name}' should be an array of class ids, got {p.Value.ValueKind}");
                result[p.Name] = p.Value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v)
                    ? v : throw new DataFormatException($"{path}: '{p.Name}' holds '{e}', expected integer class ids")).ToArray();
            }
        }
        catch (JsonException e) { throw new DataFormatException($"{path}: not valid json: {e.Message}", e); }
        return result;
    }
}
