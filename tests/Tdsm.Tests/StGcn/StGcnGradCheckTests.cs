using Tdsm.StGcn.Reference;

namespace Tdsm.Tests.StGcn;

/// <summary>
/// Every reference op's backward against a float64 central finite difference of
/// L = sum(forward(inputs) * R) for a random R, on a seeded sample of elements, at odd sizes.
/// </summary>
public class StGcnGradCheckTests
{
    private const double H = 1e-6;

    private static double[] Rand(Random rng, long n, double scale = 1.0)
    {
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = (rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    private static double Dot(double[] a, double[] b) { double s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }

    // Compares analytic[i] with (L(x+h e_i) - L(x-h e_i)) / 2h on `samples` random indices, or on every index when there
    // are no more than `samples` of them.
    private static void Check(string what, double[] input, double[] analytic, Func<double> loss, Random rng, int samples = 24)
    {
        double worst = 0;
        bool all = input.Length <= samples;
        for (int s = 0; s < (all ? input.Length : samples); s++)
        {
            int i = all ? s : rng.Next(input.Length);
            double old = input[i];
            input[i] = old + H; double lp = loss();
            input[i] = old - H; double lm = loss();
            input[i] = old;
            double fd = (lp - lm) / (2 * H);
            worst = Math.Max(worst, Math.Abs(fd - analytic[i]) / (1e-6 + Math.Abs(fd)));
            Assert.That(Math.Abs(analytic[i] - fd), Is.Not.NaN.And.LessThanOrEqualTo(1e-7 + 1e-5 * Math.Abs(fd)), $"{what}[{i}]: analytic {analytic[i]}, FD {fd}");
        }
        TestContext.Out.WriteLine($"{what}: worst relative FD error {worst:E2}");
    }

    [Test]
    public void BatchNormTrainBackwardMatchesFiniteDifference()
    {
        var rng = new Random(11);
        int b = 3, c = 5, l = 7;
        var x = Rand(rng, b * c * l, 2.0); var g = Rand(rng, c); var be = Rand(rng, c); var r = Rand(rng, b * c * l);
        for (int i = 0; i < x.Length; i++) x[i] += 0.5; // a non-zero mean
        double Loss()
        {
            var y = new double[x.Length];
            Ref.BatchNormTrainForward<double>(x, g, be, y, new double[c], new double[c], new double[c], new double[c], b, c, l, 1e-5, 0.1);
            return Dot(y, r);
        }
        var yy = new double[x.Length]; var mean = new double[c]; var rstd = new double[c];
        Ref.BatchNormTrainForward<double>(x, g, be, yy, mean, rstd, new double[c], new double[c], b, c, l, 1e-5, 0.1);
        var dx = new double[x.Length]; var dg = new double[c]; var db = new double[c];
        Ref.BatchNormBackward<double>(r, x, g, mean, rstd, dx, dg, db, b, c, l);
        Check("bn.dx", x, dx, Loss, rng);
        Check("bn.dgamma", g, dg, Loss, rng, 5);
        Check("bn.dbeta", be, db, Loss, rng, 5);
    }

    [Test]
    public void BatchNormRunningStatsUseMomentumAndUnbiasedVariance()
    {
        var rng = new Random(12);
        int b = 2, c = 3, l = 5, cnt = b * l;
        var x = Rand(rng, b * c * l, 3.0);
        double[] rm = [0.5, -1, 2], rv = [1, 2, 0.5];
        var y = new double[x.Length];
        var rm0 = (double[])rm.Clone(); var rv0 = (double[])rv.Clone();
        Ref.BatchNormTrainForward<double>(x, [1, 1, 1], [0, 0, 0], y, new double[c], new double[c], rm, rv, b, c, l, 1e-5, 0.1);
        for (int ci = 0; ci < c; ci++)
        {
            var vals = Enumerable.Range(0, b).SelectMany(bi => Enumerable.Range(0, l).Select(li => x[(bi * c + ci) * l + li])).ToArray();
            double mean = vals.Average(), unbiased = vals.Sum(v => (v - mean) * (v - mean)) / (cnt - 1);
            Assert.That(rm[ci], Is.EqualTo(0.9 * rm0[ci] + 0.1 * mean).Within(1e-12));
            Assert.That(rv[ci], Is.EqualTo(0.9 * rv0[ci] + 0.1 * unbiased).Within(1e-12));
            // normalised with the biased variance: the outputs have unit biased variance
            var outs = Enumerable.Range(0, b).SelectMany(bi => Enumerable.Range(0, l).Select(li => y[(bi * c + ci) * l + li])).ToArray();
            Assert.That(outs.Sum(v => v * v) / cnt, Is.EqualTo(1.0).Within(1e-4));
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Conv1x1BackwardMatchesFiniteDifference(int stride)
    {
        var rng = new Random(20 + stride);
        int b = 2, cin = 3, cout = 5, t = 7, v = 4, tout = (t - 1) / stride + 1;
        var x = Rand(rng, b * cin * t * v); var w = Rand(rng, cout * cin); var bias = Rand(rng, cout); var r = Rand(rng, b * cout * tout * v);
        double Loss() { var y = new double[r.Length]; Ref.Conv1x1Forward<double>(x, w, bias, y, b, cin, cout, t, v, stride); return Dot(y, r); }
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[cout];
        Ref.Conv1x1Backward<double>(r, x, w, dx, dw, db, b, cin, cout, t, v, stride);
        Check("conv1x1.dx", x, dx, Loss, rng);
        Check("conv1x1.dw", w, dw, Loss, rng);
        Check("conv1x1.db", bias, db, Loss, rng, 5);
    }

    [Test]
    public void GraphAggregateBackwardMatchesFiniteDifference()
    {
        var rng = new Random(30);
        int b = 2, k = 3, c = 3, t = 5, v = 6;
        var y = Rand(rng, b * k * c * t * v); var a = Rand(rng, k * v * v); var imp = Rand(rng, k * v * v, 1.5); var r = Rand(rng, b * c * t * v);
        double Loss() { var o = new double[r.Length]; Ref.GraphAggregateForward<double>(y, a, imp, o, b, k, c, t, v); return Dot(o, r); }
        var dy = new double[y.Length]; var dimp = new double[imp.Length];
        Ref.GraphAggregateBackward<double>(r, y, a, imp, dy, dimp, b, k, c, t, v);
        Check("gcn.dy", y, dy, Loss, rng);
        Check("gcn.dimp", imp, dimp, Loss, rng, 40);
    }

    [TestCase(1, 9, 7)]
    [TestCase(2, 9, 11)]
    [TestCase(2, 5, 6)]
    public void TemporalConvBackwardMatchesFiniteDifference(int stride, int kt, int t)
    {
        var rng = new Random(40 + stride * 10 + t);
        int b = 2, cin = 3, cout = 4, v = 3, tout = Ref.TemporalOut(t, kt, stride);
        var x = Rand(rng, b * cin * t * v); var w = Rand(rng, cout * cin * kt); var bias = Rand(rng, cout); var r = Rand(rng, b * cout * tout * v);
        double Loss() { var y = new double[r.Length]; Ref.TemporalConvForward<double>(x, w, bias, y, b, cin, cout, t, v, kt, stride); return Dot(y, r); }
        var dx = new double[x.Length]; var dw = new double[w.Length]; var db = new double[cout];
        Ref.TemporalConvBackward<double>(r, x, w, dx, dw, db, b, cin, cout, t, v, kt, stride);
        Check("tcn.dx", x, dx, Loss, rng, 40);
        Check("tcn.dw", w, dw, Loss, rng, 40);
        Check("tcn.db", bias, db, Loss, rng, 4);
    }

    [Test]
    public void ReluAndResidualBackwardMatchFiniteDifference()
    {
        var rng = new Random(50);
        int n = 64;
        // keep every pre-activation at least 0.05 away from the kink
        var x = Rand(rng, n).Select(v => v + Math.Sign(v) * 0.05).ToArray();
        var r = Rand(rng, n);
        double LossRelu() { var y = new double[n]; Ref.ReluForward<double>(x, y); return Dot(y, r); }
        var yy = new double[n]; Ref.ReluForward<double>(x, yy);
        var dx = new double[n]; Ref.ReluBackward<double>(r, yy, dx);
        Check("relu.dx", x, dx, LossRelu, rng);

        var a = Rand(rng, n); var res = Rand(rng, n);
        for (int i = 0; i < n; i++) if (Math.Abs(a[i] + res[i]) < 0.05) a[i] += 0.2;
        double LossRes() { var y = new double[n]; Ref.ResidualReluForward<double>(a, res, y); return Dot(y, r); }
        var yr = new double[n]; Ref.ResidualReluForward<double>(a, res, yr);
        var da = new double[n]; var dr = new double[n];
        Ref.ResidualReluBackward<double>(r, yr, da, dr);
        Check("residual.da", a, da, LossRes, rng);
        Check("residual.dr", res, dr, LossRes, rng);
    }

    [Test]
    public void PoolCrossEntropyAndLayoutBackwardMatchFiniteDifference()
    {
        var rng = new Random(60);
        int n = 3, m = 2, c = 4, l = 5;
        var x = Rand(rng, n * m * c * l); var r = Rand(rng, n * c);
        double LossPool() { var f = new double[n * c]; Ref.PoolForward<double>(x, f, n, m, c, l); return Dot(f, r); }
        var dx = new double[x.Length]; Ref.PoolBackward<double>(r, dx, n, m, c, l);
        Check("pool.dx", x, dx, LossPool, rng);

        int k = 5;
        var z = Rand(rng, n * k, 3); int[] y = [4, 0, 2];
        double LossCe() => Ref.CrossEntropy<double>(z, y, new double[n * k], n, k);
        var dz = new double[z.Length]; Ref.CrossEntropy<double>(z, y, dz, n, k);
        Check("ce.dlogits", z, dz, LossCe, rng);

        int ci = 3, t = 4, v = 5;
        var xi = Rand(rng, n * ci * t * v * m); var ri = Rand(rng, xi.Length);
        double LossLayout()
        {
            var a = new double[xi.Length]; var bb = new double[xi.Length];
            Ref.InputToBnLayout<double>(xi, a, n, ci, t, v, m); Ref.BnToBlockLayout<double>(a, bb, n * m, ci, t, v);
            return Dot(bb, ri);
        }
        var d1 = new double[xi.Length]; var d2 = new double[xi.Length];
        Ref.BnToBlockLayoutBackward<double>(ri, d1, n * m, ci, t, v); Ref.InputToBnLayoutBackward<double>(d1, d2, n, ci, t, v, m);
        Check("layout.dx", xi, d2, LossLayout, rng);
    }

    [Test]
    public void CrossEntropyRejectsOutOfRangeLabels()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ref.CrossEntropy<double>(new double[6], [0, 3], new double[6], 2, 3));
        Assert.That(ex!.Message, Does.Contain("label 3 of sample 1"));
    }
}
