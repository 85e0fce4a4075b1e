namespace Tdsm.Data;

/// <summary>A raw skeleton file (NTU .skeleton text) is truncated or malformed. The message names
/// the file, the 1-based line and what was expected there.</summary>
public sealed class SkeletonFormatException : Exception
{
    /// <summary>The file that failed to parse.</summary>
    public string FilePath { get; }

    /// <summary>1-based line number of the problem (0 when it concerns the whole file).</summary>
    public int Line { get; }

    /// <summary>Creates the exception.</summary>
    public SkeletonFormatException(string filePath, int line, string problem, Exception? inner = null)
        : base(line > 0 ? $"{filePath}:{line}: {problem}" : $"{filePath}: {problem}", inner)
    {
        FilePath = filePath;
        Line = line;
    }
}
