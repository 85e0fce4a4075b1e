using System.Collections.Concurrent;
using Tdsm.Formats;
using Tdsm.Model;
using Tdsm.Tensors;
using Tdsm.Text;
using Tdsm.Training;

namespace Tdsm.Inference;

/// <summary>
/// Zero-shot skeleton action recognition with a trained TDSM model, on the managed CPU path (no
/// native code, no package dependencies). Load a bundle (<see cref="Load"/>), describe the
/// candidate actions in words (<see cref="CreateCandidates(IReadOnlyList{ActionClass})"/>), then
/// classify skeleton features or sequences. One loaded recognizer serves any number of concurrent
/// callers; every method is thread-safe.
/// </summary>
/// <example>
/// <code>
/// var recognizer = ActionRecognizer.Load("bundle");
/// var classes = recognizer.CreateCandidates([new("wave", "a person waves a hand"), new("sit down", "a person sits down on a chair")]);
/// Prediction p = recognizer.Classify(feature, classes);
/// Console.WriteLine(p.Label);
/// </code>
/// </example>
public sealed class ActionRecognizer
{
    /// <summary>The bundle's DiT checkpoint (parameters, "config" metadata, test_noise).</summary>
    public const string ModelFileName = Checkpoint.ModelFile;

    /// <summary>The bundle's optional MiniLM text-encoder cache folder (minilm.safetensors + vocab.txt).</summary>
    public const string TextEncoderFolder = "minilm";

    /// <summary>The bundle's optional ST-GCN skeleton encoder (<see cref="StGcn.StGcnCheckpoint"/> format).</summary>
    public const string EncoderFileName = "encoder.safetensors";

    /// <summary>The bundle's optional precomputed class features (see <see cref="ClassTextFeatures"/>).</summary>
    public const string ClassFeaturesFileName = "classes.safetensors";

    private readonly InferenceDiT _model;
    private readonly ClassPromptEncoder? _text;
    private readonly object _textLock = new();
    private readonly ConcurrentDictionary<ActionClass, float[]> _textCache = new();

    /// <summary>The DiT's shape.</summary>
    public DiTConfig Config => _model.Config;

    /// <summary>C_in: the width of a skeleton feature.</summary>
    public int FeatureSize => _model.Config.InChannels;

    /// <summary>Number of fixed test noises each candidate is scored with.</summary>
    public int NoiseCount => _model.Noises;

    /// <summary>True when class names can be encoded (the bundle has the MiniLM text encoder).</summary>
    public bool CanEncodeText => _text is not null;

    /// <summary>True when skeleton sequences can be classified (the bundle has a skeleton encoder).</summary>
    public bool CanEncodeSkeletons => SkeletonEncoder is not null;

    /// <summary>The bundle's own candidate set (from <see cref="ClassFeaturesFileName"/>), if it has one.</summary>
    public CandidateSet? BundledCandidates { get; private set; }

    internal ISkeletonEncoder? SkeletonEncoder { get; set; }

    private ActionRecognizer(InferenceDiT model, ClassPromptEncoder? text)
    {
        _model = model;
        _text = text;
    }

    /// <summary>
    /// Builds a recognizer from parameters in memory.
    /// </summary>
    /// <param name="config">The DiT shape.</param>
    /// <param name="parameters">All parameters in the official order (<see cref="DiT.BuildLayout"/>).</param>
    /// <param name="testNoise">The fixed test noises (J, C_in), J ≥ 1.</param>
    /// <param name="textEncoder">Optional text encoder for <see cref="CreateCandidates(IReadOnlyList{ActionClass})"/>.</param>
    /// <exception cref="ArgumentException">The sizes disagree with the config, or a parameter or noise is not finite.</exception>
    public static ActionRecognizer FromParameters(DiTConfig config, float[] parameters, float[] testNoise, ClassPromptEncoder? textEncoder = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(testNoise);
        return new ActionRecognizer(new InferenceDiT(config, parameters, testNoise), textEncoder);
    }

