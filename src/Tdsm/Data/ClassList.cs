using System.Globalization;

namespace Tdsm.Data;

/// <summary>A class list problem: a file that does not have the expected layout, or lists that disagree.</summary>
public sealed class DataFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The label phrases of a dataset's classes in class-id order (position i = 0-based class id i).
/// Reads <c>idx,label</c> csv files (1-based NTU lists, 0-based PKU-MMD, with or without header,
/// e.g. <c>ntu120_names.csv</c>) and one-line-per-class text files (<c>*_llm.txt</c>).
/// </summary>
public sealed record ClassList(string SourcePath, IReadOnlyList<string> Names, int FirstIndex)
{
    /// <summary>Number of classes.</summary>
    public int Count => Names.Count;

    /// <summary>Reads an <c>idx,label</c> csv. Indices must be consecutive from 0 or 1 (the first row decides);
    /// the label is everything after the first comma, without CSV double quotes around it.</summary>
    /// <exception cref="DataFormatException">Missing file, bad row, gap or repeat in the indices.</exception>
    public static ClassList ReadCsv(string path)
    {
        var lines = ReadAllLines(path);
        var names = new List<string>();
        int first = -1;
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            if (i == 0 && line.StartsWith("idx,", StringComparison.OrdinalIgnoreCase)) continue;
            int comma = line.IndexOf(',', StringComparison.Ordinal);
            if (comma < 0 || !int.TryParse(line.AsSpan(0, comma).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int idx))
                throw new DataFormatException($"{path}:{i + 1}: expected 'idx,label' with an integer idx, got '{ErrorText.Excerpt(line)}'");
            if (first < 0)
            {
                if (idx is not (0 or 1)) throw new DataFormatException($"{path}:{i + 1}: the first class index must be 0 or 1, got {idx}");
                first = idx;
            }
            int expected = first + names.Count;
            if (idx != expected) throw new DataFormatException($"{path}:{i + 1}: expected class index {expected}, got {idx}");
            var label = line[(comma + 1)..].Trim();
            if (label.Length >= 2 && label[0] == '"' && label[^1] == '"') label = label[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal).Trim(); // CSV quoting
            if (label.Length == 0) throw new DataFormatException($"{path}:{i + 1}: class {idx} has an empty label");
            names.Add(label);
        }
        if (names.Count == 0) throw new DataFormatException($"{path}: no classes");
        return new ClassList(path, names, first);
    }

    /// <summary>Reads one description per line (blank lines are an error, a final newline is optional).</summary>
    /// <exception cref="DataFormatException">Missing file or blank line.</exception>
    public static ClassList ReadLines(string path)
    {
        var lines = ReadAllLines(path).Select(l => l.TrimEnd('\r')).ToList();
        while (lines.Count > 0 && lines[^1].Trim().Length == 0) lines.RemoveAt(lines.Count - 1);
        for (int i = 0; i < lines.Count; i++)
            if (lines[i].Trim().Length == 0) throw new DataFormatException($"{path}:{i + 1}: blank line (one description per class expected)");
        if (lines.Count == 0) throw new DataFormatException($"{path}: no classes");
        return new ClassList(path, lines.Select(l => l.Trim()).ToList(), 0);
    }

    /// <summary>Writes an <c>idx,label</c> csv with a header, 1-based (the NTU lists' layout).</summary>
    public static void WriteCsv(string path, IReadOnlyList<string> labels, int firstIndex = 1)
    {
        var text = "idx,label\n" + string.Join("\n", labels.Select((l, i) => $"{(i + firstIndex).ToString(CultureInfo.InvariantCulture)},{Check(l)}")) + "\n";
        Tdsm.Formats.AtomicFile.Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>Writes one line per class.</summary>
    public static void WriteLines(string path, IReadOnlyList<string> lines)
    {
        var text = string.Join("\n", lines.Select(Check)) + "\n";
        Tdsm.Formats.AtomicFile.Write(path, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)));
    }

    private static string Check(string s) => s.Contains('\n', StringComparison.Ordinal) || s.Trim().Length == 0
        ? throw new ArgumentException($"class text '{s}' must be one non-empty line") : s;

    private static string[] ReadAllLines(string path)
    {
        try { return File.ReadAllText(path).Split('\n'); }
        catch (FileNotFoundException e) { throw new DataFormatException($"{path}: file not found", e); }
        catch (UnauthorizedAccessException e) when (Directory.Exists(path)) { throw new DataFormatException($"{path}: is a folder, expected a file", e); }
        catch (DirectoryNotFoundException e) { throw new DataFormatException($"{path}: file not found", e); }
    }
}

/// <summary>Per class its label phrase and its one-sentence description (the two prompts the text encoder sees).</summary>
public sealed record ClassTexts(IReadOnlyList<string> Labels, IReadOnlyList<string> Descriptions)
{
    /// <summary>Number of classes.</summary>
    public int Count => Labels.Count;

    /// <summary>Loads a label csv and its description file and checks they list the same number of classes.</summary>
    /// <exception cref="DataFormatException">Either file is malformed, or their class counts differ.</exception>
    public static ClassTexts Load(string labelCsv, string descriptionsTxt)
    {
        var labels = ClassList.ReadCsv(labelCsv);
        var desc = ClassList.ReadLines(descriptionsTxt);
        if (labels.Count != desc.Count)
            throw new DataFormatException($"{descriptionsTxt}: has {desc.Count} descriptions but {labelCsv} lists {labels.Count} classes");
        return new ClassTexts(labels.Names, desc.Names);
    }
}
