using System.Runtime.InteropServices;
using Tdsm.Formats;

namespace Tdsm.Data;

/// <summary>Settings of a raw NTU folder conversion.</summary>
/// <param name="Benchmark">Which protocol splits train from val.</param>
/// <param name="Ntu120">Use the NTU-120 cross-subject training list.</param>
/// <param name="Frames">T of the output (300 in the published arrays).</param>
/// <param name="ChunkSize">Samples per resumable chunk.</param>
/// <param name="MissingLists">Official missing-skeleton lists; listed samples are skipped.</param>
public sealed record NtuConvertOptions(NtuBenchmark Benchmark, bool Ntu120, int Frames = SkeletonPreprocessing.DefaultFrames,
    int ChunkSize = 500, IReadOnlyList<string>? MissingLists = null);

/// <summary>What a conversion produced: sample counts per part and how many were skipped as missing.</summary>
public sealed record NtuConvertResult(int Train, int Val, int SkippedMissing, int ChunksReused);

/// <summary>
/// A folder of raw <c>.skeleton</c> files -> <c>{train,val}_data.npy</c> (N, 3, T, 25, 2) float32,
/// <c>{train,val}_label.npy</c> (N) int64 (0-based action ids) and <c>{train,val}_names.txt</c>.
/// Work is done in chunks written atomically under <c>.parts/</c>; a rerun after a crash reuses every
/// finished chunk (a chunk counts as finished when its names file, written last, lists exactly its samples).
/// </summary>
public static class NtuFolderConverter
{
    /// <summary>Converts <paramref name="rawDir"/> into <paramref name="outDir"/>; <paramref name="progress"/> gets (files done, total).</summary>
    /// <exception cref="SkeletonFormatException">A raw file is malformed (finished chunks are kept).</exception>
    public static NtuConvertResult Convert(string rawDir, string outDir, NtuConvertOptions o, Action<int, int>? progress = null)
    {
        if (!Directory.Exists(rawDir)) throw new DirectoryNotFoundException($"{rawDir}: raw skeleton folder not found");
        var missing = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in o.MissingLists ?? []) missing.UnionWith(NtuProtocols.ReadMissingList(m));
        var files = Directory.GetFiles(rawDir, "*.skeleton").OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToList();
        if (files.Count == 0)
            throw new DirectoryNotFoundException($"{rawDir}: no .skeleton files in this folder (expected the raw NTU RGB+D files, e.g. S001C001P001R001A001.skeleton)");
        var train = new List<(string File, NtuSampleName Name)>();
        var val = new List<(string File, NtuSampleName Name)>();
        int skipped = 0;
        foreach (var f in files)
        {
            NtuSampleName name;
            try { name = NtuSampleName.Parse(f); }
            catch (FormatException e) { throw new SkeletonFormatException(f, 0, e.Message, e); }
            if (missing.Contains(name.Name)) { skipped++; continue; }
            (NtuProtocols.IsTraining(name, o.Benchmark, o.Ntu120) ? train : val).Add((f, name));
        }
        int total = train.Count + val.Count, done = 0, reused = 0;
        string parts = Path.Combine(outDir, ".parts");
        Directory.CreateDirectory(parts);
        foreach (var (part, list) in new[] { ("train", train), ("val", val) })
        {
            var chunkFiles = new List<string>();
            for (int c = 0; c * o.ChunkSize < list.Count; c++)
            {
                var chunk = list.Skip(c * o.ChunkSize).Take(o.ChunkSize).ToList();
                string data = Path.Combine(parts, $"{part}_{c:D5}.npy"), names = Path.Combine(parts, $"{part}_{c:D5}.names.txt");
                string expected = string.Join("\n", chunk.Select(s => s.Name.Name)) + "\n";
                chunkFiles.Add(data);
                if (File.Exists(names) && File.Exists(data) && File.ReadAllText(names) == expected)
                {
                    reused++;
                    done += chunk.Count;
                    progress?.Invoke(done, total);
                    continue;
                }
                int size = 3 * o.Frames * NtuJoints.Count * SkeletonPreprocessing.Persons;
                var x = new float[chunk.Count * size];
                int finished = 0;
                try
                {
                    Parallel.For(0, chunk.Count, i =>
                    {
                        var sample = SkeletonPreprocessing.Process(NtuSkeletonFile.Read(chunk[i].File), o.Frames);
                        sample.CopyTo(x, i * size);
                        int d = Interlocked.Increment(ref finished);
                        if (progress is not null && d % 16 == 0) lock (x) progress(done + d, total);
                    });
                }
                catch (AggregateException e) when (e.InnerExceptions.OfType<SkeletonFormatException>().FirstOrDefault() is { } first)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
                }
                Npy.Write(data, [chunk.Count, 3, o.Frames, NtuJoints.Count, SkeletonPreprocessing.Persons], x);
                AtomicFile.Write(names, s => s.Write(System.Text.Encoding.ASCII.GetBytes(expected)));
                done += chunk.Count;
                progress?.Invoke(done, total);
            }
            Concatenate(Path.Combine(outDir, $"{part}_data.npy"), chunkFiles, list.Count, o.Frames);
            Npy.Write(Path.Combine(outDir, $"{part}_label.npy"), [list.Count], list.Select(s => (long)s.Name.Label).ToArray());
            var namesText = string.Concat(list.Select(s => s.Name.Name + "\n"));
            AtomicFile.Write(Path.Combine(outDir, $"{part}_names.txt"), s => s.Write(System.Text.Encoding.ASCII.GetBytes(namesText)));
        }
        Directory.Delete(parts, recursive: true);
        return new NtuConvertResult(train.Count, val.Count, skipped, reused);
    }

    private static void Concatenate(string path, List<string> chunks, int n, int frames)
    {
        var shape = new[] { n, 3, frames, NtuJoints.Count, SkeletonPreprocessing.Persons };
        AtomicFile.Write(path, s =>
        {
            s.Write(Npy.Encode("<f4", shape, ReadOnlySpan<byte>.Empty));
            foreach (var c in chunks)
            {
                var a = Npy.Read(c);
                if (a.DType != DType.F32 || a.Shape.Length != 5 || a.Shape[2] != frames)
                    throw new TensorFormatException(c, $"chunk has dtype {a.DType} shape ({string.Join(", ", a.Shape)}), expected float32 (n, 3, {frames}, 25, 2)");
                s.Write(MemoryMarshal.AsBytes(a.Bytes.AsSpan()));
            }
        });
    }
}
