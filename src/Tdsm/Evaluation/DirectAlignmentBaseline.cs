using Tdsm.Cpu;
using Tdsm.Tensors;

namespace Tdsm.Evaluation;

/// <summary>
/// Settings of the direct-alignment baseline. <see cref="Temperature"/> τ divides the cosine
/// similarities (logits = cos / τ); with <see cref="LearnTemperature"/> log(1/τ) is trained too
/// (CLIP style, clamped to 1/τ ≤ 100). Optimiser: Adam with decoupled weight decay on W.
/// </summary>
public sealed record BaselineConfig(
    int Epochs = 30, int Batch = 128, double Lr = 1e-3, double WeightDecay = 1e-4,
    double Temperature = 0.1, bool LearnTemperature = false, ulong Seed = 0)
{
    /// <summary>The settings the pipeline uses: fixed τ = 0.1, 30 epochs of batch 128, lr 1e-3.</summary>
    public static BaselineConfig Default => new();

    /// <summary>Throws <see cref="ArgumentException"/> on a non-positive setting.</summary>
    public BaselineConfig Validated()
    {
        if (Epochs <= 0) throw new ArgumentException($"baseline config: epochs must be positive, got {Epochs}");
        if (Batch <= 0) throw new ArgumentException($"baseline config: batch must be positive, got {Batch}");
        if (!(Lr > 0)) throw new ArgumentException($"baseline config: lr must be positive, got {Lr}");
        if (!(Temperature > 0)) throw new ArgumentException($"baseline config: temperature must be positive, got {Temperature}");
        if (!(WeightDecay >= 0)) throw new ArgumentException($"baseline config: weight decay must be 0 or more, got {WeightDecay}");
        return this;
    }
}

/// <summary>
/// The direct-alignment model TDSM argues against: standardised skeleton features x (C_in) are
/// projected linearly into the text space, p = W x + b (D), and trained with cross-entropy over
/// cos(p, t_k) / τ against the global text features t_k (row 35 of the (C,36,D) class text
/// features) of the seen classes. Prediction = argmax cosine over any candidate set.
/// Shape letters: B batch, C = C_in, D text width, K classes.
/// </summary>
public sealed class DirectAlignmentBaseline
{
    private readonly float[] _mean, _invStd;

    /// <summary>W (D, C).</summary>
    public float[] Weight { get; }

    /// <summary>b (D).</summary>
    public float[] Bias { get; }

    /// <summary>The temperature in use (learned or fixed).</summary>
    public double Temperature { get; private set; }

    /// <summary>C_in.</summary>
    public int InChannels { get; }

    /// <summary>D.</summary>
    public int TextWidth { get; }

    /// <summary>Mean training cross-entropy of each epoch.</summary>
    public IReadOnlyList<double> EpochLoss { get; }

    private DirectAlignmentBaseline(int c, int d, float[] mean, float[] invStd, float[] w, float[] b, double temperature, List<double> losses)
    {
        InChannels = c; TextWidth = d; _mean = mean; _invStd = invStd; Weight = w; Bias = b; Temperature = temperature; EpochLoss = losses;
    }

    /// <summary>Trains on seen-class samples.</summary>
    /// <param name="features">(N, C) training features.</param>
    /// <param name="labels">(N) class ids, each one of <paramref name="seenClasses"/>.</param>
    /// <param name="seenClasses">(K) class ids; row k of <paramref name="seenText"/> belongs to seenClasses[k].</param>
    /// <param name="seenText">(K, D) global text features of the seen classes.</param>
    /// <param name="textWidth">D.</param>
    /// <param name="config">Settings (seeded).</param>
    public static DirectAlignmentBaseline Train(float[] features, IReadOnlyList<int> labels, IReadOnlyList<int> seenClasses, float[] seenText, int textWidth, BaselineConfig config)
    {
        config = config.Validated();
        int n = labels.Count, k = seenClasses.Count, d = textWidth;
        if (n == 0 || features.Length % n != 0) throw new ArgumentException($"features hold {features.Length} values, not a whole number of rows for {n} labels");
        int c = features.Length / n;
        if (seenText.Length != k * d) throw new ArgumentException($"seen text features: expected {k}x{d} values, got {seenText.Length}");
        var column = new Dictionary<int, int>();
        for (int i = 0; i < k; i++) if (!column.TryAdd(seenClasses[i], i)) throw new ArgumentException($"seen class {seenClasses[i]} repeats");
        var y = new int[n];
        for (int i = 0; i < n; i++)
            y[i] = column.TryGetValue(labels[i], out int col) ? col : throw new ArgumentException($"sample {i}: label {labels[i]} is not a seen class");

        // Standardise each input channel with the training statistics (kept for prediction).
        var mean = new float[c];
        var invStd = new float[c];
        for (int j = 0; j < c; j++)
        {
            double s = 0, s2 = 0;
            for (int i = 0; i < n; i++) { double v = features[i * c + j]; s += v; s2 += v * v; }
            double m = s / n, var = Math.Max(s2 / n - m * m, 0);
            mean[j] = (float)m;
            invStd[j] = (float)(1 / Math.Sqrt(var + 1e-6));
        }
        var t = Normalized(seenText, k, d);

        var rng = new Rng(config.Seed);
        var w = new float[d * c];
        rng.FillNormal(w, 1 / Math.Sqrt(c));
        var b = new float[d];
        var model = new DirectAlignmentBaseline(c, d, mean, invStd, w, b, config.Temperature, []);
        model.Fit(features, y, t, k, config, rng);
        return model;
    }

