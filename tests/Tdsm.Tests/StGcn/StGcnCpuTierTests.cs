using Tdsm.StGcn;
using Tdsm.Tensors;

namespace Tdsm.Tests.StGcn;

/// <summary>
/// The CPU tier against the reference tier, op by op, at odd sizes (B=3, C=5/7, T=11/13, V=25):
/// outputs are poisoned with NaN first so unwritten elements fail, parameter gradients start from
/// the same non-zero values so accumulation (+=) is checked. Tolerance: ||cpu-ref||/||ref|| &lt;= 1e-5.
/// </summary>
public class StGcnCpuTierTests
{
    private const double Tol = 1e-5;
    private readonly StGcnReferenceOps _ref = new();
    private readonly StGcnCpuOps _cpu = new();

    private static float[] Rand(Random rng, long n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    private static float[] Poison(long n) { var a = new float[n]; Array.Fill(a, float.NaN); return a; }

    private static void Same(string what, float[] cpu, float[] reference)
    {
        double num = 0, den = 0;
        for (int i = 0; i < cpu.Length; i++) { double d = cpu[i] - reference[i]; num += d * d; den += (double)reference[i] * reference[i]; }
        double rel = Math.Sqrt(num / Math.Max(den, 1e-30));
        Assert.That(rel, Is.Not.NaN.And.LessThanOrEqualTo(Tol), $"{what}: relative error {rel:E2}");
        Assert.That(den, Is.GreaterThan(0), $"{what}: reference is all zero, the test would not discriminate");
    }

    // Runs `op` on both tiers with cloned buffers (as tensors through the op interface) and compares the buffers listed in `outputs`.
    private void Both(string what, float[][] buffers, int[] outputs, Action<IStGcnOps, Tensor[]> op)
    {
        var r = buffers.Select(b => (float[])b.Clone()).ToArray();
        var c = buffers.Select(b => (float[])b.Clone()).ToArray();
        op(_ref, r.Select(Wrap).ToArray());
        op(_cpu, c.Select(Wrap).ToArray());
        foreach (var o in outputs) Same($"{what}[{o}]", c[o], r[o]);
    }

    private static Tensor Wrap(float[] a) => new HostTensor(a, 0, a.Length);

    [Test]
    public void LayoutMatchesReference()
    {
        var rng = new Random(1);
        int n = 3, c = 3, t = 13, v = 25, m = 2, size = n * c * t * v * m;
        Both("input->bn", [Rand(rng, size), Poison(size)], [1], (o, b) => o.InputToBnLayout(b[0], b[1], n, c, t, v, m));
        Both("input->bn bwd", [Rand(rng, size), Poison(size)], [1], (o, b) => o.InputToBnLayoutBackward(b[0], b[1], n, c, t, v, m));
        Both("bn->block", [Rand(rng, size), Poison(size)], [1], (o, b) => o.BnToBlockLayout(b[0], b[1], n * m, c, t, v));
        Both("bn->block bwd", [Rand(rng, size), Poison(size)], [1], (o, b) => o.BnToBlockLayoutBackward(b[0], b[1], n * m, c, t, v));
    }

    [Test]
    public void BatchNormMatchesReference()
    {
        var rng = new Random(2);
        int b = 3, c = 7, l = 13 * 25, size = b * c * l;
        var x = Rand(rng, size, 2f);
        for (int i = 0; i < size; i++) x[i] += 3f; // offset mean, as skeleton coordinates have
        // buffers: x, gamma, beta, y, mean, rstd, runMean, runVar, dy, dx, dGamma, dBeta
        float[][] bufs = [x, Rand(rng, c), Rand(rng, c), Poison(size), Poison(c), Poison(c), Rand(rng, c), Rand(rng, c, 0.5f).Select(v => v + 1f).ToArray(),
            Rand(rng, size), Poison(size), Rand(rng, c), Rand(rng, c)];
        Both("bn train", bufs, [3, 4, 5, 6, 7, 9, 10, 11], (o, q) =>
        {
            o.BatchNormTrainForward(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], b, c, l, 1e-5, 0.1);
            o.BatchNormBackward(q[8], q[0], q[1], q[4], q[5], q[9], q[10], q[11], b, c, l);
        });
        Both("bn eval", bufs, [3], (o, q) => o.BatchNormEvalForward(q[0], q[1], q[2], q[3], q[6], q[7], b, c, l, 1e-5));
    }

