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
}
