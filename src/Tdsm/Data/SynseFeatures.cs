using Tdsm.Formats;
using Tdsm.Tensors;

namespace Tdsm.Data;

/// <summary>A feature matrix (N, D) float32 row-major with its 0-based class ids (N).</summary>
public sealed record LabeledFeatures(float[] Features, int Dim, int[] Labels)
{
    /// <summary>Rows.</summary>
    public int Count => Labels.Length;

    /// <summary>The rows at <paramref name="indices"/>, in that order (copies).</summary>
    public LabeledFeatures Rows(IReadOnlyList<int> indices)
    {
        var x = new float[(long)indices.Count * Dim];
        var y = new int[indices.Count];
        for (int j = 0; j < indices.Count; j++)
        {
            Features.AsSpan(indices[j] * Dim, Dim).CopyTo(x.AsSpan(j * Dim));
            y[j] = Labels[indices[j]];
        }
        return new LabeledFeatures(x, Dim, y);
    }

    /// <summary>The rows whose class id passes <paramref name="keep"/>, in their order.</summary>
    public LabeledFeatures WhereLabel(Func<int, bool> keep) => Rows([.. Enumerable.Range(0, Count).Where(i => keep(Labels[i]))]);
}

/// <summary>
/// The SynSE / SA-DVAE feature folder layout: <c>train.npy</c> (N,D) + <c>train_label.npy</c> (seen classes),
/// <c>ztest.npy</c> + <c>z_label.npy</c> (unseen-class test set, zero-shot), optionally <c>gtest.npy</c> +
/// <c>g_label.npy</c> (all-class test set, generalised zero-shot). Labels are the original 0-based class ids.
/// </summary>
public sealed record SynseFeatures(LabeledFeatures Train, LabeledFeatures ZTest, LabeledFeatures? GTest)
{
    /// <summary>Loads a folder.</summary>
    /// <exception cref="TensorFormatException">A file is missing or malformed, or features and labels disagree.</exception>
    public static SynseFeatures Load(string folder)
    {
        var train = LoadPair(folder, "train.npy", "train_label.npy");
        var z = LoadPair(folder, "ztest.npy", "z_label.npy");
        LabeledFeatures? g = null;
        bool hasG = File.Exists(Path.Combine(folder, "gtest.npy")), hasGl = File.Exists(Path.Combine(folder, "g_label.npy"));
        if (hasG != hasGl)
            throw new TensorFormatException(Path.Combine(folder, hasG ? "g_label.npy" : "gtest.npy"), "file not found (gtest.npy and g_label.npy come together)");
        if (hasG) g = LoadPair(folder, "gtest.npy", "g_label.npy");
        foreach (var (f, name) in new[] { (z, "ztest.npy"), (g, "gtest.npy") })
            if (f is not null && f.Dim != train.Dim)
                throw new TensorFormatException(Path.Combine(folder, name), $"feature width {f.Dim} differs from train.npy's {train.Dim}");
        return new SynseFeatures(train, z, g);
    }

    /// <summary>Checks train labels are seen classes and ztest labels unseen ones.</summary>
    /// <exception cref="DataFormatException">Names the file and the first offending label.</exception>
    public void Validate(LabelSplit split, string folder)
    {
        var seen = split.Seen.ToHashSet();
        foreach (int l in Train.Labels) if (!seen.Contains(l)) throw new DataFormatException($"{Path.Combine(folder, "train_label.npy")}: label {l} is not a seen class of the split");
        ValidateZTest(split, folder);
    }

    /// <summary>Checks ztest labels are unseen classes of <paramref name="split"/> (<paramref name="splitName"/> in the message).</summary>
    /// <exception cref="DataFormatException">Names the file and the first offending label.</exception>
    public void ValidateZTest(LabelSplit split, string folder, string splitName = "the split")
    {
        var unseen = split.Unseen.ToHashSet();
        foreach (int l in ZTest.Labels) if (!unseen.Contains(l)) throw new DataFormatException($"{Path.Combine(folder, "z_label.npy")}: label {l} is not an unseen class of {splitName}");
    }

    /// <summary>Writes the folder (float32 features, int64 labels), so the Python ZSAR code reads it unchanged; without
    /// <see cref="GTest"/>, a gtest pair already in the folder is removed.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        SavePair(folder, "train.npy", "train_label.npy", Train);
        SavePair(folder, "ztest.npy", "z_label.npy", ZTest);
        if (GTest is not null) SavePair(folder, "gtest.npy", "g_label.npy", GTest);
        else
        {
            // A gtest pair left from an earlier set in this folder would be loaded as part of this one.
            File.Delete(Path.Combine(folder, "gtest.npy"));
            File.Delete(Path.Combine(folder, "g_label.npy"));
        }
    }

    private static void SavePair(string folder, string x, string y, LabeledFeatures f)
    {
        if (f.Features.Length != (long)f.Count * f.Dim) throw new ArgumentException($"{x}: {f.Features.Length} values do not fill ({f.Count}, {f.Dim})");
        Npy.Write(Path.Combine(folder, x), [f.Count, f.Dim], f.Features);
        Npy.Write(Path.Combine(folder, y), [f.Count], f.Labels.Select(l => (long)l).ToArray());
    }

    private static LabeledFeatures LoadPair(string folder, string x, string y)
    {
        string px = Path.Combine(folder, x), py = Path.Combine(folder, y);
        var a = Npy.Read(px);
        var l = Npy.Read(py);
        if (a.Shape.Length != 2) throw new TensorFormatException(px, $"expected features (N, D), got shape ({string.Join(", ", a.Shape)})");
        if (a.DType is not (DType.F32 or DType.F64)) throw new TensorFormatException(px, $"expected float features, got {a.DType}");
        if (l.DType is not (DType.I32 or DType.I64)) throw new TensorFormatException(py, $"expected integer class ids, got {l.DType}");
        if (l.Shape.Length != 1 && !(l.Shape.Length == 2 && l.Shape[1] == 1))
            throw new TensorFormatException(py, $"expected labels (N,), got shape ({string.Join(", ", l.Shape)})");
        if (l.Shape[0] != a.Shape[0]) throw new TensorFormatException(py, $"{l.Shape[0]} labels for {a.Shape[0]} feature rows in {x}");
        var wide = l.ToInt64();
        for (int i = 0; i < wide.Length; i++)
            if (wide[i] is < 0 or > int.MaxValue) throw new TensorFormatException(py, $"class id {wide[i]} at row {i} is not a class id (0 to {int.MaxValue})");
        var labels = wide.Select(v => (int)v).ToArray();
        var features = a.ToFloat32();
        int dim = a.Shape[1];
        if (dim == 0) throw new TensorFormatException(px, $"features have shape ({a.Shape[0]}, 0): no feature channels");
        // A NaN or infinity here would surface only as a diverged training or meaningless scores.
        if (Finite.IndexOfNonFinite(features) is var bad and >= 0)
            throw new TensorFormatException(px, $"row {bad / dim}, column {bad % dim} is {features[bad]} (features must be finite)");
        return new LabeledFeatures(features, dim, labels);
    }
}
