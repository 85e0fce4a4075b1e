using System.Numerics;
using Tdsm.Cpu;

namespace Tdsm.Text;

/// <summary>Which implementation runs the text encoder.</summary>
public enum TextTier
{
    /// <summary><see cref="BertReference"/>: naive loops, the oracle.</summary>
    Reference,

    /// <summary>The managed CPU tier: shared multi-threaded GEMM, parallel attention and row ops.</summary>
    Cpu,
}

/// <summary>
/// The BERT encoder forward pass (inference only): embeddings + LayerNorm, then per layer
/// self-attention with a padding mask, residual + LayerNorm, erf-GELU feed-forward, residual +
/// LayerNorm. Shapes: B sequences, L tokens, N = B·L rows, H hidden, I intermediate, NH heads of D
/// channels. Token types are all 0 (single-segment prompts).
/// </summary>
public static class BertEncoder
{
    // Rows per chunk: bounds the working set (the (N, I) intermediate) without starving the GEMM.
    private const int MaxRowsPerChunk = 4096;

    /// <summary>Last hidden state (B, L, H) of token ids (B, L) with attention mask (B, L)
    /// (1 = real token, 0 = padding; padding is never attended to, but padded positions still
    /// get outputs, as in Hugging Face and ONNX Runtime).</summary>
    /// <exception cref="ArgumentException">Sizes disagree, an id is outside the vocabulary, the
    /// length exceeds the position table, or a sequence has no real token.</exception>
    public static float[] Forward(BertWeights w, int[] ids, int[] mask, int batch, int length, TextTier tier) => tier switch
    {
        TextTier.Reference => BertReference.Forward(w, ids, mask, batch, length),
        TextTier.Cpu => ForwardCpu(w, ids, mask, batch, length),
        _ => throw new ArgumentOutOfRangeException(nameof(tier), tier, "unknown tier"),
    };

