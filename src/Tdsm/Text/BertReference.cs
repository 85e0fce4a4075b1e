namespace Tdsm.Text;

/// <summary>
/// The reference tier of the BERT encoder: straight loops, one thread, double accumulators,
/// separate q/k/v weights. It is the oracle the CPU tier is checked against and is never optimised.
/// Shapes: B sequences, L tokens, H hidden, I intermediate, NH heads of D = H/NH channels.
/// </summary>
public static class BertReference
{
    /// <summary>Last hidden state (B, L, H) for token ids (B, L) with attention mask (B, L) (1 = real token, 0 = padding).
    /// Token types are all 0. Padded positions are computed like real ones but no token attends to them.</summary>
    public static float[] Forward(BertWeights w, int[] ids, int[] mask, int batch, int length)
    {
        BertEncoder.Validate(w.Config, ids, mask, batch, length);
        var c = w.Config;
        int h = c.Hidden, n = batch * length;
        var x = new float[n * h];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            {
                int r = b * length + t, id = ids[r];
                for (int k = 0; k < h; k++) x[r * h + k] = w.WordEmb[id * h + k] + w.PosEmb[t * h + k] + w.TypeEmb[k];
            }
        LayerNorm(x, n, h, w.EmbLnG, w.EmbLnB, c.LayerNormEps);
        foreach (var lw in w.Layers)
        {
            var q = Linear(x, n, h, lw.Wq, lw.Bq, h);
            var kk = Linear(x, n, h, lw.Wk, lw.Bk, h);
            var v = Linear(x, n, h, lw.Wv, lw.Bv, h);
            var ctx = Attention(q, kk, v, mask, batch, length, c.Heads, h);
            var a = Linear(ctx, n, h, lw.Wo, lw.Bo, h);
            for (int i = 0; i < a.Length; i++) a[i] += x[i];
            LayerNorm(a, n, h, lw.Ln1G, lw.Ln1B, c.LayerNormEps);
            x = a;
            var inter = Linear(x, n, h, lw.Wi, lw.Bi, c.Intermediate);
            for (int i = 0; i < inter.Length; i++) inter[i] = (float)Gelu.Forward(inter[i]);
            var f = Linear(inter, n, c.Intermediate, lw.Wf, lw.Bf, h);
            for (int i = 0; i < f.Length; i++) f[i] += x[i];
            LayerNorm(f, n, h, lw.Ln2G, lw.Ln2B, c.LayerNormEps);
            x = f;
        }
        return x;
    }

    // y (N, O) = x (N, K) Wᵀ + b, W is (O, K).
    private static float[] Linear(float[] x, int n, int k, float[] wt, float[] bias, int o)
    {
        var y = new float[n * o];
        for (int r = 0; r < n; r++)
            for (int j = 0; j < o; j++)
            {
                double s = bias[j];
                for (int i = 0; i < k; i++) s += (double)x[r * k + i] * wt[j * k + i];
                y[r * o + j] = (float)s;
            }
        return y;
    }

    // q, k, v, result are (B, L, H) with head hd in channels hd*D..hd*D+D-1; padded keys get zero weight.
    private static float[] Attention(float[] q, float[] k, float[] v, int[] mask, int batch, int length, int heads, int h)
    {
        int d = h / heads;
        double scale = 1.0 / Math.Sqrt(d);
        var ctx = new float[batch * length * h];
        var p = new double[length];
        for (int b = 0; b < batch; b++)
            for (int hd = 0; hd < heads; hd++)
                for (int i = 0; i < length; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < length; j++)
                    {
                        if (mask[b * length + j] == 0) { p[j] = double.NegativeInfinity; continue; }
                        double s = 0;
                        for (int e = 0; e < d; e++) s += (double)q[(b * length + i) * h + hd * d + e] * k[(b * length + j) * h + hd * d + e];
                        p[j] = s * scale;
                        max = Math.Max(max, p[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < length; j++) { p[j] = mask[b * length + j] == 0 ? 0 : Math.Exp(p[j] - max); sum += p[j]; }
                    for (int e = 0; e < d; e++)
                    {
                        double s = 0;
                        for (int j = 0; j < length; j++) s += p[j] / sum * v[(b * length + j) * h + hd * d + e];
                        ctx[(b * length + i) * h + hd * d + e] = (float)s;
                    }
                }
        return ctx;
    }

    // In place over rows of x (N, H): (x - mean) / sqrt(var + eps) * g + b, biased variance.
    private static void LayerNorm(float[] x, int n, int h, float[] g, float[] bias, double eps)
    {
        for (int r = 0; r < n; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < h; i++) mean += x[r * h + i];
            mean /= h;
            for (int i = 0; i < h; i++) { double dlt = x[r * h + i] - mean; var += dlt * dlt; }
            var /= h;
            double inv = 1.0 / Math.Sqrt(var + eps);
            for (int i = 0; i < h; i++) x[r * h + i] = (float)((x[r * h + i] - mean) * inv * g[i] + bias[i]);
        }
    }
}
