using System.Text.Json;
using Tdsm.Formats;
using Tdsm.Tensors;

namespace Tdsm.Text;

/// <summary>
/// Per-class text features in the TDSM layout (spec section 1.2): a (C, 36, D) float32 block,
/// class c's rows 0..34 are its local token features z_l and row 35 its global feature z_g.
/// For the built-in encoder D = 768 = [label phrase (384) | description (384)]; features of any
/// width computed elsewhere (e.g. CLIP, D = 2048) load through the same type.
/// Files: safetensors with one tensor "text_features" and the class names as a JSON array in
/// metadata "class_names", or a bare .npy of shape (C, 36, D) (names supplied by the caller).
/// </summary>
public sealed class ClassTextFeatures
{
    /// <summary>Local token rows per class (z_l).</summary>
    public const int LocalTokens = 35;

    /// <summary>Rows per class: 35 local + 1 global.</summary>
    public const int Rows = LocalTokens + 1;

    /// <summary>Index of the global row (z_g).</summary>
    public const int GlobalRow = LocalTokens;

    /// <summary>The tensor name in safetensors files.</summary>
    public const string TensorName = "text_features";

    /// <summary>Class names in class order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The features, (C, 36, D) row-major.</summary>
    public float[] Data { get; }

    /// <summary>Number of classes C.</summary>
    public int Count => Names.Count;

    /// <summary>Feature width D (channels per row).</summary>
    public int Width { get; }

