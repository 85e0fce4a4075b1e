using Tdsm.Reference;

namespace Tdsm.Tests.Reference;

/// <summary>
/// Each reference op's backward against a float64 central finite difference on sampled elements.
/// The probe loss is Σ out·w with a fixed random w, so dout = w. Tolerance: |analytic − numeric|
/// ≤ 1e-6 + 1e-5·|numeric| (h = 1e-6 in float64 leaves ~1e-9 truncation and rounding error).
/// </summary>
public class GradientCheckTests
{
    private const double H = 1e-6;

    private static double[] Rand(int n, int seed, double scale = 1)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (r.NextDouble() * 2 - 1) * scale).ToArray();
    }

    private static double Dot(double[] a, double[] b) => a.Select((v, i) => v * b[i]).Sum();

    /// <summary>Checks d(Σ f(inputs)·w)/d input[k] for sampled k against <paramref name="analytic"/>.</summary>
    private static void Check(string what, double[] input, double[] analytic, Func<double> probe, int samples = 24, int seed = 7)
    {
        var r = new Random(seed);
        for (int s = 0; s < Math.Min(samples, input.Length); s++)
        {
            int k = samples >= input.Length ? s : r.Next(input.Length);
            double keep = input[k];
            input[k] = keep + H; double up = probe();
            input[k] = keep - H; double down = probe();
            input[k] = keep;
            double numeric = (up - down) / (2 * H);
            Assert.That(Math.Abs(analytic[k] - numeric), Is.Not.NaN.And.LessThanOrEqualTo(1e-6 + 1e-5 * Math.Abs(numeric)), $"{what}[{k}]: analytic {analytic[k]}, numeric {numeric}");
        }
    }

    [Test]
    public void Linear()
    {
        int rows = 3, inF = 5, outF = 7;
        var x = Rand(rows * inF, 1); var w = Rand(outF * inF, 2); var b = Rand(outF, 3); var dy = Rand(rows * outF, 4);
        var y = new double[rows * outF];
        double Probe() { Tdsm.Reference.Linear.Forward<double>(x, w, b, y, rows, inF, outF); return Dot(y, dy); }
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[b.Length];
        Tdsm.Reference.Linear.Backward<double>(dy, x, w, dx, dw, db, rows, inF, outF, false);
        Check("dx", x, dx, Probe); Check("dW", w, dw, Probe); Check("db", b, db, Probe);
    }

    [Test]
    public void LayerNormModulate()
    {
        int b = 2, n = 3, h = 5, chunks = 6;
        var x = Rand(b * n * h, 1, 2); var mod = Rand(b * chunks * h, 2); var dy = Rand(b * n * h, 3);
        var y = new double[x.Length]; var mean = new double[b * n]; var rstd = new double[b * n];
        double Probe() { Tdsm.Reference.LayerNormModulate.Forward<double>(x, mod, chunks, 3, 4, y, mean, rstd, b, n, h); return Dot(y, dy); }
        Probe();
        var dx = new double[x.Length]; var dmod = new double[mod.Length];
        Tdsm.Reference.LayerNormModulate.Backward<double>(dy, x, mod, chunks, 3, 4, mean, rstd, dx, dmod, b, n, h, false);
        Check("dx", x, dx, Probe, 30); Check("dmod", mod, dmod, Probe, 60);
    }

    [Test]
    public void GatedResidual()
    {
        int b = 2, n = 3, h = 4, chunks = 6;
        var x = Rand(b * n * h, 1); var mod = Rand(b * chunks * h, 2); var y = Rand(b * n * h, 3); var dout = Rand(b * n * h, 4);
        var o = new double[x.Length];
        double Probe() { Tdsm.Reference.GatedResidual.Forward<double>(x, mod, chunks, 5, y, o, b, n, h); return Dot(o, dout); }
        var dy = new double[y.Length]; var dmod = new double[mod.Length];
        Tdsm.Reference.GatedResidual.Backward<double>(dout, mod, chunks, 5, y, dy, dmod, b, n, h);
        Check("dy", y, dy, Probe); Check("dmod", mod, dmod, Probe, 48);
    }

    [Test]
    public void JointAttention()
    {
        int b = 2, l = 4, h = 6, heads = 3, s = l + 1;
        var qx = Rand(b * 3 * h, 1); var qu = Rand(b * l * 3 * h, 2);
        var dox = Rand(b * h, 3); var dou = Rand(b * l * h, 4);
        var probs = new double[b * heads * s * s]; var ox = new double[b * h]; var ou = new double[b * l * h];
        double Probe() { Tdsm.Reference.JointAttention.Forward<double>(qx, qu, probs, ox, ou, b, l, h, heads); return Dot(ox, dox) + Dot(ou, dou); }
        Probe();
        var dqx = new double[qx.Length]; var dqu = new double[qu.Length];
        Tdsm.Reference.JointAttention.Backward<double>(dox, dou, qx, qu, probs, dqx, dqu, b, l, h, heads);
        Check("dqkvX", qx, dqx, Probe, 36); Check("dqkvU", qu, dqu, Probe, 60);
    }

    [Test]
    public void Activations()
    {
        var x = Rand(40, 1, 4); var dy = Rand(40, 2); var y = new double[40];
        double Silu() { Tdsm.Reference.Activations.SiluForward<double>(x, y); return Dot(y, dy); }
        double Gelu() { Tdsm.Reference.Activations.GeluTanhForward<double>(x, y); return Dot(y, dy); }
        var dx = new double[40];
        Tdsm.Reference.Activations.SiluBackward<double>(x, dy, dx, false);
        Check("silu", x, dx, Silu, 40);
        Tdsm.Reference.Activations.GeluTanhBackward<double>(x, dy, dx, false);
        Check("gelu", x, dx, Gelu, 40);
    }

    [TestCase(1.0)]
    [TestCase(0.0)]
    public void TdLoss(double margin)
    {
        int b = 4, c = 5;
        var pred = Rand(2 * b * c, 1); var eps = Rand(b * c, 2);
        double[] mask = [1, 0, 1, 1];
        var pos = new double[b]; var neg = new double[b]; var dpred = new double[pred.Length]; var scratch = new double[pred.Length];
        double Probe() => Tdsm.Reference.TdLoss.Forward<double>(pred, eps, mask, pos, neg, scratch, b, c, margin, 1.0).Loss;
        Tdsm.Reference.TdLoss.Forward<double>(pred, eps, mask, pos, neg, dpred, b, c, margin, 1.0);
        Check("dpred", pred, dpred, Probe, 40);
    }
}