    [TestCase(1, 1, 1)]   // the classifier: T = V = 1
    [TestCase(1, 11, 25)]
    [TestCase(2, 11, 25)]
    [TestCase(2, 12, 25)]
    public void Conv1x1MatchesReference(int stride, int t, int v)
    {
        var rng = new Random(3 + stride + t);
        int b = 3, cin = 5, cout = 21, tout = (t - 1) / stride + 1;
        float[][] bufs = [Rand(rng, b * cin * t * v), Rand(rng, cout * cin), Rand(rng, cout), Poison(b * cout * tout * v),
            Rand(rng, b * cout * tout * v), Poison(b * cin * t * v), Rand(rng, cout * cin), Rand(rng, cout)];
        Both("conv1x1", bufs, [3, 5, 6, 7], (o, q) =>
        {
            o.Conv1x1Forward(q[0], q[1], q[2], q[3], b, cin, cout, t, v, stride);
            o.Conv1x1Backward(q[4], q[0], q[1], q[5], q[6], q[7], b, cin, cout, t, v, stride);
        });
    }

    [TestCase(false)]
    [TestCase(true)]
    public void GraphAggregateMatchesReference(bool ntuGraph)
    {
        // A dense random A, and the sparse NTU graph (the CPU tier loops over A's nonzeros only).
        var rng = new Random(4);
        int b = 3, k = 3, c = 5, t = 11, v = 25;
        var a = ntuGraph ? Graph.Ntu().AsFloat32() : Rand(rng, k * v * v);
        float[][] bufs = [Rand(rng, b * k * c * t * v), a, Rand(rng, k * v * v), Poison(b * c * t * v),
            Rand(rng, b * c * t * v), Poison(b * k * c * t * v), Rand(rng, k * v * v)];
        Both("graph", bufs, [3, 5, 6], (o, q) =>
        {
            o.GraphAggregateForward(q[0], q[1], q[2], q[3], b, k, c, t, v);
            o.GraphAggregateBackward(q[4], q[0], q[1], q[2], q[5], q[6], b, k, c, t, v);
        });
    }

    [TestCase(1, 3, 5)]     // T below the kernel's half-width: some taps see no input frame at all
    [TestCase(2, 3, 5)]
    [TestCase(1, 11, 5)]
    [TestCase(2, 11, 5)]
    [TestCase(2, 12, 5)]
    [TestCase(1, 64, 64)]   // 64·9 x 64·25 im2col floats per sample: the forward's GEMM chunks hold 2 of the 3 samples
    public void TemporalConvMatchesReference(int stride, int t, int cin)
    {
        var rng = new Random(5 + stride + t);
        int b = 3, cout = 7, v = 25, kt = 9, tout = (t + 8 - kt) / stride + 1;
        float[][] bufs = [Rand(rng, b * cin * t * v), Rand(rng, cout * cin * kt), Rand(rng, cout), Poison(b * cout * tout * v),
            Rand(rng, b * cout * tout * v), Poison(b * cin * t * v), Rand(rng, cout * cin * kt), Rand(rng, cout)];
        Both("tcn", bufs, [3, 5, 6, 7], (o, q) =>
        {
            o.TemporalConvForward(q[0], q[1], q[2], q[3], b, cin, cout, t, v, kt, stride);
            o.TemporalConvBackward(q[4], q[0], q[1], q[5], q[6], q[7], b, cin, cout, t, v, kt, stride);
        });
    }

