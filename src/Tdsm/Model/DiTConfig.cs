using System.Text.Json;

namespace Tdsm.Model;

/// <summary>
/// The TDSM DiT's shape. InChannels = C_in (skeleton feature width), CondSize = width of the text
/// features (2·D_text), Hidden = H, Depth = number of blocks, Heads, MlpRatio, LocalTokens = M_l.
/// Diffusion: Steps, BetaStart, BetaEnd (scaled-linear schedule) and TTest (inference timestep).
/// </summary>
public sealed record DiTConfig(
    int InChannels, int CondSize, int Hidden, int Depth, int Heads,
    double MlpRatio = 4.0, int LocalTokens = 35,
    int Steps = 50, double BetaStart = 0.00085, double BetaEnd = 0.012, int TTest = 25)
{
    /// <summary>The paper's setting: Shift-GCN features (256), CLIP text 2×1024, DiT-B-like body.</summary>
    public static DiTConfig Paper => new(256, 2048, 768, 12, 12);

    /// <summary>The paper's body with the built-in MiniLM text features (2×384).</summary>
    public static DiTConfig PaperMiniLM => new(256, 768, 768, 12, 12);

    /// <summary>A small model for CPU experiments (hidden 128, depth 4, 4 heads).</summary>
    public static DiTConfig Small => new(256, 768, 128, 4, 4);

    /// <summary>The default run's model: hidden 64, depth 2, 4 heads — trains in about a minute on 2 CPU cores
    /// (C_in and cond are set from the data).</summary>
    public static DiTConfig Tiny => new(128, 768, 64, 2, 4);

    /// <summary>Width of one head.</summary>
    public int HeadDim => Hidden / Heads;

    /// <summary>MLP hidden width (H·ratio).</summary>
    public int MlpHidden => (int)(Hidden * MlpRatio);

    /// <summary>Tokens in the joint attention (skeleton + text).</summary>
    public int Tokens => LocalTokens + 1;

    /// <summary>Throws <see cref="ArgumentException"/> when the numbers cannot describe a DiT.</summary>
    public DiTConfig Validated()
    {
        foreach (var (key, value) in new[] { ("in_channels", InChannels), ("cond_size", CondSize), ("hidden_size", Hidden), ("depth", Depth), ("num_heads", Heads), ("local_tokens", LocalTokens) })
            if (value <= 0) throw new ArgumentException($"DiT config: {key} must be positive, got {value}");
        if (Hidden % Heads != 0) throw new ArgumentException($"DiT config: hidden {Hidden} is not divisible by heads {Heads}");
        if (!(MlpRatio > 0 && MlpRatio <= 64) || MlpHidden < 1) throw new ArgumentException($"DiT config: mlp_ratio must be in (0, 64] and give an MLP of at least 1 channel, got {MlpRatio}");
        if (Steps <= 0) throw new ArgumentException($"DiT config: num_steps must be positive, got {Steps}");
        // The scaled-linear schedule's betas lie between these two: they must be probabilities, increasing.
        if (!(BetaStart > 0 && BetaStart < BetaEnd && BetaEnd < 1))
            throw new ArgumentException($"DiT config: needs 0 < beta_start < beta_end < 1, got beta_start {BetaStart}, beta_end {BetaEnd}");
        if (TTest < 0 || TTest >= Steps) throw new ArgumentException($"DiT config: t_test {TTest} outside [0, {Steps})");
        return this;
    }

    /// <summary>Reads the fixture / checkpoint JSON ("in_channels", "cond_size", "hidden_size", "depth", "num_heads", ...).</summary>
    public static DiTConfig FromJson(JsonElement e)
    {
        static int I(JsonElement e, string k) => e.TryGetProperty(k, out var v) ? v.GetInt32() : throw new KeyNotFoundException($"DiT config has no '{k}'");
        static double Dbl(JsonElement e, string k, double d) => e.TryGetProperty(k, out var v) ? v.GetDouble() : d;
        static int Int(JsonElement e, string k, int d) => e.TryGetProperty(k, out var v) ? v.GetInt32() : d;
        return new DiTConfig(I(e, "in_channels"), I(e, "cond_size"), I(e, "hidden_size"), I(e, "depth"), I(e, "num_heads"),
            Dbl(e, "mlp_ratio", 4.0), Int(e, "local_tokens", 35), Int(e, "num_steps", 50),
            Dbl(e, "beta_start", 0.00085), Dbl(e, "beta_end", 0.012), Int(e, "t_test", 25)).Validated();
    }

    /// <summary>The JSON form written into checkpoint metadata (same keys as <see cref="FromJson"/>).</summary>
    public string ToJson() => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["in_channels"] = InChannels, ["cond_size"] = CondSize, ["hidden_size"] = Hidden, ["depth"] = Depth,
        ["num_heads"] = Heads, ["mlp_ratio"] = MlpRatio, ["local_tokens"] = LocalTokens, ["num_steps"] = Steps,
        ["beta_start"] = BetaStart, ["beta_end"] = BetaEnd, ["beta_schedule"] = "scaled_linear", ["t_test"] = TTest,
    });
}