    /// <summary>Loads a DiT checkpoint written by the trainer (<see cref="Checkpoint.SaveModel"/>).</summary>
    /// <param name="modelPath">The model.safetensors file.</param>
    /// <param name="textEncoder">Optional text encoder.</param>
    /// <exception cref="TensorFormatException">The file is unreadable, has an unknown dtype, lacks the
    /// config or test_noise, or a tensor disagrees with its config.</exception>
    public static ActionRecognizer FromCheckpoint(string modelPath, ClassPromptEncoder? textEncoder = null)
    {
        var (cfg, flat, noise) = Checkpoint.LoadModel(modelPath);
        if (noise is null) throw new TensorFormatException(modelPath, "no 'test_noise' tensor: the fixed test noises (J, C_in) are needed for zero-shot scoring");
        return new ActionRecognizer(new InferenceDiT(cfg, flat, noise), textEncoder);
    }

    /// <summary>
    /// Loads a bundle folder: <c>model.safetensors</c> (required), <c>encoder.safetensors</c>
    /// (optional ST-GCN encoder, enables skeleton sequences), <c>minilm/</c> (optional MiniLM
    /// cache, enables class names in words) and <c>classes.safetensors</c> (optional precomputed
    /// class features, becomes <see cref="BundledCandidates"/>).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder has no model.safetensors.</exception>
    /// <exception cref="TensorFormatException">A file is malformed or disagrees with the model's config.</exception>
    /// <exception cref="TextModelException">The text-encoder cache is damaged.</exception>
    public static ActionRecognizer Load(string bundleDirectory)
    {
        if (!Directory.Exists(bundleDirectory)) throw new DirectoryNotFoundException($"{bundleDirectory}: bundle folder not found");
        string model = Path.Combine(bundleDirectory, ModelFileName);
        if (!File.Exists(model)) throw new FileNotFoundException($"{model}: the bundle has no {ModelFileName} (the trained DiT checkpoint)", model);
        string textDir = Path.Combine(bundleDirectory, TextEncoderFolder);
        var text = Directory.Exists(textDir) ? ClassPromptEncoder.FromCache(textDir) : null;
        var r = FromCheckpoint(model, text);
        string encoder = Path.Combine(bundleDirectory, EncoderFileName);
        if (File.Exists(encoder))
        {
            var enc = StGcnSkeletonEncoder.Load(encoder);
            if (enc.FeatureSize != r.FeatureSize) throw new TensorFormatException(encoder, $"the encoder writes {enc.FeatureSize}-wide features, the DiT's in_channels is {r.FeatureSize}");
            r.SkeletonEncoder = enc;
        }
        string classes = Path.Combine(bundleDirectory, ClassFeaturesFileName);
        if (File.Exists(classes))
        {
            var f = ClassTextFeatures.Load(classes);
            if (f.Width != r.Config.CondSize) throw new TensorFormatException(classes, $"class features are {f.Width} wide, the model's cond_size is {r.Config.CondSize}");
            r.BundledCandidates = r.CreateCandidates(f);
        }
        return r;
    }

