using Tdsm.Formats;
using Tdsm.Text;

namespace Tdsm.Tests.Text;

/// <summary>The (C, 36, D) class features: the TDSM layout built from prompts, and file round trips.</summary>
public class ClassTextFeaturesTests
{
    private string _dir = "";

    [SetUp] public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "tdsm-ctf-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static ClassTextFeatures Random(int classes, int width, int seed)
    {
        var rng = new Random(seed);
        var data = new float[classes * ClassTextFeatures.Rows * width];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        return new ClassTextFeatures(Enumerable.Range(0, classes).Select(i => $"action {i}, \"quoted\"/slash").ToArray(), data, width);
    }

    [Test]
    public void LayoutIsLabelThenDescriptionWithPooledGlobalRow()
    {
        var enc = new ClassPromptEncoder(TextFixture.Weights, TextFixture.Tokenizer);
        string[] names = ["drink water", "eat meal/snack"];
        string[] labels = ["drink water", "eat meal/snack"];
        string[] desc =
        [
            "\"Drink water\" refers to the act of taking in water by mouth to hydrate or quench thirst as a human action.",
            // Longer than 35 tokens: its global row is pooled over the whole prompt.
            "\"Eat meal/snack\" is consuming food for sustenance, nourishment, or pleasure, sitting at a table with a plate, a fork, a knife and a glass of water, slowly, one bite after another, until the plate is empty.",
        ];
        Assert.That(TextFixture.Tokenizer.Encode(desc[1]).Length, Is.GreaterThan(35));
        var f = enc.EncodeClasses(names, labels, desc);
        Assert.That((f.Count, f.Width), Is.EqualTo((2, 768)));
        Assert.That(f.Names, Is.EqualTo(names));

        // Independent construction from the raw encoder: window of 35 (padded), mean over real tokens.
        var w = TextFixture.Weights;
        var tok = TextFixture.Tokenizer;
        for (int c = 0; c < 2; c++)
            for (int half = 0; half < 2; half++)
            {
                string prompt = half == 0 ? labels[c] : desc[c];
                // The window as the spec builds it: the first 35 tokens ([CLS] ... [SEP]), padded with [PAD], masked to the real ones.
                var head = tok.Encode(prompt, 35);
                int[] ids = Enumerable.Range(0, 35).Select(i => i < head.Length ? head[i] : tok.PadId).ToArray();
                int[] mask = Enumerable.Range(0, 35).Select(i => i < head.Length ? 1 : 0).ToArray();
                var hidden = BertEncoder.Forward(w, ids, mask, 1, 35, TextTier.Reference); // (35, 384)
                var full = tok.Encode(prompt, 256);
                var fullHidden = BertEncoder.Forward(w, full, Enumerable.Repeat(1, full.Length).ToArray(), 1, full.Length, TextTier.Reference);
                for (int r = 0; r < 36; r++)
                    for (int k = 0; k < 384; k++)
                    {
                        float got = f.Data[(c * 36 + r) * 768 + half * 384 + k];
                        double want = r < 35 ? hidden[r * 384 + k] : Enumerable.Range(0, full.Length).Average(t => fullHidden[t * 384 + k]);
                        Assert.That(got, Is.EqualTo(want).Within(1e-4 + 1e-4 * Math.Abs(want)), $"class {c} {(half == 0 ? "label" : "description")} row {r} channel {k}");
                    }
            }
    }

    [Test]
    public void SafetensorsRoundTripKeepsNamesAndMetadata()
    {
        var f = Random(3, 768, 1);
        var path = Path.Combine(_dir, "t.safetensors");
        f.Save(path);
        var g = ClassTextFeatures.Load(path);
        Assert.That(g.Names, Is.EqualTo(f.Names));
        Assert.That(g.Data, Is.EqualTo(f.Data));
        Assert.That(g.Width, Is.EqualTo(768));
        Assert.That(g.Global(2).ToArray(), Is.EqualTo(f.Data.AsSpan((2 * 36 + 35) * 768, 768).ToArray()));
    }

