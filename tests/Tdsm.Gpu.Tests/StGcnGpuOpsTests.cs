using Tdsm.Gpu.StGcn;
using Tdsm.StGcn;
using Tdsm.StGcn.Reference;
using Tdsm.Tensors;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// Every ST-GCN GPU op, forward and backward, through the tier's tensor interface against the reference tier
/// (<see cref="StGcnReferenceOps"/>) at tiny, odd sizes (channel counts and T·V across the conv GEMM's blocks
/// in both block shapes, odd T and V, stride 2, T·V over the 256-element reduction segment), on ILGPU's CPU simulator (CI) and on CUDA when present. Outputs
/// are poisoned with NaN first, accumulated gradients start from random values. Tolerance per
/// element: |gpu − ref| ≤ 1e-5 + 1e-4·|ref|; for the convolutions (sums of up to thousands of products)
/// 1e-6 + 1e-5·Σ|terms| instead.
/// </summary>
[TestFixture("simulator")]
[TestFixture("cuda")]
[NonParallelizable]
public class StGcnGpuOpsTests(string device) : StGcnOpsFixture(device)
{
    private readonly StGcnReferenceOps _ref = new();
    private Rng _rng = null!;

    [SetUp] public void Seed() => _rng = new Rng(4321);

    /// <summary>A host array, a host tensor over it (for the reference tier) and a device copy.</summary>
    private sealed record Pair(float[] H, Tensor R, Tensor G);

    private Pair Up(float[] v)
    {
        var h = (float[])v.Clone();
        return new Pair(h, new HostTensor(h, 0, h.Length), Gpu.Adopt(v));
    }

    private Pair Rand(int n, double scale = 1) { var a = new float[n]; _rng.FillNormal(a, scale); return Up(a); }

    private Pair Nan(int n) => Up(Enumerable.Repeat(float.NaN, n).ToArray());

    private void Same(Pair p, string what)
    {
        var g = new float[p.H.Length];
        Gpu.Download(p.G, g);
        for (int i = 0; i < g.Length; i++)
            Assert.That(Math.Abs(g[i] - p.H[i]), Is.Not.NaN.And.LessThanOrEqualTo(1e-5 + 1e-4 * Math.Abs(p.H[i])), $"{what}[{i}]: gpu {g[i]} vs reference {p.H[i]}");
    }

    [Test]
    public void LayoutsForwardAndBackward()
    {
        int n = 2, c = 3, t = 5, v = 7, m = 2, s = n * c * t * v * m;
        var x = Rand(s); var y = Nan(s); var z = Nan(s);
        Gpu.InputToBnLayout(x.G, y.G, n, c, t, v, m); _ref.InputToBnLayout(x.R, y.R, n, c, t, v, m); Gpu.Accelerator.Synchronize(); Same(y, "bn layout");
        Gpu.BnToBlockLayout(y.G, z.G, n * m, c, t, v); _ref.BnToBlockLayout(y.R, z.R, n * m, c, t, v); Gpu.Accelerator.Synchronize(); Same(z, "block layout");
        var dz = Rand(s); var dy = Nan(s); var dx = Nan(s);
        Gpu.BnToBlockLayoutBackward(dz.G, dy.G, n * m, c, t, v); _ref.BnToBlockLayoutBackward(dz.R, dy.R, n * m, c, t, v); Gpu.Accelerator.Synchronize(); Same(dy, "block layout'");
        Gpu.InputToBnLayoutBackward(dy.G, dx.G, n, c, t, v, m); _ref.InputToBnLayoutBackward(dy.R, dx.R, n, c, t, v, m); Gpu.Accelerator.Synchronize(); Same(dx, "bn layout'");
    }

