using Tdsm.Formats;

namespace Tdsm.Text;

/// <summary>The parameters of one encoder layer (Linear weights [out, in]).</summary>
public sealed class BertLayerWeights
{
    /// <summary>Query, key, value weights (H, H) and biases (H).</summary>
    public required float[] Wq, Bq, Wk, Bk, Wv, Bv;

    /// <summary>Attention output projection (H, H), bias (H), then LayerNorm gamma/beta (H).</summary>
    public required float[] Wo, Bo, Ln1G, Ln1B;

    /// <summary>Feed-forward: intermediate (I, H) + bias (I), output (H, I) + bias (H), LayerNorm gamma/beta (H).</summary>
    public required float[] Wi, Bi, Wf, Bf, Ln2G, Ln2B;

    /// <summary>[Wq; Wk; Wv] stacked to (3H, H) and [Bq; Bk; Bv] (3H): one GEMM gives q|k|v per token.</summary>
    public required float[] Wqkv, Bqkv;
}

/// <summary>All parameters of a BERT encoder, loaded from a safetensors file with BERT names.</summary>
public sealed class BertWeights
{
    /// <summary>The encoder's shape.</summary>
    public BertConfig Config { get; }

    /// <summary>Word (V, H), position (P, H) and token-type (2, H) embeddings.</summary>
    public float[] WordEmb { get; }

    /// <inheritdoc cref="WordEmb"/>
    public float[] PosEmb { get; }

    /// <inheritdoc cref="WordEmb"/>
    public float[] TypeEmb { get; }

    /// <summary>Embedding LayerNorm gamma and beta (H).</summary>
    public float[] EmbLnG { get; }

    /// <inheritdoc cref="EmbLnG"/>
    public float[] EmbLnB { get; }

    /// <summary>The encoder layers in order.</summary>
    public IReadOnlyList<BertLayerWeights> Layers { get; }

    private BertWeights(BertConfig config, Func<string, float[]> get)
    {
        Config = config;
        WordEmb = get("embeddings.word_embeddings.weight");
        PosEmb = get("embeddings.position_embeddings.weight");
        TypeEmb = get("embeddings.token_type_embeddings.weight");
        EmbLnG = get("embeddings.LayerNorm.weight");
        EmbLnB = get("embeddings.LayerNorm.bias");
        var layers = new List<BertLayerWeights>();
        for (int l = 0; l < config.Layers; l++)
        {
            string s = $"encoder.layer.{l}.";
            float[] wq = get(s + "attention.self.query.weight"), wk = get(s + "attention.self.key.weight"), wv = get(s + "attention.self.value.weight");
            float[] bq = get(s + "attention.self.query.bias"), bk = get(s + "attention.self.key.bias"), bv = get(s + "attention.self.value.bias");
            layers.Add(new BertLayerWeights
            {
                Wq = wq, Bq = bq, Wk = wk, Bk = bk, Wv = wv, Bv = bv,
                Wqkv = [.. wq, .. wk, .. wv],
                Bqkv = [.. bq, .. bk, .. bv],
                Wo = get(s + "attention.output.dense.weight"),
                Bo = get(s + "attention.output.dense.bias"),
                Ln1G = get(s + "attention.output.LayerNorm.weight"),
                Ln1B = get(s + "attention.output.LayerNorm.bias"),
                Wi = get(s + "intermediate.dense.weight"),
                Bi = get(s + "intermediate.dense.bias"),
                Wf = get(s + "output.dense.weight"),
                Bf = get(s + "output.dense.bias"),
                Ln2G = get(s + "output.LayerNorm.weight"),
                Ln2B = get(s + "output.LayerNorm.bias"),
            });
        }
        Layers = layers;
    }

    /// <summary>Takes the parameters from an open safetensors file, checking every name, dtype and shape.</summary>
    /// <exception cref="TensorFormatException">A parameter is missing, not float32, or has the wrong shape.</exception>
    public static BertWeights FromSafeTensors(SafeTensorsFile file, BertConfig config)
    {
        var shapes = config.ParameterShapes().ToDictionary(p => p.Name, p => p.Shape, StringComparer.Ordinal);
        return new BertWeights(config, name =>
        {
            if (!file.Contains(name)) throw new TensorFormatException(file.Path, $"parameter '{name}' is missing");
            var t = file[name];
            if (t.DType != DType.F32) throw new TensorFormatException(file.Path, $"parameter '{name}' has dtype {t.DType}, expected F32");
            if (!t.Shape.SequenceEqual(shapes[name]))
                throw new TensorFormatException(file.Path, $"parameter '{name}' has shape [{string.Join(",", t.Shape)}], expected [{string.Join(",", shapes[name])}]");
            var v = t.ToFloat32();
            if (Tdsm.Tensors.Finite.IndexOfNonFinite(v) >= 0) throw new TensorFormatException(file.Path, $"parameter '{name}' holds a non-finite value");
            return v;
        });
    }
}