    private void Fit(float[] features, int[] y, float[] t, int k, BaselineConfig cfg, Rng rng)
    {
        int n = y.Length, c = InChannels, d = TextWidth, bmax = Math.Min(cfg.Batch, n);
        var x = new float[bmax * c];
        var p = new float[bmax * d];
        var u = new float[bmax * d];
        var norm = new float[bmax];
        var logits = new float[bmax * k];
        var du = new float[bmax * d];
        var dW = new float[d * c];
        var db = new float[d];
        var (mW, vW, mB, vB) = (new float[d * c], new float[d * c], new float[d], new float[d]);
        double logScale = -Math.Log(Temperature), mS = 0, vS = 0;
        var order = Enumerable.Range(0, n).ToArray();
        var losses = (List<double>)EpochLoss;
        int step = 0;
        for (int epoch = 0; epoch < cfg.Epochs; epoch++)
        {
            for (int i = n - 1; i > 0; i--) { int j = rng.NextInt(i + 1); (order[i], order[j]) = (order[j], order[i]); }
            double lossSum = 0;
            for (int start = 0; start < n; start += bmax)
            {
                int bs = Math.Min(bmax, n - start);
                for (int r = 0; r < bs; r++) Standardize(features.AsSpan(order[start + r] * c, c), x.AsSpan(r * c, c));
                float scale = (float)Math.Exp(logScale);
                Project(x, bs, p, u, norm);
                Gemm.MatMulABt(u, 0, t, 0, logits, 0, bs, k, d, accumulate: false); // cos (B, K)
                // Softmax cross-entropy; logits becomes dL/dcos = scale·(softmax − onehot)/B.
                double dScale = 0;
                for (int r = 0; r < bs; r++)
                {
                    var row = logits.AsSpan(r * k, k);
                    int yr = y[order[start + r]];
                    double mx = double.NegativeInfinity;
                    foreach (float v in row) mx = Math.Max(mx, scale * v);
                    double z = 0;
                    foreach (float v in row) z += Math.Exp(scale * v - mx);
                    lossSum += Math.Log(z) + mx - scale * row[yr];
                    for (int j = 0; j < k; j++)
                    {
                        double g = (Math.Exp(scale * row[j] - mx) / z - (j == yr ? 1 : 0)) / bs;
                        dScale += g * row[j];
                        row[j] = (float)(g * scale);
                    }
                }
                Gemm.MatMulAB(logits, 0, t, 0, du, 0, bs, d, k, accumulate: false); // dL/du (B, D)
                // Through u = p/|p|: dp = (du − u (u·du)) / |p|, written into du.
                for (int r = 0; r < bs; r++)
                {
                    var ur = u.AsSpan(r * d, d);
                    var dr = du.AsSpan(r * d, d);
                    float dot = 0;
                    for (int j = 0; j < d; j++) dot += ur[j] * dr[j];
                    for (int j = 0; j < d; j++) dr[j] = (dr[j] - ur[j] * dot) / norm[r];
                }
                Gemm.MatMulAtB(du, 0, x, 0, dW, 0, d, c, bs, accumulate: false); // dW (D, C) = dpᵀ x
                Array.Clear(db);
                for (int r = 0; r < bs; r++) Gemm.Axpy(1f, du.AsSpan(r * d, d), db);
                step++;
                Adam(Weight, dW, mW, vW, cfg, step, decay: true);
                Adam(Bias, db, mB, vB, cfg, step, decay: false);
                if (cfg.LearnTemperature)
                {
                    // d loss / d log(scale) = scale · Σ g·cos.
                    double g = dScale * scale;
                    mS = 0.9 * mS + 0.1 * g; vS = 0.999 * vS + 0.001 * g * g;
                    logScale -= cfg.Lr * (mS / (1 - Math.Pow(0.9, step))) / (Math.Sqrt(vS / (1 - Math.Pow(0.999, step))) + 1e-8);
                    logScale = Math.Clamp(logScale, 0, Math.Log(100));
                }
            }
            losses.Add(lossSum / n);
        }
        Temperature = Math.Exp(-logScale);
    }

