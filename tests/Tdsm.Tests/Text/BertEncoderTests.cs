using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tdsm.Text;

namespace Tdsm.Tests.Text;

/// <summary>
/// The forward pass against ONNX Runtime (test-only oracle) running the package's own model.onnx,
/// on class prompts padded/truncated to the 35-token window exactly as the features use them.
/// Tolerance: per prompt, max |ours - ORT| over the (35, 384) block <= 1e-4 * max |ORT|.
/// </summary>
public class BertEncoderTests
{
    private const double RelTol = 1e-4;
    private static readonly Lazy<InferenceSession> Session = new(() => new InferenceSession(MiniLm.ReadOnnx(TextFixture.PackageDll)));

    // A handful of NTU-120 prompts: short and long labels, descriptions with '/', quotes, and the longest (truncated) one.
    private static List<string> Prompts()
    {
        var dir = TestPaths.Shared("data/class_lists");
        var labels = File.ReadAllLines(Path.Combine(dir, "ntu120.csv")).Skip(1).Select(l => l[(l.IndexOf(',', StringComparison.Ordinal) + 1)..]).ToList();
        var desc = File.ReadAllLines(Path.Combine(dir, "ntu120_llm.txt")).Where(l => l.Trim().Length > 0).ToList();
        var longest = desc.OrderByDescending(d => TextFixture.Tokenizer.Encode(d).Length).First();
        return [labels[0], labels[4], labels[81], labels[119], desc[0], desc[1], desc[5], longest];
    }

    private static (int[] Ids, int[] Mask) Batch(IReadOnlyList<string> prompts)
    {
        var enc = new ClassPromptEncoder(TextFixture.Weights, TextFixture.Tokenizer);
        int l = ClassTextFeatures.LocalTokens;
        var ids = new int[prompts.Count * l];
        var mask = new int[prompts.Count * l];
        for (int i = 0; i < prompts.Count; i++)
        {
            var (wi, wm) = enc.Window(prompts[i]);
            wi.CopyTo(ids, i * l);
            wm.CopyTo(mask, i * l);
        }
        return (ids, mask);
    }

