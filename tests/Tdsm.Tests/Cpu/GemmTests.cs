using Tdsm.Cpu;

namespace Tdsm.Tests.Cpu;

/// <summary>The CPU GEMMs against a float64 triple loop, at odd sizes that do not divide the 4x4 tile or the SIMD width.</summary>
public class GemmTests
{
    private static float[] Rand(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    // Tolerance: float32 products with float32 accumulation over K <= 300 terms; 1e-5 relative to the norm.
    private static void AssertClose(float[] got, double[] want, int off)
    {
        double num = 0, den = 0;
        for (int i = 0; i < want.Length; i++) { double d = got[off + i] - want[i]; num += d * d; den += want[i] * want[i]; }
        Assert.That(Math.Sqrt(num / den), Is.Not.NaN.And.LessThan(1e-5));
    }

    [TestCase(1, 1, 1)]
    [TestCase(5, 7, 3)]
    [TestCase(13, 9, 17)]
    [TestCase(37, 70, 300)]
    [TestCase(64, 64, 64)]
    [TestCase(200, 20, 270)] // two row blocks of the packed kernel, a short last panel, two K chunks
    public void AllThreeLayoutsMatchATripleLoop(int m, int n, int k)
    {
        var a = Rand(m * k + 3, 1); var b = Rand(n * k + 5, 2);
        foreach (bool acc in new[] { false, true })
        {
            // ABt: A (M,K) at offset 3, B (N,K) at offset 5.
            var want = new double[m * n];
            var c = Rand(m * n + 2, 3);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++)
            {
                double s = acc ? c[2 + i * n + j] : 0;
                for (int p = 0; p < k; p++) s += (double)a[3 + i * k + p] * b[5 + j * k + p];
                want[i * n + j] = s;
            }
            Gemm.MatMulABt(a, 3, b, 5, c, 2, m, n, k, acc);
            AssertClose(c, want, 2);

            // AB: A (M,K), B (K,N).
            c = Rand(m * n, 4);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++)
            {
                double s = acc ? c[i * n + j] : 0;
                for (int p = 0; p < k; p++) s += (double)a[3 + i * k + p] * b[5 + p * n + j];
                want[i * n + j] = s;
            }
            Gemm.MatMulAB(a, 3, b, 5, c, 0, m, n, k, acc);
            AssertClose(c, want, 0);

            // AtB: A (K,M), B (K,N).
            c = Rand(m * n, 5);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++)
            {
                double s = acc ? c[i * n + j] : 0;
                for (int p = 0; p < k; p++) s += (double)a[3 + p * m + i] * b[5 + p * n + j];
                want[i * n + j] = s;
            }
            Gemm.MatMulAtB(a, 3, b, 5, c, 0, m, n, k, acc);
            AssertClose(c, want, 0);
        }
    }

    /// <summary>
    /// Aᵀ·B reads A (K,M) in place with the same sums, in the same order, as A·B on a transposed copy of A; where it is
    /// computed as its transpose (N ≥ 2·M and K·(N − M) ≥ 4·M·N: A packed, B read in place) it must still give those bits,
    /// accumulating too.
    /// </summary>
    [TestCase(384, 128, 4480, false)]
    [TestCase(37, 70, 300, false)]
    [TestCase(800, 520, 300, false)] // tiles of 17 panels: A copied into MR-row tiles; a short last tile and panel
    [TestCase(64, 768, 700, true)]   // the transposed route: a narrow layer's weight gradient, K over 2 chunks
    [TestCase(40, 256, 32, false)]   // the ST-GCN classifier's: N ≥ 2·M but K too short for the route
    [TestCase(50, 130, 700, true)]   // the transposed route, a short last panel
    public void AtBGivesTheBitsOfABOnATransposedCopy(int m, int n, int k, bool accumulate)
    {
        var a = Rand(k * m, 7); var b = Rand(k * n, 8);
        var at = new float[m * k];
        for (int p = 0; p < k; p++) for (int i = 0; i < m; i++) at[i * k + p] = a[p * m + i];
        var want = Rand(m * n, 9); var got = (float[])want.Clone();
        Gemm.MatMulAB(at, 0, b, 0, want, 0, m, n, k, accumulate);
        Gemm.MatMulAtB(a, 0, b, 0, got, 0, m, n, k, accumulate);
        Assert.That(got, Is.EqualTo(want).AsCollection);
    }

    [Test]
    public void OutOfRangeOffsetsAreRejected()
    {
        var a = new float[10];
        Assert.Throws<ArgumentException>(() => Gemm.MatMulABt(a, 5, a, 0, a, 0, 2, 2, 3, false));
    }
}
