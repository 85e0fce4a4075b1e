using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Tdsm.Text;

/// <summary>
/// Reads the embedded (manifest) resources of a .NET assembly file without loading it: the
/// assembly is only parsed as a PE/metadata file (System.Reflection.Metadata, part of the BCL),
/// so none of its code or dependencies is touched.
/// </summary>
public static class ManifestResources
{
    /// <summary>The names of the resources embedded in the assembly at <paramref name="assemblyPath"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a readable .NET assembly.</exception>
    public static IReadOnlyList<string> List(string assemblyPath) =>
        Use(assemblyPath, (pe, md) => md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name)).ToList());

    /// <summary>The bytes of the embedded resource whose name ends with <paramref name="nameSuffix"/>
    /// (resource names carry the assembly's namespace as a prefix).</summary>
    /// <exception cref="InvalidDataException">The file is not a readable .NET assembly, no resource or
    /// more than one matches, or the resource's length runs past the resource section.</exception>
    public static byte[] Read(string assemblyPath, string nameSuffix) => Use(assemblyPath, (pe, md) =>
    {
        var matches = md.ManifestResources
            .Select(h => md.GetManifestResource(h))
            .Where(r => r.Implementation.IsNil && md.GetString(r.Name).EndsWith(nameSuffix, StringComparison.Ordinal))
            .ToList();
        if (matches.Count != 1)
        {
            var all = string.Join(", ", md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name)));
            throw new InvalidDataException($"{assemblyPath}: expected exactly one embedded resource ending in '{nameSuffix}', found {matches.Count} (resources: {all})");
        }
        var dir = pe.PEHeaders.CorHeader!.ResourcesDirectory;
        var section = pe.GetSectionData(dir.RelativeVirtualAddress);
        long offset = matches[0].Offset;
        // Each resource is a 4-byte little-endian length followed by the bytes.
        if (section.Length < dir.Size || offset + 4 > dir.Size)
            throw new InvalidDataException($"{assemblyPath}: resource '{nameSuffix}' lies outside the resource section (file truncated?)");
        var reader = section.GetReader((int)offset, dir.Size - (int)offset);
        int len = reader.ReadInt32();
        if (len < 0 || offset + 4 + len > dir.Size)
            throw new InvalidDataException($"{assemblyPath}: resource '{nameSuffix}' claims {len} bytes, more than the resource section holds (file truncated?)");
        return reader.ReadBytes(len);
    });

    private static T Use<T>(string assemblyPath, Func<PEReader, MetadataReader, T> body)
    {
        if (!File.Exists(assemblyPath)) throw new FileNotFoundException($"{assemblyPath}: file not found", assemblyPath);
        using var stream = File.OpenRead(assemblyPath);
        try
        {
            using var pe = new PEReader(stream, PEStreamOptions.PrefetchEntireImage);
            if (!pe.HasMetadata || pe.PEHeaders.CorHeader is null) throw new InvalidDataException($"{assemblyPath}: not a .NET assembly (no CLI header)");
            return body(pe, pe.GetMetadataReader());
        }
        catch (BadImageFormatException e) { throw new InvalidDataException($"{assemblyPath}: not a readable .NET assembly ({e.Message})", e); }
    }
}
