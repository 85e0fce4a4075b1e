using Tdsm.Formats;

namespace Tdsm.StGcn;

/// <summary>
/// Encoder checkpoints as safetensors: every parameter and running statistic under its official
/// PyTorch name (float32), the adjacency as "A", and the config JSON in metadata "config"
/// (the fixture's keys), written atomically.
/// </summary>
public static class StGcnCheckpoint
{
    /// <summary>Metadata key of the original class ids the encoder was trained on, in the order of its logits.</summary>
    public const string SeenClassesKey = "seen_classes";

    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> (temp file + rename), after bringing a
    /// device tier's state into its host arrays. <paramref name="seenClasses"/>: the original class ids of its logits,
    /// stored so that feature extraction can refuse an unseen class the encoder was trained on.</summary>
    public static void Save(string path, StGcnModel model, IReadOnlyList<int>? seenClasses = null)
    {
        if (seenClasses is not null && seenClasses.Count != model.Config.NumClass)
            throw new ArgumentException($"{seenClasses.Count} seen class ids for an encoder of {model.Config.NumClass} classes", nameof(seenClasses));
        model.SyncToHost();
        var tensors = new List<SafeTensor>();
        foreach (var p in model.Layout.Parameters) tensors.Add(SafeTensor.FromFloat32(p.Name, p.Shape, p.Of(model.Parameters)));
        foreach (var bv in model.Layout.Buffers) tensors.Add(SafeTensor.FromFloat32(bv.Name, bv.Shape, bv.Of(model.Buffers)));
        tensors.Add(SafeTensor.FromFloat32("A", [StGcnConfig.K, model.Config.V, model.Config.V], model.A));
        var meta = new Dictionary<string, string> { ["config"] = model.Config.ToJson(), ["format"] = "tdsm-stgcn-encoder-v1" };
        if (seenClasses is not null) meta[SeenClassesKey] = "[" + string.Join(", ", seenClasses.Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";
        SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>The original class ids an encoder checkpoint was trained on (metadata "seen_classes"), or null for a file
    /// written without them.</summary>
    /// <exception cref="TensorFormatException">The entry is not a JSON array of integers.</exception>
    public static int[]? ReadSeenClasses(string path)
    {
        var f = SafeTensorsFile.Read(path);
        if (!f.Metadata.TryGetValue(SeenClassesKey, out var json)) return null;
        try { return System.Text.Json.JsonSerializer.Deserialize(json, SeenClassesJson.Default.Int32Array) ?? throw new System.Text.Json.JsonException("null"); }
        catch (System.Text.Json.JsonException e) { throw new TensorFormatException(path, $"metadata '{SeenClassesKey}' is not a JSON array of class ids: {e.Message}", e); }
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/> (or any file with a "config" metadata entry and
    /// the official names after <paramref name="prefix"/>) into a new model on <paramref name="ops"/>.</summary>
    /// <exception cref="TensorFormatException">Missing config, tensor or a shape mismatch; the message names file and tensor.</exception>
    public static StGcnModel Load(string path, IStGcnOps ops, string prefix = "")
    {
        var f = SafeTensorsFile.Read(path);
        var cfg = ReadConfig(f);
        // Every tensor is checked against the config before the model is allocated: a small file whose config claims
        // a huge encoder must not cost gigabytes first.
        var layout = new StGcnLayout(cfg);
        foreach (var view in layout.Parameters.Concat(layout.Buffers)) CheckTensor(f, prefix + view.Name, view.Shape);
        var model = new StGcnModel(cfg, ops);
        LoadInto(model, f, prefix);
        return model;
    }

    private static SafeTensor CheckTensor(SafeTensorsFile f, string name, int[] shape)
    {
        if (!f.Contains(name)) throw new TensorFormatException(f.Path, $"missing tensor '{name}' (shape [{string.Join(",", shape)}])");
        var t = f[name];
        if (!t.Shape.SequenceEqual(shape))
            throw new TensorFormatException(f.Path, $"tensor '{name}' has shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", shape)}]");
        return t;
    }

    /// <summary>The ST-GCN config in a file's metadata "config".</summary>
    public static StGcnConfig ReadConfig(SafeTensorsFile f)
    {
        if (!f.Metadata.TryGetValue("config", out var json)) throw new TensorFormatException(f.Path, "no 'config' entry in __metadata__ (expected the ST-GCN config JSON)");
        try { return StGcnConfig.FromJson(json, "metadata 'config'"); }
        catch (Exception e) when (e is FormatException or OverflowException) { throw new TensorFormatException(f.Path, e.Message, e); }
    }

    /// <summary>Copies every parameter and running statistic ("prefix" + official name) from <paramref name="f"/> into <paramref name="model"/>
    /// (its host arrays, then its tier's state).</summary>
    public static void LoadInto(StGcnModel model, SafeTensorsFile f, string prefix)
    {
        foreach (var (view, dst) in model.Layout.Parameters.Select(p => (p, model.Parameters)).Concat(model.Layout.Buffers.Select(bv => (bv, model.Buffers))))
        {
            string name = prefix + view.Name;
            var values = CheckTensor(f, name, view.Shape).ToFloat32();
            // A NaN weight or statistic would surface as a NaN feature, blamed on the skeleton it encodes.
            TensorFormatException.RequireFinite(f.Path, name, values);
            values.CopyTo(view.Of(dst).AsSpan());
        }
        model.UploadFromHost();
    }
}

/// <summary>Source-generated JSON for the seen-class list (no reflection).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(int[]))]
internal sealed partial class SeenClassesJson : System.Text.Json.Serialization.JsonSerializerContext;