    [TestCase(3, 5, 7)]
    [TestCase(2, 75, 11)]
    [TestCase(2, 3, 600)] // L over several 256-element reduction segments, the last one partial
    public void BatchNormTrainEvalAndBackward(int b, int c, int l)
    {
        int s = b * c * l;
        var x = Rand(s, 2); for (int i = 0; i < s; i++) x.H[i] += 3; Gpu.Upload(x.H, x.G); // off-centre, as real activations
        var gamma = Rand(c); var beta = Rand(c); var y = Nan(s); var mean = Nan(c); var rstd = Nan(c);
        var rm = Rand(c, 0.1); var rv = Up(Enumerable.Range(0, c).Select(i => 1f + 0.01f * i).ToArray());
        Gpu.BatchNormTrainForward(x.G, gamma.G, beta.G, y.G, mean.G, rstd.G, rm.G, rv.G, b, c, l, 1e-5, 0.1);
        _ref.BatchNormTrainForward(x.R, gamma.R, beta.R, y.R, mean.R, rstd.R, rm.R, rv.R, b, c, l, 1e-5, 0.1);
        Gpu.Accelerator.Synchronize();
        Same(y, "y"); Same(mean, "saved mean"); Same(rstd, "saved rstd"); Same(rm, "running mean"); Same(rv, "running var");
        var dy = Rand(s); var dx = Nan(s); var dg = Rand(c); var db = Rand(c);
        Gpu.BatchNormBackward(dy.G, x.G, gamma.G, mean.G, rstd.G, dx.G, dg.G, db.G, b, c, l);
        _ref.BatchNormBackward(dy.R, x.R, gamma.R, mean.R, rstd.R, dx.R, dg.R, db.R, b, c, l);
        Gpu.Accelerator.Synchronize();
        Same(dx, "dx"); Same(dg, "dGamma (accumulated)"); Same(db, "dBeta (accumulated)");
        var ye = Nan(s);
        Gpu.BatchNormEvalForward(x.G, gamma.G, beta.G, ye.G, rm.G, rv.G, b, c, l, 1e-5);
        _ref.BatchNormEvalForward(x.R, gamma.R, beta.R, ye.R, rm.R, rv.R, b, c, l, 1e-5);
        Gpu.Accelerator.Synchronize();
        Same(ye, "eval y");
    }

    [TestCase(3, 5, 7, 7, 5, 1)]
    [TestCase(2, 3, 70, 9, 3, 2)]
    [TestCase(5, 6, 4, 1, 1, 1)] // the classifier: T = V = 1
    // Past one block (ConvGemm: 128x128 "square", 64x256 "wide" blocks, the smaller padding wins):
    [TestCase(2, 20, 150, 9, 17, 1)]  // forward wide 3 row blocks, dx wide, dW swapped (wide)
    [TestCase(3, 6, 200, 40, 25, 1)]  // forward square 2x8 blocks, dx wide 4 column blocks, dW swapped in 2 K-splits
    [TestCase(2, 140, 3, 9, 29, 2)]   // dx square 2x3 blocks, strided
    [TestCase(3, 40, 70, 30, 25, 1)]  // dW square in 2 K-splits (a split boundary inside a sample)
    public void Conv1x1ForwardAndBackward(int b, int cin, int cout, int t, int v, int stride)
    {
        int tout = (t - 1) / stride + 1;
        var x = Rand(b * cin * t * v); var w = Rand(cout * cin); var bias = Rand(cout); var y = Nan(b * cout * tout * v);
        Gpu.Conv1x1Forward(x.G, w.G, bias.G, y.G, b, cin, cout, t, v, stride); _ref.Conv1x1Forward(x.R, w.R, bias.R, y.R, b, cin, cout, t, v, stride);
        var yScale = new double[y.H.Length];
        Ref.Conv1x1Forward<double>(Abs(x), Abs(w), Abs(bias), yScale, b, cin, cout, t, v, stride);
        Gpu.Accelerator.Synchronize(); Close(y, yScale, "y");
        var dy = Rand(y.H.Length); var dx = Nan(x.H.Length); var dw = Rand(w.H.Length); var dbias = Rand(cout);
        var dxScale = new double[dx.H.Length]; var dwScale = Abs(dw); var dbScale = Abs(dbias);
        Ref.Conv1x1Backward<double>(Abs(dy), Abs(x), Abs(w), dxScale, dwScale, dbScale, b, cin, cout, t, v, stride);
        Gpu.Conv1x1Backward(dy.G, x.G, w.G, dx.G, dw.G, dbias.G, b, cin, cout, t, v, stride);
        _ref.Conv1x1Backward(dy.R, x.R, w.R, dx.R, dw.R, dbias.R, b, cin, cout, t, v, stride);
        Gpu.Accelerator.Synchronize(); Close(dx, dxScale, "dx"); Close(dw, dwScale, "dW (accumulated)"); Close(dbias, dbScale, "dBias (accumulated)");
    }

