using Tdsm.Formats;

namespace Tdsm.Data;

/// <summary>
/// A skeleton dataset folder as <see cref="SyntheticDataset.Write"/> writes it: x (N, 3, T, 25, 2)
/// float32, 0-based labels, class texts and the zero-shot splits found under <c>label_splits/</c>.
/// </summary>
public sealed record SkeletonDataset(float[] X, int Count, int Frames, int[] Labels, ClassTexts Texts, IReadOnlyDictionary<int, LabelSplit> Splits)
{
    /// <summary>Floats per sample.</summary>
    public int SampleSize => 3 * Frames * NtuJoints.Count * SkeletonPreprocessing.Persons;

    /// <summary>Loads a folder; every split file is validated against the class list.</summary>
    /// <exception cref="TensorFormatException">data/label arrays malformed or inconsistent.</exception>
    /// <exception cref="DataFormatException">Class texts or splits malformed or inconsistent.</exception>
    public static SkeletonDataset Load(string dir)
    {
        string dataPath = Path.Combine(dir, SyntheticDataset.DataFile), labelPath = Path.Combine(dir, SyntheticDataset.LabelFile);
        var (x, shape) = ReadFloat32Streaming(dataPath);
        if (shape.Length != 5 || shape[1] != 3 || shape[3] != NtuJoints.Count || shape[4] != SkeletonPreprocessing.Persons)
            throw new TensorFormatException(dataPath, $"expected float32 (N, 3, T, 25, 2), got ({string.Join(", ", shape)})");
        var lab = Npy.Read(labelPath);
        if (lab.Shape.Length != 1 || lab.Shape[0] != shape[0])
            throw new TensorFormatException(labelPath, $"expected ({shape[0]},) labels, got ({string.Join(", ", lab.Shape)})");
        var labels = lab.ToInt32();
        var texts = ClassTexts.Load(Path.Combine(dir, SyntheticDataset.ClassCsv), Path.Combine(dir, SyntheticDataset.DescriptionFile));
        foreach (int l in labels)
            if (l < 0 || l >= texts.Count) throw new DataFormatException($"{labelPath}: label {l} is outside the {texts.Count} classes of {SyntheticDataset.ClassCsv}");
        var splits = new Dictionary<int, LabelSplit>();
        string sd = Path.Combine(dir, SyntheticDataset.SplitFolder);
        if (Directory.Exists(sd))
            foreach (var ru in Directory.GetFiles(sd, "ru*.npy").Order(StringComparer.Ordinal))
            {
                if (!int.TryParse(Path.GetFileNameWithoutExtension(ru)[2..], System.Globalization.CultureInfo.InvariantCulture, out int u)) continue;
                splits[u] = LabelSplit.Load(sd, u, texts.Count);
            }
        return new SkeletonDataset(x, shape[0], shape[2], labels, texts, splits);
    }

    /// <summary>
    /// Reads a float32 C-order .npy straight into a float[] in 64 MB slices, so files over 2 GB load
    /// (100,000 sequences at T = 64 are 3.8 GB; <see cref="Npy.Read"/> holds the whole file in one byte[]).
    /// The header check is a strict subset of <see cref="Npy.Parse"/>: it accepts what <see cref="Npy.Encode"/> writes.
    /// </summary>
    private static (float[] X, int[] Shape) ReadFloat32Streaming(string path)
    {
        FileStream fs;
        try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20); }
        catch (FileNotFoundException e) { throw new TensorFormatException(path, "file not found", e); }
        catch (DirectoryNotFoundException e) { throw new TensorFormatException(path, "file not found", e); }
        using (fs)
        {
            var pre = new byte[12];
            int got = fs.ReadAtLeast(pre, 12, throwOnEndOfStream: false);
            if (got < 12 || pre[0] != 0x93 || pre[1] != (byte)'N') throw new TensorFormatException(path, "not an .npy file (bad magic or shorter than 12 bytes)");
            int start = pre[6] == 1 ? 10 : 12;
            long headerLen = pre[6] == 1 ? BitConverter.ToUInt16(pre, 8) : BitConverter.ToUInt32(pre, 8);
            if (pre[6] is not (1 or 2) || start + headerLen > fs.Length || headerLen > 1 << 20)
                throw new TensorFormatException(path, $"unsupported version {pre[6]} or truncated header ({headerLen} bytes)");
            var head = new byte[headerLen];
            fs.Position = start;
            fs.ReadExactly(head);
            string text = System.Text.Encoding.Latin1.GetString(head);
            if (!text.Contains("'descr': '<f4'", StringComparison.Ordinal)) throw new TensorFormatException(path, $"expected float32 data ('descr': '<f4'), header is {text.Trim()}");
            if (!text.Contains("'fortran_order': False", StringComparison.Ordinal)) throw new TensorFormatException(path, "expected C order ('fortran_order': False)");
            int k = text.IndexOf("'shape': (", StringComparison.Ordinal), rp = k < 0 ? -1 : text.IndexOf(')', k);
            if (rp < 0) throw new TensorFormatException(path, $"header has no 'shape' tuple: {text.Trim()}");
            var shape = text[(k + 10)..rp].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(d => int.TryParse(d, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v
                    : throw new TensorFormatException(path, $"shape entry '{d}' is not a non-negative integer")).ToArray();
            double count = shape.Aggregate(1.0, (a, b) => a * b);
            if (count > Array.MaxLength) throw new TensorFormatException(path, $"{count} floats do not fit one array");
            if (fs.Length - start - headerLen < count * 4)
                throw new TensorFormatException(path, $"truncated: shape ({string.Join(", ", shape)}) needs {count * 4} data bytes, file has {fs.Length - start - headerLen}");
            var x = new float[(long)count];
            const int Slice = 1 << 24; // floats per read
            for (long off = 0; off < x.Length; off += Slice)
                fs.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan((int)off, (int)Math.Min(Slice, x.Length - off))));
            return (x, shape);
        }
    }

    /// <summary>Indices of the samples whose class is in <paramref name="classes"/>.</summary>
    public int[] IndicesOf(IEnumerable<int> classes)
    {
        var set = classes.ToHashSet();
        return Enumerable.Range(0, Count).Where(i => set.Contains(Labels[i])).ToArray();
    }
}
