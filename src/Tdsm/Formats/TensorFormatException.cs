namespace Tdsm.Formats;

/// <summary>A tensor file (safetensors, .npy) is malformed or holds something we cannot read.
/// The message names the file and the problem.</summary>
public sealed class TensorFormatException : Exception
{
    /// <summary>The file that failed to parse.</summary>
    public string FilePath { get; }

    /// <summary>Creates the exception for <paramref name="filePath"/>.</summary>
    public TensorFormatException(string filePath, string problem, Exception? inner = null)
        : base($"{filePath}: {problem}", inner) => FilePath = filePath;

    /// <summary>The file's bytes; a missing file or folder becomes a <see cref="TensorFormatException"/> naming it.</summary>
    internal static byte[] ReadAllBytes(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw new TensorFormatException(path, "file not found", e); }
        catch (UnauthorizedAccessException e) when (Directory.Exists(path)) { throw new TensorFormatException(path, "is a folder, expected a file", e); }
    }

    /// <summary>Refuses a tensor read from <paramref name="path"/> that holds a NaN or an infinity (a non-finite weight
    /// would only show later, as NaN scores or features), naming the tensor and the element.</summary>
    internal static void RequireFinite(string path, string name, ReadOnlySpan<float> values)
    {
        int i = Tdsm.Tensors.Finite.IndexOfNonFinite(values);
        if (i >= 0) throw new TensorFormatException(path, $"tensor '{name}' holds {values[i]} at element {i}");
    }
}