    private static double[] Abs(Pair p) => p.H.Select(f => (double)Math.Abs(f)).ToArray();

    /// <summary>A sum of many products: |gpu − reference| ≤ 1e-5 · (Σ |terms|), the per-element sum of absolute terms
    /// (the same op on absolute values, in float64) — an fp32 sum of K terms errs by about √K·6e-8 of that for random
    /// signs, and K ≤ 3000 here; a wrong or missing term is off by about the size of one term.</summary>
    private void Close(Pair p, double[] scale, string what)
    {
        var g = new float[p.H.Length];
        Gpu.Download(p.G, g);
        for (int i = 0; i < g.Length; i++)
            Assert.That(Math.Abs(g[i] - p.H[i]), Is.Not.NaN.And.LessThanOrEqualTo(1e-6 + 1e-5 * scale[i]), $"{what}[{i}]: gpu {g[i]} vs reference {p.H[i]} (Σ|terms| {scale[i]})");
    }

    [TestCase(2, 3, 5, 11, 3, 9, 1)]
    [TestCase(3, 4, 6, 12, 5, 9, 2)]
    [TestCase(2, 5, 3, 7, 3, 3, 2)]
    [TestCase(2, 3, 4, 23, 13, 9, 1)] // T·V = 299: the bias gradient's reduction spans two segments
    [TestCase(2, 130, 20, 20, 13, 9, 2)] // dx square 2x3 blocks, strided; dW wide 5 column blocks
    [TestCase(2, 130, 136, 10, 27, 3, 1)] // forward, dx square 2x3 blocks; dW wide 3x2 blocks
    [TestCase(2, 40, 60, 24, 11, 9, 2)] // dx wide 2 column blocks, strided
    [TestCase(3, 16, 40, 30, 25, 9, 1)] // dW wide in 2 K-splits
    public void TemporalConvForwardAndBackward(int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int pad = (kt - 1) / 2, tout = (t + 2 * pad - kt) / stride + 1;
        var x = Rand(b * cin * t * v); var w = Rand(cout * cin * kt); var bias = Rand(cout); var y = Nan(b * cout * tout * v);
        Gpu.TemporalConvForward(x.G, w.G, bias.G, y.G, b, cin, cout, t, v, kt, stride);
        _ref.TemporalConvForward(x.R, w.R, bias.R, y.R, b, cin, cout, t, v, kt, stride);
        var yScale = new double[y.H.Length];
        Ref.TemporalConvForward<double>(Abs(x), Abs(w), Abs(bias), yScale, b, cin, cout, t, v, kt, stride);
        Gpu.Accelerator.Synchronize(); Close(y, yScale, "y");
        var dy = Rand(y.H.Length); var dx = Nan(x.H.Length); var dw = Rand(w.H.Length); var dbias = Rand(cout);
        var dxScale = new double[dx.H.Length]; var dwScale = Abs(dw); var dbScale = Abs(dbias);
        Ref.TemporalConvBackward<double>(Abs(dy), Abs(x), Abs(w), dxScale, dwScale, dbScale, b, cin, cout, t, v, kt, stride);
        Gpu.TemporalConvBackward(dy.G, x.G, w.G, dx.G, dw.G, dbias.G, b, cin, cout, t, v, kt, stride);
        _ref.TemporalConvBackward(dy.R, x.R, w.R, dx.R, dw.R, dbias.R, b, cin, cout, t, v, kt, stride);
        Gpu.Accelerator.Synchronize(); Close(dx, dxScale, "dx"); Close(dw, dwScale, "dW (accumulated)"); Close(dbias, dbScale, "dBias (accumulated)");
    }