    /// <summary>Extra safetensors metadata written by <see cref="Save"/> (e.g. how the features were made).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Wraps (C, 36, D) features; <paramref name="data"/> is used, not copied.</summary>
    /// <exception cref="ArgumentException">The data length is not C·36·D or a value is not finite.</exception>
    public ClassTextFeatures(IReadOnlyList<string> names, float[] data, int width, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        for (int i = 0; i < names.Count; i++)
            if (names[i] is null) throw new ArgumentException($"class {i} has no name (null)", nameof(names));
        if (data.Length != (long)names.Count * Rows * width)
            throw new ArgumentException($"features hold {data.Length} values, expected classes*36*width = {names.Count}*{Rows}*{width}", nameof(data));
        if (Finite.IndexOfNonFinite(data) is var bad and >= 0)
            throw new ArgumentException($"feature value {bad} (class {bad / (Rows * width)}) is not finite", nameof(data));
        Names = [.. names];
        Data = data;
        Width = width;
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    /// <summary>The classes <paramref name="classes"/> (ids into this table), in that order, with their names.</summary>
    public ClassTextFeatures Select(IReadOnlyList<int> classes)
    {
        int rows = Rows * Width;
        var data = new float[classes.Count * rows];
        for (int k = 0; k < classes.Count; k++)
        {
            if ((uint)classes[k] >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(classes), $"class id {classes[k]} outside [0, {Count})");
            Data.AsSpan(classes[k] * rows, rows).CopyTo(data.AsSpan(k * rows));
        }
        return new ClassTextFeatures(classes.Select(c => Names[c]).ToArray(), data, Width);
    }

    /// <summary>The 35 local rows of class <paramref name="c"/>, (35, D).</summary>
    public ReadOnlySpan<float> Local(int c) => Data.AsSpan(c * Rows * Width, LocalTokens * Width);

    /// <summary>The global row of class <paramref name="c"/>, (D).</summary>
    public ReadOnlySpan<float> Global(int c) => Data.AsSpan((c * Rows + GlobalRow) * Width, Width);

    /// <summary>Writes .safetensors (names in metadata) or .npy (array only), chosen by extension; atomic.</summary>
    /// <exception cref="ArgumentException">The extension is neither .safetensors nor .npy.</exception>
    public void Save(string path)
    {
        int[] shape = [Count, Rows, Width];
        switch (Path.GetExtension(path).ToLowerInvariant())
        {
            case ".npy":
                Npy.Write(path, shape, Data);
                break;
            case ".safetensors":
                var meta = new Dictionary<string, string>(Metadata) { ["class_names"] = JsonSerializer.Serialize(Names.ToArray(), NamesJson.Default.StringArray) };
                meta["layout"] = "(classes, 36, D): rows 0..34 local token features, row 35 global feature";
                SafeTensorsFile.Write(path, [SafeTensor.FromFloat32(TensorName, shape, Data)], meta);
                break;
            default:
                throw new ArgumentException($"{path}: unsupported extension '{Path.GetExtension(path)}', expected .safetensors or .npy", nameof(path));
        }
    }

    /// <summary>Loads features of any width D from .safetensors (tensor "text_features", or the
    /// file's only tensor; any float dtype) or .npy, shape (C, 36, D). Names come from the file's
    /// "class_names" metadata, else from <paramref name="names"/>, else "class_0", "class_1", ...</summary>
    /// <exception cref="TensorFormatException">The file is unreadable, has no suitable tensor, the
    /// shape is not (C, 36, D), or the names disagree with C.</exception>
    public static ClassTextFeatures Load(string path, IReadOnlyList<string>? names = null)
    {
        int[] shape;
        float[] data;
        IReadOnlyList<string>? fileNames = null;
        var meta = new Dictionary<string, string>();
        if (Path.GetExtension(path).Equals(".npy", StringComparison.OrdinalIgnoreCase))
        {
            var a = Npy.Read(path);
            if (a.DType is not (DType.F32 or DType.F64)) throw new TensorFormatException(path, $"dtype {a.DType}, expected a float array");
            shape = a.Shape;
            data = a.ToFloat32();
        }
        else
        {
            var f = SafeTensorsFile.Read(path);
            SafeTensor t;
            if (f.Contains(TensorName)) t = f[TensorName];
            else if (f.Names.Count == 1) t = f[f.Names[0]];
            else throw new TensorFormatException(path, $"no tensor '{TensorName}' and {f.Names.Count} tensors to choose from ({string.Join(", ", f.Names.Take(5))})");
            if (t.DType is not (DType.F32 or DType.F64 or DType.F16 or DType.BF16)) throw new TensorFormatException(path, $"tensor '{t.Name}' has dtype {t.DType}, expected a float dtype");
            shape = t.Shape;
            data = t.ToFloat32();
            if (f.Metadata.TryGetValue("class_names", out var json))
            {
                try { fileNames = JsonSerializer.Deserialize(json, NamesJson.Default.StringArray); }
                catch (JsonException e) { throw new TensorFormatException(path, $"metadata 'class_names' is not a JSON array of strings: {e.Message}", e); }
                if (fileNames is null || fileNames.Any(n => n is null)) throw new TensorFormatException(path, "metadata 'class_names' is not a JSON array of strings (null)");
            }
            foreach (var kv in f.Metadata)
                if (kv.Key is not ("class_names" or "layout")) meta[kv.Key] = kv.Value;
        }
        if (shape.Length != 3 || shape[1] != Rows || shape[2] == 0 || shape[0] == 0)
            throw new TensorFormatException(path, $"features have shape [{string.Join(",", shape)}], expected (classes, {Rows}, width) with at least one class");
        int c = shape[0];
        if (fileNames is not null && names is not null && !fileNames.SequenceEqual(names))
            throw new TensorFormatException(path, "the class names stored in the file differ from the ones given");
        var chosen = fileNames ?? names ?? Enumerable.Range(0, c).Select(i => $"class_{i}").ToArray();
        if (chosen.Count != c) throw new TensorFormatException(path, $"{chosen.Count} class names for {c} classes");
        if (Finite.IndexOfNonFinite(data) is var bad and >= 0)
            throw new TensorFormatException(path, $"value {bad} (class {bad / (Rows * shape[2])}) is not finite");
        return new ClassTextFeatures(chosen, data, shape[2], meta);
    }
}

/// <summary>Source-generated JSON for the class-name list (no reflection).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class NamesJson : System.Text.Json.Serialization.JsonSerializerContext;
