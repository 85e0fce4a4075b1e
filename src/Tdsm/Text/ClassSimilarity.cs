namespace Tdsm.Text;

/// <summary>Cosine similarity between classes' global text features (a sanity check of the encoder).</summary>
public static class ClassSimilarity
{
    /// <summary>(C, C) cosine similarities of the global rows.</summary>
    public static double[] GlobalCosine(ClassTextFeatures f)
    {
        int c = f.Count;
        var norms = new double[c];
        for (int i = 0; i < c; i++) norms[i] = Math.Sqrt(Dot(f.Global(i), f.Global(i)));
        var s = new double[c * c];
        for (int i = 0; i < c; i++)
            for (int j = 0; j < c; j++) s[i * c + j] = Dot(f.Global(i), f.Global(j)) / (norms[i] * norms[j]);
        return s;
    }

    /// <summary>The <paramref name="k"/> classes most similar to <paramref name="i"/> (itself excluded), best first.</summary>
    public static int[] Nearest(double[] sims, int count, int i, int k) =>
        Enumerable.Range(0, count).Where(j => j != i).OrderByDescending(j => sims[i * count + j]).ThenBy(j => j).Take(k).ToArray();

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
