using System.Globalization;
using Tdsm.Formats;
using Tdsm.Model;
using Tdsm.Tensors;

namespace Tdsm.Training;

/// <summary>
/// TDSM checkpoints. <c>model.safetensors</c> holds the DiT parameters under the official PyTorch
/// names, the 3 fixed test noises as <c>test_noise</c> (J, C_in), and the DiT config in the
/// metadata ("config"). <c>optimizer.safetensors</c> holds the AdamW moments (<c>exp_avg.NAME</c>,
/// <c>exp_avg_sq.NAME</c>), the step, the RNG state and the epoch order, so training resumes
/// exactly. Both are written atomically (temporary file + rename).
/// </summary>
public static class Checkpoint
{
    public const string ModelFile = "model.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";

    /// <summary>Writes the model file.</summary>
    public static void SaveModel(string path, DiT model, float[] testNoise, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        var host = new float[model.Layout.Count];
        model.Ops.Download(model.Parameters, host);
        var tensors = model.Layout.Entries.Select(e => SafeTensor.FromFloat32(e.Name, e.Shape, host.AsSpan(e.Offset, e.Length))).ToList();
        int cin = model.Config.InChannels;
        tensors.Add(SafeTensor.FromFloat32("test_noise", [testNoise.Length / cin, cin], testNoise));
        var meta = new Dictionary<string, string> { ["config"] = model.Config.ToJson(), ["format"] = "tdsm.native/1" };
        if (extraMetadata is not null) foreach (var kv in extraMetadata) meta[kv.Key] = kv.Value;
        SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>
    /// Reads a model file: ours, or an official TDSM <c>model.safetensors</c> (accelerate output,
    /// no metadata) when <paramref name="fallbackConfig"/> gives its shape. Every parameter must be
    /// present with the shape the config implies.
    /// </summary>
    public static (DiTConfig Config, float[] Parameters, float[]? TestNoise) LoadModel(string path, DiTConfig? fallbackConfig = null)
    {
        var f = SafeTensorsFile.Read(path);
        DiTConfig cfg;
        ParameterLayout layout;
        try
        {
            if (f.Metadata.ContainsKey("config"))
            {
                using var doc = f.MetadataJson("config");
                cfg = DiTConfig.FromJson(doc.RootElement);
            }
            else cfg = fallbackConfig ?? throw new TensorFormatException(path, "no 'config' in __metadata__ (an official checkpoint): pass the model config (e.g. --preset paper)");
            layout = DiT.BuildLayout(cfg);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException or KeyNotFoundException or ArgumentException or OverflowException)
        {
            throw new TensorFormatException(path, $"metadata 'config' does not describe a DiT: {e.Message}", e);
        }
        // Every tensor is checked against the config before anything is allocated: a small file whose config claims a
        // huge model must not cost gigabytes first.
        foreach (var e in layout.Entries)
        {
            if (!f.Contains(e.Name)) throw new TensorFormatException(path, $"missing parameter '{e.Name}' for config {cfg}");
            var t = f[e.Name];
            if (!t.Shape.SequenceEqual(e.Shape))
                throw new TensorFormatException(path, $"parameter '{e.Name}' has shape [{string.Join(",", t.Shape)}], the config implies [{string.Join(",", e.Shape)}]");
        }
        var flat = new float[layout.Count];
        foreach (var e in layout.Entries)
        {
            f[e.Name].ToFloat32().CopyTo(flat, e.Offset);
            TensorFormatException.RequireFinite(path, e.Name, flat.AsSpan(e.Offset, e.Length));
        }
        float[]? noise = null;
        if (f.Contains("test_noise"))
        {
            var n = f["test_noise"];
            if (n.Shape.Length != 2 || n.Shape[0] < 1 || n.Shape[1] != cfg.InChannels)
                throw new TensorFormatException(path, $"test_noise has shape [{string.Join(",", n.Shape)}], expected [J, {cfg.InChannels}] with J >= 1");
            noise = n.ToFloat32();
            TensorFormatException.RequireFinite(path, "test_noise", noise);
        }
        return (cfg, flat, noise);
    }

    /// <summary>Writes the optimiser / loop state.</summary>
    public static void SaveOptimizer(string path, TdsmTrainer trainer)
    {
        var model = trainer.Model;
        var m = new float[model.Layout.Count]; var v = new float[model.Layout.Count];
        model.Ops.Download(trainer.Optimizer.M, m);
        model.Ops.Download(trainer.Optimizer.V, v);
        var tensors = new List<SafeTensor>();
        foreach (var e in model.Layout.Entries)
        {
            tensors.Add(SafeTensor.FromFloat32("exp_avg." + e.Name, e.Shape, m.AsSpan(e.Offset, e.Length)));
            tensors.Add(SafeTensor.FromFloat32("exp_avg_sq." + e.Name, e.Shape, v.AsSpan(e.Offset, e.Length)));
        }
        tensors.Add(SafeTensor.FromInt32("data_order", [trainer.Order.Length], trainer.Order));
        var meta = new Dictionary<string, string>
        {
            ["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture),
            ["cursor"] = trainer.Cursor.ToString(CultureInfo.InvariantCulture),
            ["rng"] = string.Join(",", trainer.Rng.State.Select(s => s.ToString(CultureInfo.InvariantCulture))),
            ["train_config"] = trainer.Config.ToJson(),
            ["data_fingerprint"] = trainer.DataFingerprint.ToString("x16", CultureInfo.InvariantCulture),
        };
        SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>Restores the optimiser / loop state into <paramref name="trainer"/> (whose model already holds the matching parameters).</summary>
    public static void LoadOptimizer(string path, TdsmTrainer trainer)
    {
        var f = SafeTensorsFile.Read(path);
        var model = trainer.Model;
        var m = new float[model.Layout.Count]; var v = new float[model.Layout.Count];
        foreach (var e in model.Layout.Entries)
        {
            f["exp_avg." + e.Name].ToFloat32().CopyTo(m, e.Offset);
            f["exp_avg_sq." + e.Name].ToFloat32().CopyTo(v, e.Offset);
        }
        model.Ops.Upload(m, trainer.Optimizer.M);
        model.Ops.Upload(v, trainer.Optimizer.V);
        string Meta(string k) => f.Metadata.TryGetValue(k, out var s) ? s : throw new TensorFormatException(path, $"no '{k}' in __metadata__");
        using (var saved = System.Text.Json.JsonDocument.Parse(Meta("train_config")))
        {
            var cfg = TrainConfig.FromJson(saved.RootElement);
            // The step's noise, timesteps and negatives are keyed by (seed, step): another seed would not continue the run.
            if (cfg.Seed != trainer.Config.Seed || cfg.Batch != trainer.Config.Batch)
                throw new TensorFormatException(path, $"the checkpoint was trained with seed {cfg.Seed} and batch {cfg.Batch}; this run has seed {trainer.Config.Seed} and batch {trainer.Config.Batch}");
        }
        // Another training set or text table would not continue the run (files from before the fingerprint have none).
        if (f.Metadata.TryGetValue("data_fingerprint", out var fp) && fp != trainer.DataFingerprint.ToString("x16", CultureInfo.InvariantCulture))
            throw new TensorFormatException(path, $"the checkpoint was trained on other data (fingerprint {fp}, this run's {trainer.DataFingerprint:x16}): resume with the same features, labels, unseen classes and text features");
        trainer.Optimizer.StepCount = int.Parse(Meta("step"), CultureInfo.InvariantCulture);
        trainer.Rng.State = Meta("rng").Split(',').Select(s => ulong.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        trainer.RestoreOrder(f["data_order"].ToInt32(), int.Parse(Meta("cursor"), CultureInfo.InvariantCulture));
    }

    /// <summary>J fixed test noises (J, C_in) ~ N(0, I) drawn from a seed, once per model.</summary>
    public static float[] DrawTestNoise(int j, int cin, ulong seed)
    {
        var noise = new float[j * cin];
        new Rng(seed ^ 0x7E57_0015EUL).FillNormal(noise);
        return noise;
    }
}
