using Tdsm.Formats;

namespace Tdsm.StGcn;

/// <summary>
/// Encoder checkpoints as safetensors: every parameter and running statistic under its official
/// PyTorch name (float32), the adjacency as "A", and the config JSON in metadata "config"
/// (the fixture's keys), written atomically.
/// </summary>
public static class StGcnCheckpoint
{
    /// <summary>Writes <paramref name="model"/> to <paramref name="path"/> (temp file + rename), after bringing a
    /// device tier's state into its host arrays.</summary>
    public static void Save(string path, StGcnModel model)
    {
        model.SyncToHost();
        var tensors = new List<SafeTensor>();
        foreach (var p in model.Layout.Parameters) tensors.Add(SafeTensor.FromFloat32(p.Name, p.Shape, p.Of(model.Parameters)));
        foreach (var bv in model.Layout.Buffers) tensors.Add(SafeTensor.FromFloat32(bv.Name, bv.Shape, bv.Of(model.Buffers)));
        tensors.Add(SafeTensor.FromFloat32("A", [StGcnConfig.K, model.Config.V, model.Config.V], model.A));
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["config"] = model.Config.ToJson(), ["format"] = "tdsm-stgcn-encoder-v1" });
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/> (or any file with a "config" metadata entry and
    /// the official names after <paramref name="prefix"/>) into a new model on <paramref name="ops"/>.</summary>
    /// <exception cref="TensorFormatException">Missing config, tensor or a shape mismatch; the message names file and tensor.</exception>
    public static StGcnModel Load(string path, IStGcnOps ops, string prefix = "")
    {
        var f = SafeTensorsFile.Read(path);
        var model = new StGcnModel(ReadConfig(f), ops);
        LoadInto(model, f, prefix);
        return model;
    }

    /// <summary>The ST-GCN config in a file's metadata "config".</summary>
    public static StGcnConfig ReadConfig(SafeTensorsFile f)
    {
        if (!f.Metadata.TryGetValue("config", out var json)) throw new TensorFormatException(f.Path, "no 'config' entry in __metadata__ (expected the ST-GCN config JSON)");
        try { return StGcnConfig.FromJson(json, f.Path); }
        catch (FormatException e) { throw new TensorFormatException(f.Path, e.Message, e); }
    }

    /// <summary>Copies every parameter and running statistic ("prefix" + official name) from <paramref name="f"/> into <paramref name="model"/>
    /// (its host arrays, then its tier's state).</summary>
    public static void LoadInto(StGcnModel model, SafeTensorsFile f, string prefix)
    {
        foreach (var (view, dst) in model.Layout.Parameters.Select(p => (p, model.Parameters)).Concat(model.Layout.Buffers.Select(bv => (bv, model.Buffers))))
        {
            string name = prefix + view.Name;
            if (!f.Contains(name)) throw new TensorFormatException(f.Path, $"missing tensor '{name}' (shape [{string.Join(",", view.Shape)}])");
            var t = f[name];
            if (!t.Shape.SequenceEqual(view.Shape))
                throw new TensorFormatException(f.Path, $"tensor '{name}' has shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", view.Shape)}]");
            t.ToFloat32().CopyTo(view.Of(dst).AsSpan());
        }
        model.UploadFromHost();
    }
}