    private static void Adam(float[] w, float[] g, float[] m, float[] v, BaselineConfig cfg, int step, bool decay)
    {
        double c1 = 1 - Math.Pow(0.9, step), c2 = 1 - Math.Pow(0.999, step);
        for (int i = 0; i < w.Length; i++)
        {
            m[i] = 0.9f * m[i] + 0.1f * g[i];
            v[i] = 0.999f * v[i] + 0.001f * g[i] * g[i];
            double upd = m[i] / c1 / (Math.Sqrt(v[i] / c2) + 1e-8);
            if (decay) upd += cfg.WeightDecay * w[i];
            w[i] -= (float)(cfg.Lr * upd);
        }
    }

    private void Standardize(ReadOnlySpan<float> src, Span<float> dst)
    {
        for (int j = 0; j < src.Length; j++) dst[j] = (src[j] - _mean[j]) * _invStd[j];
    }

    // p (B, D) = x Wᵀ + b, u = p / |p|, norm (B) = |p|.
    private void Project(float[] x, int bs, float[] p, float[] u, float[] norm)
    {
        int c = InChannels, d = TextWidth;
        Gemm.MatMulABt(x, 0, Weight, 0, p, 0, bs, d, c, accumulate: false);
        for (int r = 0; r < bs; r++)
        {
            var pr = p.AsSpan(r * d, d);
            Gemm.Axpy(1f, Bias, pr);
            double s = 0;
            foreach (float v in pr) s += v * v;
            norm[r] = (float)Math.Max(Math.Sqrt(s), 1e-8);
            for (int j = 0; j < d; j++) u[r * d + j] = pr[j] / norm[r];
        }
    }

    private static float[] Normalized(float[] rows, int k, int d)
    {
        var t = new float[k * d];
        for (int i = 0; i < k; i++)
        {
            double s = 0;
            for (int j = 0; j < d; j++) s += rows[i * d + j] * (double)rows[i * d + j];
            float inv = (float)(1 / Math.Max(Math.Sqrt(s), 1e-8));
            for (int j = 0; j < d; j++) t[i * d + j] = rows[i * d + j] * inv;
        }
        return t;
    }

    /// <summary>Cosine similarities (N, K) of the projected features to the candidates' global text features.</summary>
    /// <param name="features">(N, C) features.</param>
    /// <param name="candidateText">(K, D) global text features of the candidate classes.</param>
    public double[,] Score(float[] features, float[] candidateText)
    {
        int c = InChannels, d = TextWidth;
        if (features.Length % c != 0) throw new ArgumentException($"features hold {features.Length} values, not a multiple of C_in {c}");
        if (candidateText.Length % d != 0 || candidateText.Length == 0) throw new ArgumentException($"candidate text holds {candidateText.Length} values, not K x D {d}");
        int n = features.Length / c, k = candidateText.Length / d;
        var t = Normalized(candidateText, k, d);
        var scores = new double[n, k];
        const int chunk = 256;
        var x = new float[chunk * c];
        var p = new float[chunk * d];
        var u = new float[chunk * d];
        var norm = new float[chunk];
        var cos = new float[chunk * k];
        for (int start = 0; start < n; start += chunk)
        {
            int bs = Math.Min(chunk, n - start);
            for (int r = 0; r < bs; r++) Standardize(features.AsSpan((start + r) * c, c), x.AsSpan(r * c, c));
            Project(x, bs, p, u, norm);
            Gemm.MatMulABt(u, 0, t, 0, cos, 0, bs, k, d, accumulate: false);
            for (int r = 0; r < bs; r++) for (int j = 0; j < k; j++) scores[start + r, j] = cos[r * k + j];
        }
        return scores;
    }

    /// <summary>The global text rows (row 35) of <paramref name="classes"/>, stacked (K, D).</summary>
    public static float[] GlobalRows(Tdsm.Text.ClassTextFeatures text, IReadOnlyList<int> classes)
    {
        var rows = new float[classes.Count * text.Width];
        for (int i = 0; i < classes.Count; i++)
        {
            if ((uint)classes[i] >= (uint)text.Count) throw new ArgumentException($"class id {classes[i]} has no text features ({text.Count} classes)");
            text.Global(classes[i]).CopyTo(rows.AsSpan(i * text.Width));
        }
        return rows;
    }

    /// <summary>argmax-cosine class ids over <paramref name="candidates"/> (K ids, rows of <paramref name="candidateText"/>).</summary>
    public int[] Predict(float[] features, IReadOnlyList<int> candidates, float[] candidateText) =>
        ScoreMatrix.Predict(Score(features, candidateText), candidates, ScoreOrder.HigherIsBetter);
}