    [Test]
    public void ElementwisePoolAndLossMatchReference()
    {
        var rng = new Random(6);
        int n = 100_003; // crosses the parallel chunk size with a SIMD tail
        float[][] e = [Rand(rng, n), Rand(rng, n), Poison(n), Rand(rng, n), Poison(n), Poison(n)];
        Both("relu", e, [2, 4], (o, q) => { o.ReluForward(q[0], q[2]); o.ReluBackward(q[3], q[2], q[4]); });
        Both("residual", e, [2, 4, 5], (o, q) => { o.ResidualReluForward(q[0], q[1], q[2]); o.ResidualReluBackward(q[3], q[2], q[4], q[5]); });
        Both("residual none", e, [2, 4], (o, q) => { o.ResidualReluForward(q[0], null, q[2]); o.ResidualReluBackward(q[3], q[2], q[4], null); });

        int nn = 3, m = 2, c = 7, l = 13 * 25;
        float[][] p = [Rand(rng, nn * m * c * l), Poison(nn * c), Rand(rng, nn * c), Poison(nn * m * c * l)];
        Both("pool", p, [1, 3], (o, q) => { o.PoolForward(q[0], q[1], nn, m, c, l); o.PoolBackward(q[2], q[3], nn, m, c, l); });

        int k = 5;
        int[] y = [1, 4, 0];
        float[][] z = [Rand(rng, nn * k, 3f), Poison(nn * k)];
        double lr = 0, lc = 0;
        Both("ce", z, [1], (o, q) => { double loss = o.CrossEntropy(q[0], y, q[1], nn, k); if (o is StGcnCpuOps) lc = loss; else lr = loss; });
        Assert.That(double.IsFinite(lr), Is.True, $"reference loss {lr}");
        Assert.That(lc, Is.EqualTo(lr).Within(1e-6 * Math.Abs(lr)));
    }

    [Test]
    public void AddMatchesReference()
    {
        var rng = new Random(7);
        int n = 100_003; // crosses the parallel chunk size with a SIMD tail
        Both("add", [Rand(rng, n), Rand(rng, n)], [1], (o, q) => o.AddInPlace(q[0], q[1]));
    }

    [TestCase("reference")]
    [TestCase("cpu")]
    public void SgdStepFollowsPyTorch(string backend)
    {
        // torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True), two steps of g = 0.5 from p = 1,
        // by hand: d = 0.51, buf = 0.51, p = 1 - 0.1 (0.51 + 0.9*0.51) = 0.9031; d = 0.509031, buf = 0.968031,
        // p = 0.9031 - 0.1 (0.509031 + 0.9*0.968031) = 0.76507411. 70_001 elements: several parallel chunks.
        var ops = StGcnParity.Backend(backend);
        int n = 70_001;
        var p = ops.Adopt(Enumerable.Repeat(1f, n).ToArray());
        var g = ops.Adopt(Enumerable.Repeat(0.5f, n).ToArray());
        var buf = ops.Allocate(n);
        ops.SgdNesterovStep(p, g, buf, 0.1, 0.9, 0.01);
        var got = new float[n];
        ops.Download(p, got);
        Assert.That(got, Is.All.EqualTo(0.9031f).Within(1e-6f));
        ops.SgdNesterovStep(p, g, buf, 0.1, 0.9, 0.01);
        ops.Download(p, got);
        Assert.That(got, Is.All.EqualTo(0.76507411f).Within(1e-6f));
        Assert.That(() => ops.SgdNesterovStep(p, g, ops.Allocate(3), 0.1, 0.9, 0.01), Throws.ArgumentException.With.Message.Contains("equal lengths"));
    }

    [TestCase("reference")]
    [TestCase("cpu")]
    public void MemoryOpsShareTheAdoptedArray(string backend)
    {
        var ops = StGcnParity.Backend(backend);
        float[] host = [1, 2, 3, 4, 5];
        var t = ops.Adopt(host);
        var v = ops.View(t, 1, 3);
        ops.Zero(v);
        Assert.That(host, Is.EqualTo(new float[] { 1, 0, 0, 0, 5 }), "a host tier adopts the array itself");
        ops.Upload([7, 8], ops.View(v, 1, 2));
        host[0] = 9;
        var back = new float[5];
        ops.Download(t, back);
        Assert.That(back, Is.EqualTo(new float[] { 9, 0, 7, 8, 5 }));
        Assert.That(() => ops.View(t, 3, 3), Throws.ArgumentException.With.Message.Contains("outside a tensor of 5"));
        Assert.That(() => ops.Upload([1f, 2f], v), Throws.ArgumentException.With.Message.Contains("upload of 2 values"));
        var a = ops.Allocate(4);
        var z = new float[4];
        Array.Fill(z, float.NaN);
        ops.Download(a, z);
        Assert.That(z, Is.All.EqualTo(0f));
    }

    [Test]
    public void ShapeErrorsNameTheTensor()
    {
        var ex = Assert.Throws<ArgumentException>(() => _cpu.Conv1x1Forward(Wrap(new float[9]), Wrap(new float[6]), Wrap(new float[3]), Wrap(new float[100]), 1, 2, 3, 5, 1, 1));
        Assert.That(ex!.Message, Does.Contain("x holds 9 elements, expected at least 10"));
    }
}
