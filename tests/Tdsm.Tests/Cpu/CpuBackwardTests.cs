using Tdsm.Cpu;
using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Tests.Cpu;

/// <summary>
/// The CPU tier's backward ops against the reference tier at odd sizes. Every tensor the op reads
/// or writes starts random (so accumulating outputs accumulate onto non-zero values and an
/// unwritten overwrite shows up); all of them are compared afterwards. Tolerance: max abs error
/// ≤ 2e-5 × the RMS of the expected tensor (float32 sums vs the reference's float64 sums).
/// </summary>
public class CpuBackwardTests
{
    private static void Check(int[][] shapes, Action<IOps, Tensor[]> op, double tol = 2e-5)
    {
        var values = shapes.Select((s, i) => { var v = new float[s.Aggregate(1, (a, b) => a * b)]; new Rng(17 + (ulong)i).FillNormal(v); return v; }).ToArray();
        float[][] Run(IOps o)
        {
            var ts = values.Select((v, i) => { var t = o.Allocate(shapes[i]); o.Upload(v, t); return t; }).ToArray();
            op(o, ts);
            return ts.Select(t => { var h = new float[t.Length]; o.Download(t, h); return h; }).ToArray();
        }
        var want = Run(new ReferenceOps());
        var got = Run(new CpuOps());
        for (int k = 0; k < want.Length; k++)
        {
            double max = 0, ss = 0;
            for (int i = 0; i < want[k].Length; i++) { max = Math.Max(max, Math.Abs(got[k][i] - (double)want[k][i])); ss += (double)want[k][i] * want[k][i]; }
            double rms = Math.Sqrt(ss / want[k].Length);
            Assert.That(max, Is.Not.NaN.And.LessThanOrEqualTo(tol * Math.Max(rms, 1e-30)), $"tensor {k}: max abs error {max:e3}, RMS {rms:e3}");
        }
    }

    [TestCase(1, false)]
    [TestCase(77, true)]
    [TestCase(40_003, false)]
    public void Activations(int n, bool accumulate)
    {
        Check([[n], [n], [n]], (o, t) => o.SiluBackward(t[0], t[1], t[2], accumulate));
        Check([[n], [n], [n]], (o, t) => o.GeluTanhBackward(t[0], t[1], t[2], accumulate));
    }

    [TestCase(3, 1, 13, true)]
    [TestCase(5, 35, 37, false)]
    [TestCase(2, 35, 64, true)]
    public void LayerNormModulate(int b, int n, int h, bool accumulate)
    {
        // mean/rstd must be the forward's: run the reference forward first on both tiers.
        Check([[b, n, h], [b, n, h], [b, 6 * h], [b, n, h], [b * n], [b * n], [b, n, h], [b, 6 * h]], (o, t) =>
        {
            o.LayerNormModulate(t[1], t[2], 6, 3, 4, t[3], t[4], t[5], b, n, h);
            o.LayerNormModulateBackward(t[0], t[1], t[2], 6, 3, 4, t[4], t[5], t[6], t[7], b, n, h, accumulate);
        });
    }

    [TestCase(3, 1, 13)]
    [TestCase(4, 35, 37)]
    public void GatedResidual(int b, int n, int h) =>
        Check([[b, n, h], [b, 6 * h], [b, n, h], [b, n, h], [b, 6 * h]], (o, t) => o.GatedResidualBackward(t[0], t[1], 6, 5, t[2], t[3], t[4], b, n, h));

    [TestCase(2, 4, 6, 3)]
    [TestCase(3, 35, 16, 4)]
    [TestCase(2, 35, 80, 4)]   // head dim 20: two 8-wide SIMD blocks and a scalar tail
    [TestCase(1, 3, 48, 2)]    // head dim 24: three 8-wide blocks
    [TestCase(2, 34, 160, 2)]  // S = 35 (a last row without a partner), head dim 80: 32- and 8-wide channel blocks
    [TestCase(3, 10, 84, 2)]   // S = 11, head dim 42: 32- and 8-wide blocks and a scalar tail of 2
    public void JointAttention(int b, int l, int h, int heads)
    {
        int s = l + 1;
        Check([[b, 3 * h], [b, l, 3 * h], [b, heads, s, s], [b, h], [b, l, h], [b, h], [b, l, h], [b, 3 * h], [b, l, 3 * h]], (o, t) =>
        {
            o.JointAttention(t[0], t[1], t[2], t[3], t[4], b, l, h, heads); // real probabilities for the backward
            o.JointAttentionBackward(t[5], t[6], t[0], t[1], t[2], t[7], t[8], b, l, h, heads);
        });
    }

    /// <summary>The SIMD float64 update does the reference's operations in its order: the same bits (1001 = 125 vectors of 8 + 1 scalar).</summary>
    [Test]
    public void AdamW()
    {
        int n = 1001;
        Check([[n], [n], [n], [n]], (o, t) =>
        {
            o.Upload(Enumerable.Range(0, n).Select(i => (float)(0.01 * (i % 7))).ToArray(), t[3]); // v ≥ 0
            o.AdamWStep(t[0], t[1], t[2], t[3], 1e-3, new AdamWConfig(1e-3), 5);
        }, tol: 0);
    }
}