    private static float[] RunOrt(int[] ids, int[] mask, int batch, int length)
    {
        int[] dims = [batch, length];
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask.Select(i => (long)i).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[ids.Length], dims)),
        };
        using var results = Session.Value.Run(inputs);
        return [.. results.First(r => r.Name == "last_hidden_state").AsEnumerable<float>()];
    }

    // Worst per-prompt relative error: max |a - b| / max |b| over each prompt's (L, H) block.
    private static double WorstRelative(float[] ours, float[] oracle, int batch)
    {
        int block = oracle.Length / batch;
        double worst = 0;
        for (int b = 0; b < batch; b++)
        {
            double maxDiff = 0, maxRef = 0;
            for (int i = b * block; i < (b + 1) * block; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(ours[i] - oracle[i]));
                maxRef = Math.Max(maxRef, Math.Abs(oracle[i]));
            }
            worst = Math.Max(worst, maxDiff / maxRef);
        }
        return worst;
    }

    [Test]
    public void CpuTierMatchesOnnxRuntimeOnClassPrompts()
    {
        var prompts = Prompts();
        var (ids, mask) = Batch(prompts);
        int l = ClassTextFeatures.LocalTokens;
        Assert.That(mask.Count(m => m == 0), Is.GreaterThan(0), "some prompts are padded");
        Assert.That(TextFixture.Tokenizer.Encode(prompts[^1]).Length, Is.GreaterThan(l), "the longest description is truncated");
        var ort = RunOrt(ids, mask, prompts.Count, l);
        var ours = BertEncoder.Forward(TextFixture.Weights, ids, mask, prompts.Count, l, TextTier.Cpu);
        double rel = WorstRelative(ours, ort, prompts.Count);
        TestContext.Out.WriteLine($"CPU tier vs ONNX Runtime, {prompts.Count} prompts x {l} tokens: worst per-prompt relative error {rel:E2}, max abs {ours.Zip(ort, (a, b) => Math.Abs(a - b)).Max():E2}");
        Assert.That(rel, Is.Not.NaN.And.LessThanOrEqualTo(RelTol));
    }

    [Test, Explicit("all 240 NTU-120 prompts (~10 s); the CI test above takes a handful")]
    public void CpuTierMatchesOnnxRuntimeOnAllNtu120Prompts()
    {
        var dir = TestPaths.Shared("data/class_lists");
        var prompts = File.ReadAllLines(Path.Combine(dir, "ntu120.csv")).Skip(1).Select(l => l[(l.IndexOf(',', StringComparison.Ordinal) + 1)..])
            .Concat(File.ReadAllLines(Path.Combine(dir, "ntu120_llm.txt")).Where(l => l.Trim().Length > 0)).ToList();
        Assert.That(prompts, Has.Count.EqualTo(240));
        var (ids, mask) = Batch(prompts);
        int l = ClassTextFeatures.LocalTokens;
        var ort = RunOrt(ids, mask, prompts.Count, l);
        var ours = BertEncoder.Forward(TextFixture.Weights, ids, mask, prompts.Count, l, TextTier.Cpu);
        double rel = WorstRelative(ours, ort, prompts.Count);
        TestContext.Out.WriteLine($"CPU tier vs ONNX Runtime, all {prompts.Count} NTU-120 prompts x {l} tokens: worst per-prompt relative error {rel:E2}, max abs {ours.Zip(ort, (a, b) => Math.Abs(a - b)).Max():E2}");
        Assert.That(rel, Is.Not.NaN.And.LessThanOrEqualTo(RelTol));
    }

    [Test]
    public void ReferenceTierMatchesOnnxRuntime()
    {
        var prompts = Prompts().Take(2).ToList();
        var (ids, mask) = Batch(prompts);
        int l = ClassTextFeatures.LocalTokens;
        var ort = RunOrt(ids, mask, prompts.Count, l);
        var ours = BertEncoder.Forward(TextFixture.Weights, ids, mask, prompts.Count, l, TextTier.Reference);
        double rel = WorstRelative(ours, ort, prompts.Count);
        TestContext.Out.WriteLine($"reference tier vs ONNX Runtime, {prompts.Count} prompts x {l} tokens: worst per-prompt relative error {rel:E2}");
        Assert.That(rel, Is.Not.NaN.And.LessThanOrEqualTo(RelTol));
    }

    [Test]
    public void CpuTierMatchesReferenceOnRandomTokensAndOddSizes()
    {
        // Odd batch and length (not multiples of the GEMM tile or SIMD width), varied padding.
        const int b = 3, l = 13;
        var rng = new Random(7);
        var ids = new int[b * l];
        var mask = new int[b * l];
        int[] real = [13, 6, 1];
        for (int s = 0; s < b; s++)
            for (int t = 0; t < l; t++)
            {
                ids[s * l + t] = t == 0 ? TextFixture.Tokenizer.ClsId : t < real[s] ? rng.Next(1000, 30000) : TextFixture.Tokenizer.PadId;
                mask[s * l + t] = t < real[s] ? 1 : 0;
            }
        var cpu = BertEncoder.Forward(TextFixture.Weights, ids, mask, b, l, TextTier.Cpu);
        var reference = BertEncoder.Forward(TextFixture.Weights, ids, mask, b, l, TextTier.Reference);
        Assert.That(WorstRelative(cpu, reference, b), Is.Not.NaN.And.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void PaddingDoesNotChangeTheRealTokens()
    {
        var tok = TextFixture.Tokenizer;
        var e = tok.Encode("drink water");
        int l = e.Length;
        var alone = BertEncoder.Forward(TextFixture.Weights, e, Enumerable.Repeat(1, l).ToArray(), 1, l, TextTier.Cpu);
        var padded = e.Concat(Enumerable.Repeat(tok.PadId, 9)).ToArray();
        var pm = Enumerable.Range(0, padded.Length).Select(i => i < l ? 1 : 0).ToArray();
        var withPad = BertEncoder.Forward(TextFixture.Weights, padded, pm, 1, padded.Length, TextTier.Cpu);
        Assert.That(WorstRelative(withPad.Take(alone.Length).ToArray(), alone, 1), Is.Not.NaN.And.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void BadInputsAreRejectedWithTheirPosition()
    {
        var w = TextFixture.Weights;
        var e = Assert.Throws<ArgumentException>(() => BertEncoder.Forward(w, [101, 40000], [1, 1], 1, 2, TextTier.Cpu));
        Assert.That(e!.Message, Does.Contain("40000").And.Contain("(0,1)"));
        var e2 = Assert.Throws<ArgumentException>(() => BertEncoder.Forward(w, [101, 102], [0, 0], 1, 2, TextTier.Cpu));
        Assert.That(e2!.Message, Does.Contain("no real token"));
        Assert.Throws<ArgumentException>(() => BertEncoder.Forward(w, new int[513], new int[513], 1, 513, TextTier.Cpu));
    }
}
