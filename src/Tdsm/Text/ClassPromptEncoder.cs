using System.Globalization;

namespace Tdsm.Text;

/// <summary>
/// Encodes class prompts into the TDSM text-feature layout with the built-in MiniLM encoder.
/// <para>Per prompt (H = 384): rows 0..34 are the last hidden state at token positions 0..34 of
/// "[CLS] prompt [SEP]", truncated to 35 tokens (keeping [CLS] and [SEP], as HF's truncation does)
/// and padded with [PAD] tokens that the attention mask hides from every other token. Padded
/// positions hold the encoder's own outputs at those [PAD] tokens (they attend to the prompt's real
/// tokens, so they carry sentence context), as the official code feeds CLIP's outputs at its padded
/// positions; they are neither zeroed nor copied. Row 35 is the mean of the last hidden state over
/// the real tokens, [CLS] and [SEP] included, exactly sentence-transformers' mean pooling for this
/// model; for a prompt longer than 35 tokens it is taken over the whole prompt (up to 256 tokens, the
/// model's sentence-transformers limit) in a separate pass.</para>
/// <para>The global row is NOT L2-normalised (sentence-transformers' Normalize step is skipped): it
/// stays on the scale of the 35 token rows it is averaged from, as CLIP's unnormalised pooled output
/// is in the official code; the DiT's Linear embedders learn their own scale, and cosine similarity
/// (the sanity check) does not depend on it.</para>
/// Per class the label phrase's and the description's (36, 384) blocks are concatenated along
/// channels: (36, 768) = [label | description].
/// </summary>
public sealed class ClassPromptEncoder
{
    /// <summary>Token limit of the pooled feature (sentence-transformers' max_seq_length for this model).</summary>
    public const int MaxPooledTokens = 256;

    private readonly BertWeights _weights;

    /// <summary>The tokenizer.</summary>
    public BertTokenizer Tokenizer { get; }

    /// <summary>The tier that runs the encoder.</summary>
    public TextTier Tier { get; }

    /// <summary>Hidden width of one prompt's features (384).</summary>
    public int PromptWidth => _weights.Config.Hidden;

    /// <summary>Creates the encoder from loaded weights and tokenizer.</summary>
    public ClassPromptEncoder(BertWeights weights, BertTokenizer tokenizer, TextTier tier = TextTier.Cpu)
    {
        if (tokenizer.VocabSize != weights.Config.VocabSize)
            throw new ArgumentException($"tokenizer has {tokenizer.VocabSize} tokens but the weights' vocabulary is {weights.Config.VocabSize}", nameof(tokenizer));
        _weights = weights;
        Tokenizer = tokenizer;
        Tier = tier;
    }

    /// <summary>Loads MiniLM from the converted cache (see <see cref="MiniLm.Load"/>).</summary>
    /// <exception cref="TextModelException">The cache is missing or damaged.</exception>
    public static ClassPromptEncoder FromCache(string cacheDir, TextTier tier = TextTier.Cpu)
    {
        var (w, t) = MiniLm.Load(cacheDir);
        return new ClassPromptEncoder(w, t, tier);
    }

