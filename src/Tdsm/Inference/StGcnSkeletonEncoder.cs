using Tdsm.Data;
using Tdsm.StGcn;

namespace Tdsm.Inference;

/// <summary>
/// The skeleton seam's real implementation: the trained ST-GCN encoder (eval mode, running BN
/// statistics) on the CPU tier. A sequence (T, persons, 25, 3) is laid out as the encoder's
/// (1, 3, T, 25, 2) input (a missing second person stays zero), pre-normalised like the NTU
/// arrays unless it already is, and encoded on its own frame count (the encoder pools globally
/// over time). Thread-safe: encodes one sequence at a time.
/// </summary>
internal sealed class StGcnSkeletonEncoder : ISkeletonEncoder
{
    private const int V = SkeletonSequence.Joints, M = SkeletonPreprocessing.Persons;
    private readonly StGcnModel _model;
    private readonly object _lock = new();

    public StGcnSkeletonEncoder(StGcnModel model)
    {
        if (model.Config.InChannels != SkeletonSequence.Coordinates || model.Config.V != V)
            throw new ArgumentException($"ST-GCN encoder takes {model.Config.InChannels} channels on {model.Config.V} joints, expected 3 on 25");
        _model = model;
    }

    public int FeatureSize => _model.Config.FeatureDim;

    /// <summary>Loads an encoder checkpoint written by <see cref="StGcnCheckpoint.Save"/>.</summary>
    public static StGcnSkeletonEncoder Load(string path) => new(StGcnCheckpoint.Load(path, new StGcnCpuOps()));

    /// <summary>(3, T, 25, 2) encoder input of <paramref name="s"/>, pre-normalised when it is raw.</summary>
    public static float[] Layout(SkeletonSequence s)
    {
        int t = s.Frames;
        var x = new float[3 * t * V * M];
        var d = s.Data.Span;
        for (int f = 0; f < t; f++)
            for (int m = 0; m < s.Persons; m++)
                for (int v = 0; v < V; v++)
                    for (int c = 0; c < 3; c++)
                        x[SkeletonPreprocessing.Index(c, f, v, m, t)] = d[((f * s.Persons + m) * V + v) * 3 + c];
        if (!s.Preprocessed) SkeletonPreprocessing.PreNormalize(x, t);
        return x;
    }

    public void Encode(SkeletonSequence sequence, Span<float> feature)
    {
        var x = Layout(sequence);
        lock (_lock)
        {
            _model.Forward(x, default, 1, sequence.Frames, M, training: false);
            _model.Features.CopyTo(feature);
        }
    }
}
