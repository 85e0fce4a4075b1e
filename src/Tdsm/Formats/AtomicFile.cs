namespace Tdsm.Formats;

/// <summary>Writes a file through a temporary sibling and a rename, so readers see either the
/// old complete file or the new complete file, never a partial one.</summary>
public static class AtomicFile
{
    /// <summary>Runs <paramref name="write"/> on a temporary file, flushes it to disk, then
    /// renames it over <paramref name="path"/>. On failure the temporary file is removed.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        string tmp = full + $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