    [Test]
    public void NpyRoundTripTakesNamesFromTheCaller()
    {
        var f = Random(4, 96, 2);
        var path = Path.Combine(_dir, "t.npy");
        f.Save(path);
        var g = ClassTextFeatures.Load(path, f.Names);
        Assert.That(g.Names, Is.EqualTo(f.Names));
        Assert.That(g.Data, Is.EqualTo(f.Data));
        Assert.That(ClassTextFeatures.Load(path).Names[3], Is.EqualTo("class_3"));
    }

    [Test]
    public void LoadsPrecomputedFeaturesOfAnyWidthAndDtype()
    {
        // E.g. CLIP features written by Python: one float16 tensor under another name, D = 2048.
        var rng = new Random(3);
        var vals = Enumerable.Range(0, 2 * 36 * 2048).Select(_ => Math.Round(rng.NextDouble() * 8 - 4, 2)).ToArray();
        var path = Path.Combine(_dir, "clip.safetensors");
        SafeTensorsFile.Write(path, [SafeTensor.FromFloat64("clip_text", DType.F16, [2, 36, 2048], vals)]);
        var g = ClassTextFeatures.Load(path, ["a", "b"]);
        Assert.That((g.Count, g.Width), Is.EqualTo((2, 2048)));
        Assert.That(g.Data.Length, Is.EqualTo(vals.Length));
        for (int i = 0; i < vals.Length; i++) // float16 keeps ~3 decimal digits at |x| <= 4
            if (!(Math.Abs(g.Data[i] - vals[i]) <= 4e-3)) Assert.Fail($"value {i}: {g.Data[i]} vs {vals[i]}");
    }

    [Test]
    public void BadFilesGiveClearErrors()
    {
        var path = Path.Combine(_dir, "bad.safetensors");
        SafeTensorsFile.Write(path, [SafeTensor.FromFloat32("x", [2, 35, 8], new float[2 * 35 * 8])]);
        var e = Assert.Throws<TensorFormatException>(() => ClassTextFeatures.Load(path));
        Assert.That(e!.Message, Does.Contain(path).And.Contain("[2,35,8]").And.Contain("(classes, 36, width)"));

        var two = Path.Combine(_dir, "two.safetensors");
        SafeTensorsFile.Write(two, [SafeTensor.FromFloat32("a", [1, 36, 2], new float[72]), SafeTensor.FromFloat32("b", [1, 36, 2], new float[72])]);
        Assert.That(Assert.Throws<TensorFormatException>(() => ClassTextFeatures.Load(two))!.Message, Does.Contain("text_features"));

        var npy = Path.Combine(_dir, "n.npy");
        Npy.Write(npy, [2, 36, 4], new float[2 * 36 * 4]);
        Assert.That(Assert.Throws<TensorFormatException>(() => ClassTextFeatures.Load(npy, ["only one"]))!.Message, Does.Contain("1 class names for 2 classes"));
        Assert.Throws<ArgumentException>(() => Random(1, 4, 0).Save(Path.Combine(_dir, "x.bin")));

        // No classes, or a class without a name.
        var none = Path.Combine(_dir, "none.safetensors");
        SafeTensorsFile.Write(none, [SafeTensor.FromFloat32("text_features", [0, 36, 4], [])]);
        Assert.That(Assert.Throws<TensorFormatException>(() => ClassTextFeatures.Load(none))!.Message, Does.Contain("at least one class"));
        var nul = Path.Combine(_dir, "null.safetensors");
        SafeTensorsFile.Write(nul, [SafeTensor.FromFloat32("text_features", [2, 36, 1], new float[72])], new Dictionary<string, string> { ["class_names"] = "[\"a\", null]" });
        Assert.That(Assert.Throws<TensorFormatException>(() => ClassTextFeatures.Load(nul))!.Message, Does.Contain("'class_names' is not a JSON array of strings"));
        Assert.That(Assert.Throws<ArgumentException>(() => new ClassTextFeatures(["a", null!], new float[72], 1))!.Message, Does.Contain("class 1 has no name"));
    }
}