    internal static void Validate(BertConfig c, int[] ids, int[] mask, int batch, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        if (length > c.MaxPositions) throw new ArgumentException($"sequence length {length} exceeds the {c.MaxPositions} positions of the encoder", nameof(length));
        if (ids.Length != batch * length) throw new ArgumentException($"ids hold {ids.Length} values, expected B*L = {batch}*{length}", nameof(ids));
        if (mask.Length != batch * length) throw new ArgumentException($"mask holds {mask.Length} values, expected B*L = {batch}*{length}", nameof(mask));
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)c.VocabSize) throw new ArgumentException($"token id {ids[i]} at ({i / length},{i % length}) is outside the vocabulary of {c.VocabSize}", nameof(ids));
            if (mask[i] is not (0 or 1)) throw new ArgumentException($"mask value {mask[i]} at ({i / length},{i % length}) is not 0 or 1", nameof(mask));
        }
        for (int b = 0; b < batch; b++)
            if (mask.AsSpan(b * length, length).IndexOf(1) < 0) throw new ArgumentException($"sequence {b} has no real token (mask all 0)", nameof(mask));
    }

    private static float[] ForwardCpu(BertWeights w, int[] ids, int[] mask, int batch, int length)
    {
        Validate(w.Config, ids, mask, batch, length);
        int h = w.Config.Hidden;
        var result = new float[batch * length * h];
        int perChunk = Math.Max(1, MaxRowsPerChunk / length);
        var scratch = new Scratch(Math.Min(batch, perChunk) * length, w.Config);
        for (int b0 = 0; b0 < batch; b0 += perChunk)
        {
            int nb = Math.Min(perChunk, batch - b0);
            var x = ForwardChunk(w, ids.AsSpan(b0 * length, nb * length), mask.AsSpan(b0 * length, nb * length).ToArray(), nb, length, scratch);
            Array.Copy(x, 0, result, b0 * length * h, nb * length * h);
        }
        return result;
    }

    private sealed class Scratch(int rows, BertConfig c)
    {
        public readonly float[] X = new float[rows * c.Hidden];        // (N, H) residual stream
        public readonly float[] Qkv = new float[rows * 3 * c.Hidden];  // (N, 3H) q | k | v
        public readonly float[] Ctx = new float[rows * c.Hidden];      // (N, H) attention output
        public readonly float[] Tmp = new float[rows * c.Hidden];      // (N, H) projection output
        public readonly float[] Inter = new float[rows * c.Intermediate]; // (N, I)
    }

    private static float[] ForwardChunk(BertWeights w, ReadOnlySpan<int> ids, int[] mask, int batch, int length, Scratch s)
    {
        var c = w.Config;
        int h = c.Hidden, inter = c.Intermediate, n = batch * length;
        float eps = (float)c.LayerNormEps;
        float[] x = s.X, qkv = s.Qkv, ctx = s.Ctx, tmp = s.Tmp, mid = s.Inter;
        int[] idArr = ids.ToArray();

        // Embeddings: word + position + type 0, then LayerNorm.
        Parallel.For(0, n, r =>
        {
            var row = x.AsSpan(r * h, h);
            var word = w.WordEmb.AsSpan(idArr[r] * h, h);
            var pos = w.PosEmb.AsSpan(r % length * h, h);
            for (int k = 0; k < h; k++) row[k] = word[k] + pos[k] + w.TypeEmb[k];
            LayerNormRow(row, row, w.EmbLnG, w.EmbLnB, eps);
        });

        foreach (var lw in w.Layers)
        {
            Gemm.MatMulABt(x, 0, lw.Wqkv, 0, qkv, 0, n, 3 * h, h, accumulate: false);
            AddBiasRows(qkv, n, 3 * h, lw.Bqkv);
            Attention(qkv, ctx, mask, batch, length, c.Heads, h);

            Gemm.MatMulABt(ctx, 0, lw.Wo, 0, tmp, 0, n, h, h, accumulate: false);
            BiasResidualLayerNorm(tmp, x, n, h, lw.Bo, lw.Ln1G, lw.Ln1B, eps);

            Gemm.MatMulABt(x, 0, lw.Wi, 0, mid, 0, n, inter, h, accumulate: false);
            Parallel.For(0, n, r =>
            {
                var row = mid.AsSpan(r * inter, inter);
                for (int k = 0; k < inter; k++) row[k] = (float)Gelu.Forward(row[k] + lw.Bi[k]);
            });

            Gemm.MatMulABt(mid, 0, lw.Wf, 0, tmp, 0, n, h, inter, accumulate: false);
            BiasResidualLayerNorm(tmp, x, n, h, lw.Bf, lw.Ln2G, lw.Ln2B, eps);
        }
        return x;
    }

    private static void AddBiasRows(float[] y, int n, int width, float[] bias) =>
        Parallel.For(0, n, r => TensorAdd(y.AsSpan(r * width, width), bias));

    private static void TensorAdd(Span<float> y, ReadOnlySpan<float> b)
    {
        int i = 0, wv = Vector<float>.Count;
        for (; i <= y.Length - wv; i += wv) (new Vector<float>(y[i..]) + new Vector<float>(b[i..])).CopyTo(y[i..]);
        for (; i < y.Length; i++) y[i] += b[i];
    }

    // x (N, H) = LayerNorm(proj + bias + x), row by row.
    private static void BiasResidualLayerNorm(float[] proj, float[] x, int n, int h, float[] bias, float[] g, float[] b, float eps) =>
        Parallel.For(0, n, r =>
        {
            var p = proj.AsSpan(r * h, h);
            var xr = x.AsSpan(r * h, h);
            for (int k = 0; k < h; k++) p[k] += bias[k] + xr[k];
            LayerNormRow(p, xr, g, b, eps);
        });

    private static void LayerNormRow(ReadOnlySpan<float> src, Span<float> dst, float[] g, float[] b, float eps)
    {
        int h = src.Length;
        double mean = 0, var = 0;
        for (int k = 0; k < h; k++) mean += src[k];
        mean /= h;
        for (int k = 0; k < h; k++) { double d = src[k] - mean; var += d * d; }
        float inv = (float)(1.0 / Math.Sqrt(var / h + eps));
        float m = (float)mean;
        for (int k = 0; k < h; k++) dst[k] = (src[k] - m) * inv * g[k] + b[k];
    }

    // qkv (N, 3H) -> ctx (N, H); one task per (sequence, head); padded keys get zero weight.
    private static void Attention(float[] qkv, float[] ctx, int[] mask, int batch, int length, int heads, int h)
    {
        int d = h / heads, w3 = 3 * h;
        float scale = 1f / MathF.Sqrt(d);
        Parallel.For(0, batch * heads, () => new float[length], (task, _, p) =>
        {
            int b = task / heads, hd = task % heads;
            int rowBase = b * length;
            for (int i = 0; i < length; i++)
            {
                var q = qkv.AsSpan((rowBase + i) * w3 + hd * d, d);
                float max = float.NegativeInfinity;
                for (int j = 0; j < length; j++)
                {
                    if (mask[rowBase + j] == 0) continue;
                    var k = qkv.AsSpan((rowBase + j) * w3 + h + hd * d, d);
                    p[j] = Dot(q, k) * scale;
                    max = Math.Max(max, p[j]);
                }
                float sum = 0;
                for (int j = 0; j < length; j++)
                {
                    p[j] = mask[rowBase + j] == 0 ? 0f : MathF.Exp(p[j] - max);
                    sum += p[j];
                }
                var o = ctx.AsSpan((rowBase + i) * h + hd * d, d);
                o.Clear();
                float inv = 1f / sum;
                for (int j = 0; j < length; j++)
                {
                    if (p[j] == 0f) continue;
                    var v = qkv.AsSpan((rowBase + j) * w3 + 2 * h + hd * d, d);
                    float pj = p[j] * inv;
                    for (int e = 0; e < d; e++) o[e] += pj * v[e];
                }
            }
            return p;
        }, _ => { });
    }

    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var acc = Vector<float>.Zero;
        int i = 0, wv = Vector<float>.Count;
        for (; i <= a.Length - wv; i += wv) acc += new Vector<float>(a[i..]) * new Vector<float>(b[i..]);
        float s = Vector.Sum(acc);
        for (; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
