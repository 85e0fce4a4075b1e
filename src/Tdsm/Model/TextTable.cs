using Tdsm.Ops;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>
/// Class text features on a backend, split the way the DiT consumes them: Local (classes, L·cond)
/// = the 35 token features z_l, Global (classes, cond) = the pooled feature z_g. Built from the
/// TDSM layout (classes, 36, cond) where row 35 is global.
/// </summary>
public sealed class TextTable
{
    public int Classes { get; }
    public int Cond { get; }
    public int LocalTokens { get; }
    public Tensor Local { get; }
    public Tensor Global { get; }

    /// <summary>A fingerprint of the host features the table was built from (a checkpoint keeps it to detect other data on resume).</summary>
    public ulong Fingerprint { get; }

    /// <param name="ops">The backend that will hold the tables.</param>
    /// <param name="features">(classes, L+1, cond) host values, row L = global.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="tokens">L + 1 (36 in TDSM).</param>
    /// <param name="cond">Channel width.</param>
    public TextTable(IOps ops, ReadOnlySpan<float> features, int classes, int tokens, int cond)
    {
        if (features.Length != classes * tokens * cond)
            throw new ArgumentException($"text features: expected {classes}x{tokens}x{cond} = {classes * tokens * cond} values, got {features.Length}");
        Classes = classes; Cond = cond; LocalTokens = tokens - 1;
        var fp = Training.DataFingerprint.Create();
        fp.Add(features);
        Fingerprint = fp.Value;
        var local = new float[classes * LocalTokens * cond];
        var global = new float[classes * cond];
        for (int k = 0; k < classes; k++)
        {
            features.Slice(k * tokens * cond, LocalTokens * cond).CopyTo(local.AsSpan(k * LocalTokens * cond));
            features.Slice((k * tokens + LocalTokens) * cond, cond).CopyTo(global.AsSpan(k * cond));
        }
        Local = ops.Allocate(classes, LocalTokens * cond);
        Global = ops.Allocate(classes, cond);
        ops.Upload(local, Local);
        ops.Upload(global, Global);
    }
}