    [TestCase(2, 3, 3, 4, 5)]
    [TestCase(3, 3, 2, 3, 25)]
    [TestCase(2, 3, 5, 29, 25)]   // 145 rows per sample: tiles of 64 with a short last one, 3 splits per sample
    [TestCase(3, 2, 3, 50, 7)]    // K < 3: rows per tile still capped by the dO tile
    [TestCase(16, 3, 1, 2560, 5)] // 40 tiles per sample, 2 per split: tiles summed within one partial
    [TestCase(2, 1, 2, 20, 48)]   // V 48: 12 column groups, so a thread takes two tasks of the forward and input gradient
    public void GraphAggregateForwardAndBackward(int b, int k, int c, int t, int v)
    {
        var y = Rand(b * k * c * t * v); var a = Rand(k * v * v); var imp = Rand(k * v * v); var o = Nan(b * c * t * v);
        Gpu.GraphAggregateForward(y.G, a.G, imp.G, o.G, b, k, c, t, v); _ref.GraphAggregateForward(y.R, a.R, imp.R, o.R, b, k, c, t, v);
        Gpu.Accelerator.Synchronize(); Same(o, "o");
        var dO = Rand(o.H.Length); var dy = Nan(y.H.Length); var dImp = Rand(imp.H.Length);
        Gpu.GraphAggregateBackward(dO.G, y.G, a.G, imp.G, dy.G, dImp.G, b, k, c, t, v);
        _ref.GraphAggregateBackward(dO.R, y.R, a.R, imp.R, dy.R, dImp.R, b, k, c, t, v);
        Gpu.Accelerator.Synchronize(); Same(dy, "dy"); Same(dImp, "dImportance (accumulated)");
    }

    /// <summary>The graph kernels through ptxas (TDSM_PTXAS; TDSM_PTX_KEEP=DIR keeps the PTX and cubin for their SASS): no stack frame, no spills.</summary>
    [TestCase(nameof(Tdsm.Kernels.StGcn.GraphAggregate.Forward))]
    [TestCase(nameof(Tdsm.Kernels.StGcn.GraphAggregate.InputGrad))]
    [TestCase(nameof(Tdsm.Kernels.StGcn.GraphAggregate.ImportancePartial))]
    public void GraphKernelAssemblesWithoutStackOrSpills(string kernel) =>
        Tdsm.Gpu.Tests.Ptxas.AssertAssemblesWithoutSpills(Tdsm.Gpu.Tests.Ptxas.Binary is null ? ""
            : Tdsm.Gpu.Tests.PtxCompiler.CompileOne(typeof(Tdsm.Kernels.StGcn.GraphAggregate).GetMethod(kernel)!, ILGPU.Runtime.KernelSpecialization.Empty),
            "GraphAggregate." + kernel);

    [Test]
    public void ReluResidualAndAdd()
    {
        int s = 103;
        var x = Rand(s); var r = Rand(s); var y = Nan(s); var y0 = Nan(s); var yr = Nan(s);
        Gpu.ReluForward(x.G, y.G); _ref.ReluForward(x.R, y.R);
        Gpu.ResidualReluForward(x.G, r.G, yr.G); _ref.ResidualReluForward(x.R, r.R, yr.R);
        Gpu.ResidualReluForward(x.G, null, y0.G); _ref.ResidualReluForward(x.R, null, y0.R);
        Gpu.Accelerator.Synchronize(); Same(y, "relu"); Same(yr, "residual relu"); Same(y0, "residual relu without residual");
        var dy = Rand(s); var dx = Nan(s); var da = Nan(s); var dr = Nan(s);
        Gpu.ReluBackward(dy.G, y.G, dx.G); _ref.ReluBackward(dy.R, y.R, dx.R);
        Gpu.ResidualReluBackward(dy.G, yr.G, da.G, dr.G); _ref.ResidualReluBackward(dy.R, yr.R, da.R, dr.R);
        Gpu.Accelerator.Synchronize(); Same(dx, "relu'"); Same(da, "da"); Same(dr, "dr");
        Gpu.AddInPlace(dx.G, da.G);
        for (int i = 0; i < s; i++) da.H[i] += dx.H[i];
        Gpu.Accelerator.Synchronize(); Same(da, "add");
    }

