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
        var data = Npy.Read(dataPath);
        if (data.DType != DType.F32 || data.Shape.Length != 5 || data.Shape[1] != 3 || data.Shape[3] != NtuJoints.Count || data.Shape[4] != SkeletonPreprocessing.Persons)
            throw new TensorFormatException(dataPath, $"expected float32 (N, 3, T, 25, 2), got {data.DType} ({string.Join(", ", data.Shape)})");
        var lab = Npy.Read(labelPath);
        if (lab.Shape.Length != 1 || lab.Shape[0] != data.Shape[0])
            throw new TensorFormatException(labelPath, $"expected ({data.Shape[0]},) labels, got ({string.Join(", ", lab.Shape)})");
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
        var x = new float[data.ElementCount];
        Buffer.BlockCopy(data.Bytes, 0, x, 0, data.Bytes.Length);
        return new SkeletonDataset(x, data.Shape[0], data.Shape[2], labels, texts, splits);
    }

    /// <summary>Indices of the samples whose class is in <paramref name="classes"/>.</summary>
    public int[] IndicesOf(IEnumerable<int> classes)
    {
        var set = classes.ToHashSet();
        return Enumerable.Range(0, Count).Where(i => set.Contains(Labels[i])).ToArray();
    }
}