    /// <summary>Token ids of <paramref name="prompt"/> in the 35-token window and its attention
    /// mask (1 = real token): "[CLS] ... [SEP]" truncated to 35, then [PAD].</summary>
    public (int[] Ids, int[] Mask) Window(string prompt)
    {
        var e = Tokenizer.Encode(prompt, ClassTextFeatures.LocalTokens);
        var ids = new int[ClassTextFeatures.LocalTokens];
        var mask = new int[ClassTextFeatures.LocalTokens];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = i < e.Length ? e[i] : Tokenizer.PadId;
            mask[i] = i < e.Length ? 1 : 0;
        }
        return (ids, mask);
    }

    /// <summary>Features of each prompt, (P, 36, H), laid out as described on the class.
    /// All prompts go through the encoder as one batch.</summary>
    public float[] EncodePrompts(IReadOnlyList<string> prompts)
    {
        int p = prompts.Count, l = ClassTextFeatures.LocalTokens, rows = ClassTextFeatures.Rows, h = PromptWidth;
        var ids = new int[p * l];
        var mask = new int[p * l];
        var full = new int[p][];
        for (int i = 0; i < p; i++)
        {
            var (wi, wm) = Window(prompts[i]);
            wi.CopyTo(ids, i * l);
            wm.CopyTo(mask, i * l);
            full[i] = Tokenizer.Encode(prompts[i], MaxPooledTokens);
        }
        var hidden = p == 0 ? [] : BertEncoder.Forward(_weights, ids, mask, p, l, Tier); // (P, 35, H)
        var result = new float[p * rows * h];
        for (int i = 0; i < p; i++)
        {
            Array.Copy(hidden, i * l * h, result, i * rows * h, l * h);
            if (full[i].Length <= l) MeanPool(hidden.AsSpan(i * l * h, l * h), full[i].Length, result.AsSpan((i * rows + l) * h, h));
        }

        // Prompts longer than the window: pool over the whole prompt in one more padded batch.
        var longOnes = Enumerable.Range(0, p).Where(i => full[i].Length > l).ToArray();
        if (longOnes.Length > 0)
        {
            int ll = longOnes.Max(i => full[i].Length);
            var lid = new int[longOnes.Length * ll];
            var lmask = new int[longOnes.Length * ll];
            for (int k = 0; k < longOnes.Length; k++)
                for (int t = 0; t < ll; t++)
                {
                    var f = full[longOnes[k]];
                    lid[k * ll + t] = t < f.Length ? f[t] : Tokenizer.PadId;
                    lmask[k * ll + t] = t < f.Length ? 1 : 0;
                }
            var lh = BertEncoder.Forward(_weights, lid, lmask, longOnes.Length, ll, Tier);
            for (int k = 0; k < longOnes.Length; k++)
                MeanPool(lh.AsSpan(k * ll * h, ll * h), full[longOnes[k]].Length, result.AsSpan((longOnes[k] * rows + l) * h, h));
        }
        return result;
    }

    // dst (H) = mean over the first `real` rows of hidden (L, H).
    private static void MeanPool(ReadOnlySpan<float> hidden, int real, Span<float> dst)
    {
        int h = dst.Length;
        for (int k = 0; k < h; k++)
        {
            double s = 0;
            for (int t = 0; t < real; t++) s += hidden[t * h + k];
            dst[k] = (float)(s / real);
        }
    }

    /// <summary>Why a prompt fails <see cref="IsEncodable"/>, for messages.</summary>
    public const string NotEncodable = "is empty or has no characters the tokenizer keeps";

    /// <summary>False for a prompt that is blank or holds only what the tokenizer drops (control and format
    /// characters, as BERT's text cleaning does): it would encode to [CLS] [SEP] alone.</summary>
    public bool IsEncodable([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? prompt) => !string.IsNullOrWhiteSpace(prompt) && Tokenizer.WordPieceIds(prompt).Count > 0;

    /// <summary>The (C, 36, 2H) class features: per class [label phrase | description] along channels.</summary>
    /// <param name="names">Class names stored with the features.</param>
    /// <param name="labels">Label phrase per class.</param>
    /// <param name="descriptions">Description per class.</param>
    /// <exception cref="ArgumentException">The three lists differ in length or a prompt is empty.</exception>
    public ClassTextFeatures EncodeClasses(IReadOnlyList<string> names, IReadOnlyList<string> labels, IReadOnlyList<string> descriptions)
    {
        int c = names.Count;
        if (labels.Count != c || descriptions.Count != c)
            throw new ArgumentException($"{c} class names, {labels.Count} label phrases and {descriptions.Count} descriptions: the counts must match");
        for (int i = 0; i < c; i++)
        {
            if (!IsEncodable(labels[i])) throw new ArgumentException($"class {i} ('{names[i]}'): the label phrase {NotEncodable}", nameof(labels));
            if (!IsEncodable(descriptions[i])) throw new ArgumentException($"class {i} ('{names[i]}'): the description {NotEncodable}", nameof(descriptions));
        }
        var prompts = labels.Concat(descriptions).ToList();
        var f = EncodePrompts(prompts); // (2C, 36, H): labels then descriptions
        int rows = ClassTextFeatures.Rows, h = PromptWidth, w = 2 * h;
        var data = new float[c * rows * w];
        for (int i = 0; i < c; i++)
            for (int r = 0; r < rows; r++)
            {
                Array.Copy(f, (i * rows + r) * h, data, (i * rows + r) * w, h);
                Array.Copy(f, ((c + i) * rows + r) * h, data, (i * rows + r) * w + h, h);
            }
        var meta = new Dictionary<string, string>
        {
            ["encoder"] = $"all-MiniLM-L6-v2 ({MiniLm.PackageId} {MiniLm.PackageVersion}), last hidden state",
            ["channels"] = string.Create(CultureInfo.InvariantCulture, $"[label phrase ({h}) | description ({h})]"),
            ["padding"] = "rows past a prompt's tokens hold the encoder outputs at masked [PAD] tokens",
            ["global"] = "mean over the prompt's real tokens incl. [CLS]/[SEP] (up to 256 tokens), not L2-normalised",
        };
        return new ClassTextFeatures(names, data, w, meta);
    }
}
