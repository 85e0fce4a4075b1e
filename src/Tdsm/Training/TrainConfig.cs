using System.Text.Json;
using Tdsm.Reference;

namespace Tdsm.Training;

/// <summary>
/// The TDSM training loop's settings (TDSM_SPEC.md section 4). <see cref="Official"/> is the
/// paper's: 50,000 iterations of batch 256, AdamW lr 1e-4 with 100 warm-up steps and cosine
/// decay, margin τ = 1, λ = 1.
/// </summary>
public sealed record TrainConfig(
    int Iterations = 50_000, int Batch = 256, double Lr = 1e-4, int Warmup = 100,
    double Margin = 1.0, double Lambda = 1.0, double WeightDecay = 0.01,
    ulong Seed = 0, int CheckpointEvery = 5_000, int LogEvery = 100)
{
    public static TrainConfig Official => new();

    public AdamWConfig AdamW => new(Lr, 0.9, 0.999, 1e-8, WeightDecay);

    /// <summary>This config, or an <see cref="ArgumentException"/> naming the first setting out of range (official key, value).</summary>
    public TrainConfig Validated()
    {
        static void Check(bool ok, string setting, object value, string want)
        {
            if (!ok) throw new ArgumentException($"training config: {setting} must be {want}, got {value}");
        }
        Check(Iterations > 0, "num_iter (iterations)", Iterations, "positive");
        Check(Batch > 0, "batch_size", Batch, "positive");
        Check(Lr > 0 && double.IsFinite(Lr), "learning_rate", Lr, "a positive number");
        Check(Warmup >= 0, "num_warmup", Warmup, "0 or more");
        Check(CheckpointEvery >= 0, "checkpoint_every", CheckpointEvery, "0 (only at the end) or more");
        Check(LogEvery > 0, "log_every", LogEvery, "positive");
        Check(Margin >= 0 && double.IsFinite(Margin), "margin (the triplet margin τ)", Margin, "0 or more");
        Check(Lambda >= 0 && double.IsFinite(Lambda), "lambda (the triplet loss weight)", Lambda, "0 or more");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), "weight_decay", WeightDecay, "0 or more");
        return this;
    }

    public string ToJson() => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["num_iter"] = Iterations, ["batch_size"] = Batch, ["learning_rate"] = Lr, ["num_warmup"] = Warmup,
        ["margin"] = Margin, ["lambda"] = Lambda, ["weight_decay"] = WeightDecay, ["seed"] = Seed,
        ["checkpoint_every"] = CheckpointEvery, ["log_every"] = LogEvery,
    });

    public static TrainConfig FromJson(JsonElement e)
    {
        var d = new TrainConfig();
        int I(string k, int v) => e.TryGetProperty(k, out var p) ? p.GetInt32() : v;
        double D(string k, double v) => e.TryGetProperty(k, out var p) ? p.GetDouble() : v;
        return new TrainConfig(I("num_iter", d.Iterations), I("batch_size", d.Batch), D("learning_rate", d.Lr), I("num_warmup", d.Warmup),
            D("margin", d.Margin), D("lambda", d.Lambda), D("weight_decay", d.WeightDecay),
            e.TryGetProperty("seed", out var s) ? s.GetUInt64() : d.Seed, I("checkpoint_every", d.CheckpointEvery), I("log_every", d.LogEvery)).Validated();
    }
}
