using Tdsm.Cpu;

namespace Tdsm.Tests.Cpu;

/// <summary>The packed 6x16 GEMM (with bias, accumulate and edges) against a float64 triple loop.</summary>
public class PackedGemmTests
{
    private static float[] Rand(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    [TestCase(1, 1, 1)]
    [TestCase(5, 17, 3)]
    [TestCase(7, 33, 257)]
    [TestCase(97, 15, 513)]
    [TestCase(200, 70, 31)]
    public void PackedMatchesATripleLoopWithBiasAndAccumulate(int m, int n, int k)
    {
        var a = Rand(m * k + 3, 1); var b = Rand(n * k + 5, 2); var bias = Rand(n + 1, 6);
        var packed = PackedMatrix.Pack(b, 5, n, k);
        foreach (bool acc in new[] { false, true })
        {
            var c = Rand(m * n + 2, 3);
            var want = new double[m * n];
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++)
            {
                double s = (acc ? c[2 + i * n + j] : 0) + bias[1 + j];
                for (int p = 0; p < k; p++) s += (double)a[3 + i * k + p] * b[5 + j * k + p];
                want[i * n + j] = s;
            }
            Gemm.MatMulPacked(a, 3, packed, c, 2, m, acc, bias, 1);
            double num = 0, den = 0;
            for (int i = 0; i < want.Length; i++) { double d = c[2 + i] - want[i]; num += d * d; den += want[i] * want[i]; }
            Assert.That(Math.Sqrt(num / den), Is.Not.NaN.And.LessThan(1e-5));
            Assert.That(c[0], Is.EqualTo(Rand(m * n + 2, 3)[0]), "C before its offset is untouched");
        }
    }

    /// <summary>
    /// How a product is cut into tiles for the threads (here N = 16, one panel: its 144 rows are split into row blocks)
    /// must not change a bit of C: each element's sum runs over K in the same order whichever tile computes it. The
    /// same rows computed six at a time (one tile each) are the baseline; K = 1600 spans several K chunks.
    /// </summary>
    [TestCase(144, 16, 1600)]
    [TestCase(50, 20, 700)]
    public void TheTileSplitDoesNotChangeTheSums(int m, int n, int k)
    {
        var a = Rand(m * k, 7); var b = Rand(n * k, 8);
        var whole = Rand(m * n, 9); var byRows = (float[])whole.Clone();
        Gemm.MatMulABt(a, 0, b, 0, whole, 0, m, n, k, accumulate: true);
        for (int i = 0; i < m; i += 6)
        {
            int rows = Math.Min(6, m - i);
            var part = new float[rows * n];
            Array.Copy(byRows, i * n, part, 0, rows * n);
            Gemm.MatMulABt(a, i * k, b, 0, part, 0, rows, n, k, accumulate: true);
            Array.Copy(part, 0, byRows, i * n, rows * n);
        }
        Assert.That(whole, Is.EqualTo(byRows).AsCollection);
    }

    [Test]
    public void BadShapesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => PackedMatrix.Pack(new float[10], 0, 3, 4));
        var p = PackedMatrix.Pack(new float[12], 0, 3, 4);
        Assert.Throws<ArgumentException>(() => Gemm.MatMulPacked(new float[7], 0, p, new float[6], 0, 2, false));
    }
}