    /// <summary>The pool (a warp per output: rows shorter and longer than the warp, a last group of fewer outputs than warps) and its backward.</summary>
    [TestCase(3, 2, 5, 13)]
    [TestCase(2, 2, 9, 77)]
    [TestCase(1, 1, 3, 1875)]
    public void PoolAndItsBackward(int n, int m, int c, int l)
    {
        var x = Rand(n * m * c * l); var f = Nan(n * c);
        Gpu.PoolForward(x.G, f.G, n, m, c, l); _ref.PoolForward(x.R, f.R, n, m, c, l);
        Gpu.Accelerator.Synchronize(); Same(f, "pool");
        var df = Rand(n * c); var dx = Nan(x.H.Length);
        Gpu.PoolBackward(df.G, dx.G, n, m, c, l); _ref.PoolBackward(df.R, dx.R, n, m, c, l);
        Gpu.Accelerator.Synchronize(); Same(dx, "pool'");
    }

    [Test]
    public void CrossEntropyAndSgd()
    {
        int n = 3, k = 7;
        var logits = Rand(n * k, 3); var dl = Nan(n * k); int[] labels = [6, 0, 3];
        double lg = Gpu.CrossEntropy(logits.G, labels, dl.G, n, k), lr = _ref.CrossEntropy(logits.R, labels, dl.R, n, k);
        Assert.That(double.IsFinite(lr), Is.True, $"reference loss {lr}");
        Assert.That(lg, Is.EqualTo(lr).Within(1e-6 * Math.Abs(lr) + 1e-7), "loss");
        Same(dl, "dLogits");
        Assert.That(() => Gpu.CrossEntropy(logits.G, [7, 0, 0], dl.G, n, k), Throws.TypeOf<ArgumentOutOfRangeException>());

        int np = 101;
        var p = Rand(np); var g = Rand(np); var buf = Up(new float[np]);
        var host = new SgdNesterov(np, 0.9, 1e-4);
        for (int step = 0; step < 3; step++)
        {
            Gpu.SgdNesterovStep(p.G, g.G, buf.G, 0.1, 0.9, 1e-4);
            host.Step(p.H, g.H, 0.1);
        }
        Gpu.Accelerator.Synchronize(); Same(p, "parameters after 3 SGD steps");
    }

    [Test]
    public void MemoryOps()
    {
        float[] host = [1, 2, 3, 4, 5];
        var t = Gpu.Adopt(host);
        host[0] = 99; // a device tier copies: the tensor keeps the adopted values
        var v = Gpu.View(t, 1, 3);
        Gpu.Zero(v);
        Gpu.Upload([7, 8], Gpu.View(v, 1, 2));
        var back = new float[5];
        Gpu.Download(t, back);
        Assert.That(back, Is.EqualTo(new float[] { 1, 0, 7, 8, 5 }));
        var a = Gpu.Allocate(6);
        var z = Enumerable.Repeat(float.NaN, 6).ToArray();
        Gpu.Download(a, z);
        Assert.That(z, Is.All.EqualTo(0f), "Allocate zero-fills");
        Assert.That(() => Gpu.View(t, 3, 3), Throws.ArgumentException.With.Message.Contains("outside a tensor of 5"));
        Assert.That(() => Gpu.Upload([1f, 2f], v), Throws.ArgumentException.With.Message.Contains("upload of 2 values"));
        Assert.That(() => Gpu.ReluForward(new HostTensor(5), t), Throws.ArgumentException.With.Message.Contains("device tensors"));
        Gpu.Free(a);
        Assert.That(() => Gpu.Free(a), Throws.ArgumentException.With.Message.Contains("freed already"));
        Assert.That(() => Gpu.Free(v), Throws.ArgumentException.With.Message.Contains("not allocated by this op set"));
    }

    [Test]
    public void ShapesAreCheckedOnTheHost()
    {
        var x = Rand(10); var y = Nan(10);
        Assert.That(() => Gpu.TemporalConvForward(x.G, x.G, x.G, y.G, 1, 2, 2, 5, 1, 9, 1), Throws.ArgumentException.With.Message.Contains("TemporalConvForward"));
        Assert.That(() => Gpu.BatchNormTrainForward(x.G, x.G, x.G, y.G, x.G, x.G, x.G, x.G, 2, 3, 4, 1e-5, 0.1), Throws.ArgumentException.With.Message.Contains("x has 10"));
    }
}