    /// <summary>
    /// Prepares candidates from labels and descriptions: each (label, description) pair is encoded
    /// by MiniLM once (and cached for later sets), then the per-class DiT constants are computed.
    /// </summary>
    /// <exception cref="InvalidOperationException">No text encoder was loaded.</exception>
    /// <exception cref="ArgumentException">The list is empty, a label or description is blank (or has nothing the
    /// tokenizer keeps), or two candidates share a label.</exception>
    public CandidateSet CreateCandidates(IReadOnlyList<ActionClass> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (_text is null) throw new InvalidOperationException($"no text encoder: load a bundle with a '{TextEncoderFolder}' folder, or pass precomputed class features");
        if (classes.Count == 0) throw new ArgumentException("no candidate classes", nameof(classes));
        int w = 2 * _text.PromptWidth;
        if (w != Config.CondSize) throw new InvalidOperationException($"the text encoder writes {w}-wide class features, the model's cond_size is {Config.CondSize}");
        int rows = ClassTextFeatures.Rows;
        var data = new float[classes.Count * rows * w];
        var labels = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < classes.Count; i++)
        {
            var c = classes[i] ?? throw new ArgumentException($"candidate {i} is null", nameof(classes));
            // Two candidates with one label could not be told apart in the ranking.
            if (!labels.TryAdd(c.Label ?? "", i)) throw new ArgumentException($"candidates {labels[c.Label ?? ""]} and {i} are both labelled '{c.Label}'", nameof(classes));
            if (!_textCache.TryGetValue(c, out var f))
            {
                if (!_text.IsEncodable(c.Label)) throw new ArgumentException($"candidate {i} ('{c.Label}'): the label {ClassPromptEncoder.NotEncodable}", nameof(classes));
                if (!_text.IsEncodable(c.Description)) throw new ArgumentException($"candidate {i} ('{c.Label}'): the description {ClassPromptEncoder.NotEncodable}", nameof(classes));
                lock (_textLock) f = _text.EncodeClasses([c.Label], [c.Label], [c.Description]).Data;
                _textCache.TryAdd(c, f);
            }
            f.CopyTo(data, i * rows * w);
        }
        return CreateCandidates(new ClassTextFeatures(classes.Select(c => c.Label).ToArray(), data, w));
    }

    /// <summary>Prepares candidates from precomputed class features (classes, 36, cond_size).</summary>
    /// <exception cref="ArgumentException">The features are empty or not cond_size wide.</exception>
    public CandidateSet CreateCandidates(ClassTextFeatures features)
    {
        ArgumentNullException.ThrowIfNull(features);
        int k = features.Count, cond = Config.CondSize, l = Config.LocalTokens;
        if (k == 0) throw new ArgumentException("no candidate classes", nameof(features));
        if (features.Width != cond) throw new ArgumentException($"class features are {features.Width} wide, the model's cond_size is {cond}", nameof(features));
        if (ClassTextFeatures.LocalTokens != l) throw new ArgumentException($"class features have {ClassTextFeatures.LocalTokens} local tokens, the model has {l}", nameof(features));
        var zg = new float[k * cond];
        var zl = new float[k * l * cond];
        for (int i = 0; i < k; i++)
        {
            features.Global(i).CopyTo(zg.AsSpan(i * cond));
            features.Local(i).CopyTo(zl.AsSpan(i * l * cond));
        }
        return new CandidateSet(this, features.Names, _model.Precompute(zg, zl, k));
    }

    /// <summary>
    /// Classifies one skeleton feature (C_in values) and writes every candidate, best first, into
    /// <paramref name="ranked"/>. Allocates nothing once the candidate set has served a call.
    /// </summary>
    /// <returns>The number of entries written (the candidate count).</returns>
    /// <exception cref="ArgumentException">Wrong feature length, a non-finite value, values so large that the scores
    /// overflow, a too-short <paramref name="ranked"/>, or candidates prepared by another recognizer.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> was signalled.</exception>
    public int Classify(ReadOnlySpan<float> feature, CandidateSet candidates, Span<ClassScore> ranked, CancellationToken cancel = default)
    {
        Check(feature, candidates);
        int k = candidates.Count;
        if (ranked.Length < k) throw new ArgumentException($"ranked has room for {ranked.Length} results, the candidate set has {k}", nameof(ranked));
        var w = candidates.Rent();
        try
        {
            _model.Score(feature, candidates.Constants, w, w.Errors, cancel);
            for (int i = 0; i < k; i++)
                if (!double.IsFinite(w.Errors[i]))
                    throw new ArgumentException($"the denoising error of candidate {i} ('{candidates.Labels[i]}') is {w.Errors[i]}: the feature (largest magnitude {MaxAbs(feature):G3}) or this candidate's text features overflow the model", nameof(feature));
            // Insertion sort by (error, index): K is small and this allocates nothing.
            var order = w.Order;
            for (int i = 0; i < k; i++)
            {
                int j = i;
                while (j > 0 && w.Errors[order[j - 1]] > w.Errors[i]) { order[j] = order[j - 1]; j--; }
                order[j] = i;
            }
            for (int i = 0; i < k; i++) ranked[i] = new ClassScore(candidates.Labels[order[i]], order[i], w.Errors[order[i]]);
        }
        finally { candidates.Return(w); }
        return k;
    }

    /// <summary>Classifies one skeleton feature (C_in values).</summary>
    /// <exception cref="ArgumentException">Wrong feature length, a non-finite value, or candidates prepared by another recognizer.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> was signalled.</exception>
    public Prediction Classify(ReadOnlySpan<float> feature, CandidateSet candidates, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        var ranked = new ClassScore[candidates.Count];
        Classify(feature, candidates, ranked, cancel);
        return new Prediction(ranked);
    }

    /// <summary>Classifies one skeleton sequence (encoded by the bundle's skeleton encoder).</summary>
    /// <exception cref="InvalidOperationException">The recognizer has no skeleton encoder.</exception>
    public Prediction Classify(SkeletonSequence sequence, CandidateSet candidates, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        var enc = SkeletonEncoder ?? throw new InvalidOperationException($"this recognizer has no skeleton encoder (a bundle's {EncoderFileName}); classify precomputed skeleton features (float[C_in]) instead");
        if (enc.FeatureSize != FeatureSize) throw new InvalidOperationException($"the skeleton encoder writes {enc.FeatureSize} features, the model expects {FeatureSize}");
        var feature = new float[FeatureSize];
        enc.Encode(sequence, feature);
        return Classify(feature, candidates, cancel);
    }

    /// <summary>Classifies a batch of skeleton features, in order, reporting progress after each.</summary>
    /// <exception cref="ArgumentException">A feature is malformed (the message gives its index).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> was signalled.</exception>
    public IReadOnlyList<Prediction> ClassifyBatch(IReadOnlyList<float[]> features, CandidateSet candidates, IProgress<BatchProgress>? progress = null,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(candidates);
        cancel.ThrowIfCancellationRequested();
        return Batch(features.Count, i => Classify(features[i] ?? throw new ArgumentException("the feature is null", nameof(features)), candidates, cancel), progress, cancel);
    }

    /// <summary>Classifies a batch of skeleton sequences, in order, reporting progress after each.</summary>
    /// <exception cref="InvalidOperationException">The recognizer has no skeleton encoder.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> was signalled.</exception>
    public IReadOnlyList<Prediction> ClassifyBatch(IReadOnlyList<SkeletonSequence> sequences, CandidateSet candidates, IProgress<BatchProgress>? progress = null,
        CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(candidates);
        cancel.ThrowIfCancellationRequested();
        return Batch(sequences.Count, i => Classify(sequences[i] ?? throw new ArgumentException("the sequence is null", nameof(sequences)), candidates, cancel), progress, cancel);
    }

    private static Prediction[] Batch(int n, Func<int, Prediction> one, IProgress<BatchProgress>? progress, CancellationToken cancel)
    {
        var result = new Prediction[n];
        for (int i = 0; i < n; i++)
        {
            cancel.ThrowIfCancellationRequested();
            try { result[i] = one(i); }
            catch (ArgumentException e) { throw new ArgumentException($"batch item {i}: {e.Message}", e); }
            progress?.Report(new BatchProgress(i + 1, n));
        }
        return result;
    }

    private static float MaxAbs(ReadOnlySpan<float> x)
    {
        float m = 0;
        foreach (float v in x) m = Math.Max(m, Math.Abs(v));
        return m;
    }

    private void Check(ReadOnlySpan<float> feature, CandidateSet candidates)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        if (!ReferenceEquals(candidates.Owner, this)) throw new ArgumentException("the candidate set was prepared by another recognizer", nameof(candidates));
        if (feature.Length != FeatureSize) throw new ArgumentException($"skeleton feature has {feature.Length} values, the model expects {FeatureSize} (C_in)", nameof(feature));
        if (Finite.IndexOfNonFinite(feature) is var i and >= 0) throw new ArgumentException($"skeleton feature value {i} is {feature[i]}", nameof(feature));
    }
}
