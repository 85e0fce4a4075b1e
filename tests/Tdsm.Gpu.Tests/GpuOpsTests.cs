using Tdsm.Formats;
using Tdsm.Gpu;
using Tdsm.Ops;
using Tdsm.Parity;
using Tdsm.Reference;
using Tdsm.Tensors;
using Tdsm.Tests;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// Every GPU kernel against the reference tier at tiny, odd sizes (that do not divide the GEMM
/// tile, the warp or the attention group), on ILGPU's CPU simulator so CI runs them; the same
/// checks run on CUDA when a device exists. Outputs are poisoned with NaN first so an unwritten
/// element fails. Tolerance per element: |gpu − ref| ≤ 1e-5 + 1e-4·|ref| (float32 kernels with
/// different summation order than the float64-accumulating reference).
/// </summary>
[TestFixture("simulator")]
[TestFixture("cuda")]
[NonParallelizable]
public class GpuOpsTests(string device) : GpuOpsFixture(device)
{
    private readonly ReferenceOps _ref = new();
    private Rng _rng = null!;

    [SetUp] public void Seed() => _rng = new Rng(1234);

    private float[] R(int n, double scale = 1) { var a = new float[n]; _rng.FillNormal(a, scale); return a; }

    private (Tensor G, Tensor C) Pair(float[] v, params int[] shape)
    {
        var g = Gpu.Allocate(shape); Gpu.Upload(v, g);
        var c = _ref.Allocate(shape); _ref.Upload(v, c);
        return (g, c);
    }

    private (Tensor G, Tensor C) Out(params int[] shape) => Pair(Enumerable.Repeat(float.NaN, shape.Aggregate(1, (a, b) => a * b)).ToArray(), shape);

    private void AssertSame((Tensor G, Tensor C) t, string what)
    {
        var g = new float[t.G.Length]; var c = new float[t.C.Length];
        Gpu.Download(t.G, g); _ref.Download(t.C, c);
        for (int i = 0; i < g.Length; i++)
            Assert.That(Math.Abs(g[i] - c[i]), Is.Not.NaN.And.LessThanOrEqualTo(1e-5 + 1e-4 * Math.Abs(c[i])), $"{what}[{i}]: gpu {g[i]} vs reference {c[i]}");
    }

    [TestCase(1, 1, 1)]
    [TestCase(5, 7, 3)]
    [TestCase(67, 70, 19)]
    public void LinearForwardAndBackward(int rows, int inF, int outF)
    {
        var x = Pair(R(rows * inF), rows, inF); var w = Pair(R(outF * inF), outF, inF); var b = Pair(R(outF), outF);
        var y = Out(rows, outF);
        Gpu.Linear(x.G, w.G, b.G, y.G, rows, inF, outF); _ref.Linear(x.C, w.C, b.C, y.C, rows, inF, outF);
        AssertSame(y, "y");
        var dy = Pair(R(rows * outF), rows, outF);
        var dx = Pair(R(rows * inF), rows, inF); var dw = Pair(R(outF * inF), outF, inF); var db = Pair(R(outF), outF);
        Gpu.LinearBackward(dy.G, x.G, w.G, dx.G, dw.G, db.G, rows, inF, outF, true);
        _ref.LinearBackward(dy.C, x.C, w.C, dx.C, dw.C, db.C, rows, inF, outF, true);
        AssertSame(dx, "dx (accumulated)"); AssertSame(dw, "dW"); AssertSame(db, "db");
        var dx2 = Out(rows, inF);
        Gpu.LinearBackward(dy.G, x.G, w.G, dx2.G, dw.G, null, rows, inF, outF, false);
        _ref.LinearBackward(dy.C, x.C, w.C, dx2.C, dw.C, null, rows, inF, outF, false);
        AssertSame(dx2, "dx (overwritten)");
    }

    // A fused epilogue's output against the same ops run separately, both on the device: 1e-6 relative (+1e-7).
    private void AssertFusedMatches(Tensor fused, Tensor separate, string what)
    {
        var f = new float[fused.Length]; var s = new float[separate.Length];
        Gpu.Download(fused, f); Gpu.Download(separate, s);
        for (int i = 0; i < f.Length; i++)
            Assert.That(Math.Abs(f[i] - s[i]), Is.Not.NaN.And.LessThanOrEqualTo(1e-6 * Math.Abs(s[i]) + 1e-7), $"{what}[{i}]: fused {f[i]} vs separate {s[i]}");
    }

    /// <summary>
    /// The fused fc1 + GELU (the GEMMs' GELU epilogue) against Linear then GeluTanh on the device: the same float32
    /// operations on the same sums, so equal on the simulator; ptxas may contract the GELU's multiply-adds differently
    /// in the two kernels on CUDA, hence 1e-6 relative. Every GEMM path: fp32 (one pass, and split-K with the GELU in
    /// the reduction) and the bf16 / tf32 tensor-core kernels; fp32 also against the reference tier.
    /// </summary>
    [TestCase(GemmPrecision.Fp32, 67, 70, 19)]
    [TestCase(GemmPrecision.Fp32, 3, 2000, 5)]
    [TestCase(GemmPrecision.Bf16, 67, 70, 19)]
    [TestCase(GemmPrecision.Tf32, 40, 33, 130)]
    public void LinearGeluIsLinearThenGelu(GemmPrecision precision, int rows, int inF, int outF)
    {
        if (rows == 3) Assert.That(Tdsm.Kernels.Gemm.SplitK(rows, outF, inF).Splits, Is.GreaterThan(1), "this shape must take the split-K path");
        var x = Pair(R(rows * inF), rows, inF); var w = Pair(R(outF * inF, 0.2), outF, inF); var b = Pair(R(outF), outF);
        var fused = Out(rows, outF); var pre = Out(rows, outF); var sep = Out(rows, outF);
        Gpu.GemmPrecision = precision;
        try
        {
            Gpu.LinearGelu(x.G, w.G, b.G, fused.G, rows, inF, outF);
            Gpu.Linear(x.G, w.G, b.G, pre.G, rows, inF, outF);
            Gpu.GeluTanh(pre.G, sep.G);
        }
        finally { Gpu.GemmPrecision = GemmPrecision.Fp32; }
        AssertFusedMatches(fused.G, sep.G, "y (Linear + GELU)");
        if (precision != GemmPrecision.Fp32) return;
        _ref.LinearGelu(x.C, w.C, b.C, fused.C, rows, inF, outF);
        AssertSame(fused, "LinearGelu vs the reference tier");
    }

    /// <summary>
    /// The MLP backward's fused dx GEMM (GELU' in the epilogue) against LinearBackward then GeluTanhBackward on the
    /// device, as <see cref="LinearGeluIsLinearThenGelu"/> (equal on the simulator, 1e-6 relative for ptxas's
    /// contractions on CUDA), on every GEMM path: fp32 one pass and split-K (the GELU' in the reduction), bf16, tf32.
    /// dW and db, untouched by the fusion, must be equal too; fp32 also against the reference tier.
    /// </summary>
    [TestCase(GemmPrecision.Fp32, 67, 70, 19)]
    [TestCase(GemmPrecision.Fp32, 3, 5, 2000)]
    [TestCase(GemmPrecision.Bf16, 67, 70, 19)]
    [TestCase(GemmPrecision.Tf32, 40, 130, 33)]
    public void LinearBackwardGeluIsLinearBackwardThenGeluBackward(GemmPrecision precision, int rows, int inF, int outF)
    {
        if (rows == 3) Assert.That(Tdsm.Kernels.Gemm.SplitK(rows, inF, outF).Splits, Is.GreaterThan(1), "the dx GEMM must take the split-K path");
        var pre = Pair(R(rows * inF, 2), rows, inF); var x = Pair(R(rows * inF), rows, inF); var w = Pair(R(outF * inF, 0.2), outF, inF);
        var dy = Pair(R(rows * outF), rows, outF);
        float[] dw0 = R(outF * inF), db0 = R(outF); // both paths accumulate onto the same starting gradients
        var dPre = Out(rows, inF); var dw = Pair(dw0, outF, inF); var db = Pair(db0, outF);
        var dPre2 = Out(rows, inF); var dw2 = Pair(dw0, outF, inF); var db2 = Pair(db0, outF);
        Gpu.GemmPrecision = precision;
        try
        {
            Gpu.LinearBackwardGelu(dy.G, x.G, w.G, pre.G, dPre.G, dw.G, db.G, rows, inF, outF);
            Gpu.LinearBackward(dy.G, x.G, w.G, dPre2.G, dw2.G, db2.G, rows, inF, outF, false);
            Gpu.GeluTanhBackward(pre.G, dPre2.G, dPre2.G, false);
        }
        finally { Gpu.GemmPrecision = GemmPrecision.Fp32; }
        AssertFusedMatches(dPre.G, dPre2.G, "dPre"); AssertFusedMatches(dw.G, dw2.G, "dW"); AssertFusedMatches(db.G, db2.G, "db");
        if (precision != GemmPrecision.Fp32) return;
        _ref.LinearBackwardGelu(dy.C, x.C, w.C, pre.C, dPre.C, dw.C, db.C, rows, inF, outF);
        AssertSame(dPre, "dPre vs the reference tier"); AssertSame(dw, "dW vs the reference tier"); AssertSame(db, "db vs the reference tier");
    }

    [Test]
    public void Activations()
    {
        int n = 77;
        var x = Pair(R(n, 3), n); var dy = Pair(R(n), n);
        var y = Out(n); var dx = Out(n);
        Gpu.Silu(x.G, y.G); _ref.Silu(x.C, y.C); AssertSame(y, "silu");
        Gpu.SiluBackward(x.G, dy.G, dx.G, false); _ref.SiluBackward(x.C, dy.C, dx.C, false); AssertSame(dx, "silu'");
        Gpu.GeluTanh(x.G, y.G); _ref.GeluTanh(x.C, y.C); AssertSame(y, "gelu");
        Gpu.GeluTanhBackward(x.G, dy.G, dx.G, true); _ref.GeluTanhBackward(x.C, dy.C, dx.C, true); AssertSame(dx, "gelu' (accumulated)");
    }

    /// <summary>
    /// With bf16 (or tf32) products GeluTanh and its backward run Activations.GeluForwardFast / GeluBackwardFast, whose sigmoid
    /// is ex2.approx + rcp.approx on CUDA (the precise one on the simulator): against the reference tier over v in [−12, 12]
    /// (deep into both saturations), per element |gpu − ref| ≤ 1e-7 + 3e-6·|ref| (+ 2e-6·|dy| for the backward, whose two
    /// terms cancel near GELU's minimum), the bound FloatMath.SigmoidFast states (≲ 1e-6 relative where the sigmoid is not
    /// tiny) with room for the float32 GELU polynomial.
    /// </summary>
    [Test]
    public void GeluOnTheBf16PathIsWithinItsErrorBound()
    {
        int n = 4801;
        var v = Enumerable.Range(0, n).Select(i => -12f + 24f * i / (n - 1)).ToArray();
        var x = Pair(v, n); var dy = Pair(R(n), n);
        var y = Out(n); var dx = Out(n);
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        try
        {
            Gpu.GeluTanh(x.G, y.G);
            Gpu.GeluTanhBackward(x.G, dy.G, dx.G, false);
        }
        finally { Gpu.GemmPrecision = GemmPrecision.Fp32; }
        _ref.GeluTanh(x.C, y.C); _ref.GeluTanhBackward(x.C, dy.C, dx.C, false);
        var dyHost = new float[n];
        _ref.Download(dy.C, dyHost);
        foreach (var (t, what) in new[] { (y, "gelu"), (dx, "gelu'") })
        {
            var g = new float[n]; var c = new float[n];
            Gpu.Download(t.G, g); _ref.Download(t.C, c);
            for (int i = 0; i < n; i++)
            {
                // GELU' = s + 2v·s(1 − s)·a(1 + 3bv²) cancels near its zero (v ≈ −0.75): its error is relative to the terms
                // (each below 2 in size), so dy·GELU' gets 2e-6·|dy| of absolute room besides the relative bound.
                double tol = 1e-7 + 3e-6 * Math.Abs(c[i]) + (what == "gelu'" ? 2e-6 * Math.Abs(dyHost[i]) : 0);
                Assert.That(Math.Abs(g[i] - c[i]), Is.Not.NaN.And.LessThanOrEqualTo(tol), $"{what}({v[i]}): bf16-path {g[i]} vs reference {c[i]}");
            }
        }
    }

    /// <summary>
    /// GeluTanh by 16-byte chunks (aligned views: Activations.GeluForward4 / GeluForwardFast4 / GeluForwardFastPacked4) gives the
    /// bits of the kernels a thread per element (views one float off alignment), in fp32 and bf16, and with packed products the
    /// same bf16 cast for the product after it (that product's output compared, tolerance 0).
    /// </summary>
    [TestCase(GemmPrecision.Fp32, false)]
    [TestCase(GemmPrecision.Bf16, false)]
    [TestCase(GemmPrecision.Bf16, true)]
    public void GeluByChunksGivesTheBitsOfGeluByElements(GemmPrecision precision, bool packed)
    {
        int rows = 24, cols = 40, n = rows * cols, outF = 8;
        var v = R(n, 3);
        var w = Gpu.Allocate(outF, cols); Gpu.Upload(R(outF * cols), w);
        var product = Gpu.Allocate(rows, outF);
        (float[] Y, float[] Product) Run(int offset)
        {
            var xs = Gpu.Allocate(n + 1); var ys = Gpu.Allocate(n + 1);
            var placed = new float[n + 1];
            Array.Copy(v, 0, placed, offset, n);   // the same values in x at either offset
            Gpu.Upload(placed, xs); Gpu.Upload(Enumerable.Repeat(float.NaN, n + 1).ToArray(), ys);
            Tensor x = Gpu.View(xs, offset, rows, cols), y = Gpu.View(ys, offset, rows, cols);
            Gpu.GemmPrecision = precision;
            Gpu.PackedGemm = packed ? PackedGemmKernel.Packed : PackedGemmKernel.Off;
            try
            {
                using (Gpu.BindParameters(w))
                {
                    Gpu.GeluTanh(x, y);
                    Gpu.Linear(y, w, null, product, rows, cols, outF);
                }
            }
            finally { Gpu.GemmPrecision = GemmPrecision.Fp32; Gpu.PackedGemm = PackedGemmKernel.Off; }
            float[] yh = new float[n], ph = new float[rows * outF];
            Gpu.Download(y, yh); Gpu.Download(product, ph);
            return (yh, ph);
        }
        var chunks = Run(0);
        var elements = Run(1);
        Assert.That(chunks.Y, Has.None.NaN, "every element written");
        Assert.That(chunks.Y.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(elements.Y.Select(BitConverter.SingleToInt32Bits)), "GELU by chunks vs by elements");
        Assert.That(chunks.Product.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(elements.Product.Select(BitConverter.SingleToInt32Bits)),
            "the product after the GELU (with packing: on its bf16 cast)");
    }

    /// <summary>
    /// Tensors smaller than an op needs are refused on the host with the op and operand named (on CUDA a kernel would
    /// otherwise write past a sub-view into the neighbouring tensor), and empty inputs launch nothing (CUDA refuses a
    /// grid of zero blocks; the simulator does not, so that half of the test bites on CUDA).
    /// </summary>
    [Test]
    public void UndersizedOperandsAreRefusedAndEmptyOpsLaunchNothing()
    {
        int b = 2, n = 3, h = 8, l = 3, heads = 2;
        var x = Gpu.Allocate(b * n * h); var mod = Gpu.Allocate(b * 6 * h); var small = Gpu.Allocate(b * n * h - 1);
        var stats = Gpu.Allocate(b * n); var fewStats = Gpu.Allocate(b * n - 1);
        Assert.Multiple(() =>
        {
            Assert.That(() => Gpu.Add(x, small, x), Throws.ArgumentException.With.Message.Contains("Add b"));
            Assert.That(() => Gpu.GeluTanh(x, small), Throws.ArgumentException.With.Message.Contains("GeluTanh y"));
            Assert.That(() => Gpu.SiluBackward(x, x, small, false), Throws.ArgumentException.With.Message.Contains("SiluBackward dx"));
            Assert.That(() => Gpu.LayerNormModulate(x, mod, 6, 0, 1, x, stats, fewStats, b, n, h),
                Throws.ArgumentException.With.Message.Contains("LayerNormModulate rstd"));
            Assert.That(() => Gpu.GatedResidual(x, mod, 6, 2, x, small, b, n, h), Throws.ArgumentException.With.Message.Contains("GatedResidual output"));
            var qkvX = Gpu.Allocate(b * 3 * h); var qkvU = Gpu.Allocate(b * l * 3 * h); var outX = Gpu.Allocate(b * h); var outU = Gpu.Allocate(b * l * h);
            var fewProbs = Gpu.Allocate(b * heads * (l + 1) * (l + 1) - 1);
            Assert.That(() => Gpu.JointAttention(qkvX, qkvU, fewProbs, outX, outU, b, l, h, heads),
                Throws.ArgumentException.With.Message.Contains("JointAttention probs"));
            Assert.That(() => Gpu.JointAttentionBackward(outX, outU, qkvX, qkvU, fewProbs, qkvX, qkvU, b, l, h, heads),
                Throws.ArgumentException.With.Message.Contains("JointAttentionBackward probs"));
            var t = Gpu.Allocate(b - 1);
            Assert.That(() => Gpu.QSample(x, x, t, [0.9f, 0.8f], x, b, h), Throws.ArgumentException.With.Message.Contains("QSample t"));
        });
        var empty = Gpu.Allocate(0);
        Assert.DoesNotThrow(() =>
        {
            Gpu.Add(empty, empty, empty); Gpu.GeluTanh(empty, empty); Gpu.SiluBackward(empty, empty, empty, true);
            Gpu.LayerNormModulate(empty, empty, 6, 0, 1, empty, empty, empty, 0, n, h);
            Gpu.GatedResidual(empty, empty, 6, 2, empty, empty, 0, n, h);
            Gpu.JointAttention(empty, empty, empty, empty, empty, 0, l, h, heads);
            Gpu.QSample(empty, empty, empty, [0.9f, 0.8f], empty, 0, h);
            Gpu.SampleNormal(empty, 1, 2); Gpu.NotEqual(empty, empty, empty);
            Gpu.Synchronize();
        });
    }

    [TestCase(3, 1, 37)]
    [TestCase(2, 5, 70)]   // 10 rows: the last group of four has two rows
    [TestCase(1, 1, 768)]  // one row: three idle warps in the group
    [TestCase(3, 4, 33)]   // 12 rows: whole groups
    [TestCase(2, 5, 128)]  // ForwardVec (H a multiple of 128): one float4 chunk per lane
    [TestCase(3, 3, 1024)] // ForwardVec: eight chunks per lane, the most it takes
    [TestCase(2, 35, 64)]  // the text stream's 35 tokens: the modulation gradient's loop 8 trips of four tokens and 3 after
    public void LayerNormModulateForwardAndBackward(int b, int n, int h)
    {
        int chunks = 6;
        var x = Pair(R(b * n * h, 2), b, n, h); var mod = Pair(R(b * chunks * h), b, chunks * h);
        var y = Out(b, n, h); var mean = Out(b * n); var rstd = Out(b * n);
        Gpu.LayerNormModulate(x.G, mod.G, chunks, 3, 4, y.G, mean.G, rstd.G, b, n, h);
        _ref.LayerNormModulate(x.C, mod.C, chunks, 3, 4, y.C, mean.C, rstd.C, b, n, h);
        AssertSame(y, "y"); AssertSame(mean, "mean"); AssertSame(rstd, "rstd");
        var dy = Pair(R(b * n * h), b, n, h); var dx = Pair(R(b * n * h), b, n, h); var dmod = Pair(R(b * chunks * h), b, chunks * h);
        Gpu.LayerNormModulateBackward(dy.G, x.G, mod.G, chunks, 3, 4, mean.G, rstd.G, dx.G, dmod.G, b, n, h, true);
        _ref.LayerNormModulateBackward(dy.C, x.C, mod.C, chunks, 3, 4, mean.C, rstd.C, dx.C, dmod.C, b, n, h, true);
        AssertSame(dx, "dx"); AssertSame(dmod, "dmod");
    }

    [TestCase(7)]  // scalar kernel
    [TestCase(12)] // four channels per thread (GatedForward4)
    public void GatedResidualForwardAndBackward(int h)
    {
        int b = 3, n = 5, chunks = 6;
        var x = Pair(R(b * n * h), b, n, h); var mod = Pair(R(b * chunks * h), b, chunks * h); var y = Pair(R(b * n * h), b, n, h);
        var o = Out(b, n, h);
        Gpu.GatedResidual(x.G, mod.G, chunks, 2, y.G, o.G, b, n, h); _ref.GatedResidual(x.C, mod.C, chunks, 2, y.C, o.C, b, n, h);
        AssertSame(o, "out");
        var dout = Pair(R(b * n * h), b, n, h); var dy = Out(b, n, h); var dmod = Pair(R(b * chunks * h), b, chunks * h);
        Gpu.GatedResidualBackward(dout.G, mod.G, chunks, 5, y.G, dy.G, dmod.G, b, n, h);
        _ref.GatedResidualBackward(dout.C, mod.C, chunks, 5, y.C, dy.C, dmod.C, b, n, h);
        AssertSame(dy, "dy"); AssertSame(dmod, "dmod");
    }

    // Head widths D = H/Heads of 2, 4, 32 (one full channel chunk), 50 (a full and a partial chunk) and 96 (three
    // chunks); S up to the 64 tokens the score tile holds. With tiled on, the shapes the tiled kernels take (D a multiple
    // of 8: 8, 16, 32 and the paper's 64; S a multiple of 4 or not; P where v was (D 64) or beside ∂S (D 8, 32)) run on
    // them, the rest (D 2, 4, 50, and 96, whose backward needs more than 48 KB) on the scalar kernels; off, every shape
    // runs on the scalar kernels.
    [TestCase(2, 4, 6, 3, false)]
    [TestCase(1, 35, 16, 4, false)]
    [TestCase(2, 35, 64, 2, false)]
    [TestCase(1, 6, 100, 2, false)]
    [TestCase(1, 35, 192, 2, false)]
    [TestCase(1, 63, 16, 2, false)]
    [TestCase(2, 35, 64, 2, true)]
    [TestCase(1, 35, 192, 2, true)]
    [TestCase(1, 63, 16, 2, true)]
    [TestCase(2, 6, 24, 3, true)]
    [TestCase(3, 9, 48, 3, true)]
    [TestCase(2, 35, 768, 12, true)]
    public void JointAttentionForwardAndBackward(int b, int l, int h, int heads, bool tiled)
    {
        bool was = Gpu.TiledAttention;
        long before = Gpu.TiledAttentionLaunches;
        bool fits = tiled && (h / heads) % 8 == 0 && h / heads != 96;
        Gpu.TiledAttention = tiled;
        try
        {
            Assert.That(Gpu.UsesTiledAttention(l, h, heads), Is.EqualTo(fits), "UsesTiledAttention");
            JointAttentionAgainstReference(b, l, h, heads);
        }
        finally { Gpu.TiledAttention = was; }
        Assert.That(Gpu.TiledAttentionLaunches - before, Is.EqualTo(fits ? 2 : 0), "launches on the tiled kernels");
    }

    /// <summary>
    /// GatedResidualLayerNormModulate against GatedResidual then LayerNormModulate on the device: one pass
    /// (LayerNormModulate.GatedForwardVec) where the 128-bit kernel takes the width (H 128, 256, 768; the gate from another mod
    /// than the shift and scale, as at a block's end), the two ops otherwise (H 12); the same bits on the simulator, 1e-6
    /// relative on CUDA (ptxas may contract x + gate·y differently in the two kernels). Sum, ln, mean and rstd all compared,
    /// and ln against the reference tier.
    /// </summary>
    [TestCase(3, 35, 128, true)]
    [TestCase(2, 1, 256, true)]
    [TestCase(2, 35, 768, true)]
    [TestCase(3, 5, 12, false)]
    public void GatedResidualLayerNormModulateIsTheTwoOps(int b, int n, int h, bool fused)
    {
        var x = Pair(R(b * n * h), b, n, h); var y = Pair(R(b * n * h), b, n, h);
        var gateMod = Pair(R(b * 6 * h, 0.5), b, 6 * h); var lnMod = Pair(R(b * 6 * h, 0.5), b, 6 * h);
        var sum = Out(b, n, h); var ln = Out(b, n, h); var mean = Out(b * n); var rstd = Out(b * n);
        var sum2 = Out(b, n, h); var ln2 = Out(b, n, h); var mean2 = Out(b * n); var rstd2 = Out(b * n);
        long before = Gpu.FusedGatedLayerNorms;
        Gpu.GatedResidualLayerNormModulate(x.G, gateMod.G, 6, 5, y.G, sum.G, lnMod.G, 6, 0, 1, ln.G, mean.G, rstd.G, b, n, h);
        Assert.That(Gpu.FusedGatedLayerNorms - before, Is.EqualTo(fused ? 1 : 0), "one pass");
        Gpu.GatedResidual(x.G, gateMod.G, 6, 5, y.G, sum2.G, b, n, h);
        Gpu.LayerNormModulate(sum2.G, lnMod.G, 6, 0, 1, ln2.G, mean2.G, rstd2.G, b, n, h);
        foreach (var (got, want, what) in new[] { (sum, sum2, "sum"), (ln, ln2, "ln"), (mean, mean2, "mean"), (rstd, rstd2, "rstd") })
        {
            AssertFusedMatches(got.G, want.G, what);
            if (Device.IsCuda) continue;
            var g = new float[got.G.Length]; var w = new float[want.G.Length];
            Gpu.Download(got.G, g); Gpu.Download(want.G, w);
            Assert.That(g.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(w.Select(BitConverter.SingleToInt32Bits)), $"{what}: the bits of the two ops");
        }
        _ref.GatedResidualLayerNormModulate(x.C, gateMod.C, 6, 5, y.C, sum.C, lnMod.C, 6, 0, 1, ln.C, mean.C, rstd.C, b, n, h);
        AssertSame(sum, "sum vs the reference tier"); AssertSame(ln, "ln vs the reference tier");
    }

    /// <summary>
    /// JointAttentionSkeletonRow (a warp per row and head) against the reference tier and against the device's own JointAttention
    /// outX (both forward kernels score and mix in the same order: on the simulator the same bits; 1e-6 relative for ptxas's
    /// contractions on CUDA), with the text [k | v] read from qkvU (width 3H) and from a copy of it (2H). Head widths 2 to 96
    /// (lanes mixing one to three channel trips), S up to the 64 tokens a warp scores (two keys per lane).
    /// </summary>
    [TestCase(2, 4, 6, 3, false)]
    [TestCase(3, 35, 64, 2, true)]
    [TestCase(1, 6, 100, 2, false)]
    [TestCase(1, 63, 16, 2, true)]
    [TestCase(2, 35, 768, 12, true)]
    [TestCase(1, 35, 192, 2, true)]
    public void JointAttentionSkeletonRowIsTheSkeletonRow(int b, int l, int h, int heads, bool tiled)
    {
        var qx = Pair(R(b * 3 * h), b, 3 * h); var qu = Pair(R(b * l * 3 * h, 2), b, l, 3 * h);
        var quHost = new float[b * l * 3 * h];
        _ref.Download(qu.C, quHost);
        var kvHost = new float[b * l * 2 * h];
        for (int t = 0; t < b * l; t++) Array.Copy(quHost, t * 3 * h + h, kvHost, t * 2 * h, 2 * h);
        var kv = Pair(kvHost, b, l, 2 * h);
        var full = Out(b, h); var row3 = Out(b, h); var row2 = Out(b, h);
        bool was = Gpu.TiledAttention;
        Gpu.TiledAttention = tiled;
        try { Gpu.JointAttention(qx.G, qu.G, Gpu.Allocate(b, heads, l + 1, l + 1), full.G, Gpu.Allocate(b, l, h), b, l, h, heads); }
        finally { Gpu.TiledAttention = was; }
        Gpu.JointAttentionSkeletonRow(qx.G, qu.G, 3 * h, row3.G, b, l, h, heads);
        Gpu.JointAttentionSkeletonRow(qx.G, kv.G, 2 * h, row2.G, b, l, h, heads);
        _ref.JointAttentionSkeletonRow(qx.C, kv.C, 2 * h, row2.C, b, l, h, heads);
        AssertSame(row2, "outX (2H) vs the reference tier");
        AssertFusedMatches(row3.G, full.G, "outX (3H) vs JointAttention's");
        AssertFusedMatches(row2.G, row3.G, "outX (2H) vs (3H)");
    }

    /// <summary>
    /// JointAttentionSkeletonRowFromText against the reference tier (which computes the text keys and values and attends to them
    /// in float64): reassociated where the mix kernel takes the shape (H a multiple of 4 up to 768, at most 16 heads, aligned
    /// views; the K-split products with head widths 4 to 64, a second tile of rows at B = 130, L = 1 to 35), and on the fallback
    /// (keys and values, then JointAttentionSkeletonRow) for H = 18, for 32 heads and for a scratch that is not 16-byte aligned.
    /// Weights of scale 1/√H keep the keys, values and scores O(1); AssertSame's tolerance (1e-5 + 1e-4 relative).
    /// </summary>
    [TestCase(3, 4, 128, 4, 0, true)]
    [TestCase(2, 35, 768, 12, 0, true)]
    [TestCase(130, 3, 64, 2, 0, true)]
    [TestCase(3, 5, 12, 3, 0, true)]
    [TestCase(2, 1, 16, 4, 0, true)]
    [TestCase(2, 4, 18, 3, 0, false)]
    [TestCase(2, 3, 64, 32, 0, false)]
    [TestCase(2, 3, 64, 4, 1, false)]
    public void JointAttentionSkeletonRowFromTextIsTheRowOverTheKeysAndValues(int b, int l, int h, int heads, int scratchOffset, bool reassociated)
    {
        Assert.That(Gpu.SkeletonRowMix, Is.True, "the reassociated path is on by default (TDSM_SKELETON_ROW_MIX unset)");
        float wScale = 1f / MathF.Sqrt(h);
        var qx = Pair(R(b * 3 * h), b, 3 * h); var hu = Pair(R(b * l * h), b, l, h);
        var wKv = Pair(R(2 * h * h, wScale), 2 * h, h); var bKv = Pair(R(2 * h, 0.5), 2 * h);
        int need = (int)ReferenceOps.SkeletonRowFromTextScratch(b, l, h, heads);
        var scratch = Gpu.Allocate(need + scratchOffset);
        var outX = Out(b, h);
        long before = Gpu.SkeletonRowMixLaunches;
        Gpu.JointAttentionSkeletonRowFromText(qx.G, hu.G, wKv.G, bKv.G, Gpu.View(scratch, scratchOffset, need), outX.G, b, l, h, heads);
        _ref.JointAttentionSkeletonRowFromText(qx.C, hu.C, wKv.C, bKv.C, _ref.Allocate(need), outX.C, b, l, h, heads);
        Assert.That(Gpu.SkeletonRowMixLaunches - before, Is.EqualTo(reassociated ? 1 : 0), "which path ran");
        AssertSame(outX, "outX vs the reference tier");
    }

    /// <summary>
    /// JointAttention with empty probs (forward-only passes: nothing saved) gives the outputs it gives when it saves them, bit
    /// for bit, on the tiled and the scalar kernels, and so does the reference tier.
    /// </summary>
    [TestCase(2, 35, 64, 2, true)]
    [TestCase(2, 35, 64, 2, false)]
    [TestCase(3, 4, 12, 3, true)]
    public void JointAttentionWithoutProbsGivesTheSameOutputs(int b, int l, int h, int heads, bool tiled)
    {
        var qx = Pair(R(b * 3 * h), b, 3 * h); var qu = Pair(R(b * l * 3 * h, 2), b, l, 3 * h);
        var ox = Out(b, h); var ou = Out(b, l, h); var ox0 = Out(b, h); var ou0 = Out(b, l, h);
        bool was = Gpu.TiledAttention;
        Gpu.TiledAttention = tiled;
        try
        {
            Gpu.JointAttention(qx.G, qu.G, Gpu.Allocate(b, heads, l + 1, l + 1), ox.G, ou.G, b, l, h, heads);
            Gpu.JointAttention(qx.G, qu.G, Gpu.Allocate(0), ox0.G, ou0.G, b, l, h, heads);
        }
        finally { Gpu.TiledAttention = was; }
        _ref.JointAttention(qx.C, qu.C, _ref.Allocate(b, heads, l + 1, l + 1), ox.C, ou.C, b, l, h, heads);
        _ref.JointAttention(qx.C, qu.C, _ref.Allocate(0), ox0.C, ou0.C, b, l, h, heads);
        float[] Host(Tensor t, Tdsm.Ops.IOps o) { var a = new float[t.Length]; o.Download(t, a); return a; }
        Assert.That(Host(ox0.G, Gpu), Is.EqualTo(Host(ox.G, Gpu)).AsCollection, "GPU outX");
        Assert.That(Host(ou0.G, Gpu), Is.EqualTo(Host(ou.G, Gpu)).AsCollection, "GPU outU");
        Assert.That(Host(ox0.C, _ref), Is.EqualTo(Host(ox.C, _ref)).AsCollection, "reference outX");
        Assert.That(Host(ou0.C, _ref), Is.EqualTo(Host(ou.C, _ref)).AsCollection, "reference outU");
        AssertSame(ox0, "outX without probs vs the reference tier");
    }

    /// <summary>The mix kernel holds r, the running mix and two tokens' chunks in registers (~100 floats): within the 128 that
    /// its launch bounds leave (16 warps per group), with no stack or spills.</summary>
    [Test]
    public void SkeletonRowMixAssemblesWithoutStackOrSpills() =>
        Ptxas.AssertAssemblesWithoutSpills(Ptxas.Binary is null ? "" : PtxCompiler.CompileOne(typeof(Tdsm.Kernels.JointAttention).GetMethod(nameof(Tdsm.Kernels.JointAttention.SkeletonRowMix))!,
            Tdsm.Kernels.JointAttention.MixSpecialization), "JointAttention.SkeletonRowMix");

    /// <summary>The tiled attention kernels with their launch bounds (6 and 5 groups per SM) through ptxas (TDSM_PTXAS, sm_80): no
    /// stack frame, no spills; ptxas's register count is printed (80 and 96 with ptxas 12.4).</summary>
    [TestCase(nameof(Tdsm.Kernels.JointAttention.ForwardTiled))]
    [TestCase(nameof(Tdsm.Kernels.JointAttention.BackwardTiled))]
    public void TiledAttentionAssemblesWithoutStackOrSpills(string kernel)
    {
        var method = typeof(Tdsm.Kernels.JointAttention).GetMethod(kernel)!;
        string log = Ptxas.AssertAssemblesWithoutSpills(Ptxas.Binary is null ? "" : PtxCompiler.CompileOne(method, PtxCompiler.TierBounds(method)), $"JointAttention.{kernel}");
        TestContext.Out.WriteLine(log);
    }

    private void JointAttentionAgainstReference(int b, int l, int h, int heads)
    {
        int s = l + 1;
        var qx = Pair(R(b * 3 * h), b, 3 * h); var qu = Pair(R(b * l * 3 * h), b, l, 3 * h);
        var probs = Out(b, heads, s, s); var ox = Out(b, h); var ou = Out(b, l, h);
        Gpu.JointAttention(qx.G, qu.G, probs.G, ox.G, ou.G, b, l, h, heads);
        _ref.JointAttention(qx.C, qu.C, probs.C, ox.C, ou.C, b, l, h, heads);
        AssertSame(probs, "probs"); AssertSame(ox, "outX"); AssertSame(ou, "outU");
        var dox = Pair(R(b * h), b, h); var dou = Pair(R(b * l * h), b, l, h);
        var dqx = Out(b, 3 * h); var dqu = Out(b, l, 3 * h);
        Gpu.JointAttentionBackward(dox.G, dou.G, qx.G, qu.G, probs.G, dqx.G, dqu.G, b, l, h, heads);
        _ref.JointAttentionBackward(dox.C, dou.C, qx.C, qu.C, probs.C, dqx.C, dqu.C, b, l, h, heads);
        AssertSame(dqx, "dqkvX"); AssertSame(dqu, "dqkvU");
    }

    [Test]
    public void DiffusionLossAndScoring()
    {
        int b = 5, c = 9;
        var alphas = NoiseSchedule.AlphasCumprod();
        var t = Pair([0, 49, 25, 3, 17], b);
        var z0 = Pair(R(b * c), b, c); var eps = Pair(R(b * c), b, c); var zt = Out(b, c);
        Gpu.QSample(z0.G, eps.G, t.G, alphas, zt.G, b, c); _ref.QSample(z0.C, eps.C, t.C, alphas, zt.C, b, c);
        AssertSame(zt, "zt");
        var epsRow = Pair(R(c), c); var ztRow = Out(b, c); // one noise row for every sample (zero-shot scoring)
        Gpu.QSample(z0.G, epsRow.G, t.G, alphas, ztRow.G, b, c); _ref.QSample(z0.C, epsRow.C, t.C, alphas, ztRow.C, b, c);
        AssertSame(ztRow, "zt, eps broadcast");
        var emb = Out(b, Tdsm.Reference.TimestepEmbedding.Dim);
        Gpu.TimestepEmbedding(t.G, emb.G, b); _ref.TimestepEmbedding(t.C, emb.C, b);
        AssertSame(emb, "timestep embedding");
        var pred = Pair(R(2 * b * c), 2 * b, c); var mask = Pair([1, 0, 1, 1, 1], b);
        var pos = Out(b); var neg = Out(b); var dpred = Out(2 * b, c);
        var loss = Out(3);
        Gpu.TdLoss(pred.G, eps.G, mask.G, pos.G, neg.G, dpred.G, loss.G, b, c, 1.0, 1.0);
        _ref.TdLoss(pred.C, eps.C, mask.C, pos.C, neg.C, dpred.C, loss.C, b, c, 1.0, 1.0);
        AssertSame(loss, "loss [L, L_diff, L_TD]");
        AssertSame(pos, "pos"); AssertSame(neg, "neg"); AssertSame(dpred, "dpred");
        var row = Pair(R(c), c); var score = Out(2 * b);
        Gpu.RowMse(pred.G, row.G, score.G, 2 * b, c, false); _ref.RowMse(pred.C, row.C, score.C, 2 * b, c, false);
        AssertSame(score, "row mse");
        var row2 = Pair(R(c), c);
        Gpu.RowMse(pred.G, row2.G, score.G, 2 * b, c, true); _ref.RowMse(pred.C, row2.C, score.C, 2 * b, c, true);
        AssertSame(score, "row mse accumulated");
    }

    /// <summary>Argmin per row on the device: random rows, an exact tie (the first column wins) and a row whose minimum is last.</summary>
    [Test]
    public void ArgMinRows()
    {
        int rows = 7, cols = 5;
        var values = R(rows * cols);
        values[5] = values[7] = -9f;     // row 1: tie between columns 0 and 2
        values[14] = -20f;               // row 2: the last column
        var s = Pair(values, rows, cols); var ix = Out(rows);
        Gpu.ArgMinRows(s.G, ix.G, rows, cols); _ref.ArgMinRows(s.C, ix.C, rows, cols);
        AssertSame(ix, "argmin");
        var got = new float[rows];
        Gpu.Download(ix.G, got);
        Assert.That(got[1], Is.EqualTo(0f), "a tie goes to the first column");
        Assert.That(got[2], Is.EqualTo(4f));
    }

    [Test]
    public void AdamWGatherAndRowSums()
    {
        int n = 41;
        var p = Pair(R(n), n); var g = Pair(R(n), n); var m = Pair(R(n, 0.1), n); var v = Pair(R(n, 0.1).Select(Math.Abs).ToArray(), n);
        var cfg = new AdamWConfig(1e-3);
        Gpu.AdamWStep(p.G, g.G, m.G, v.G, 1e-3, cfg, 3); _ref.AdamWStep(p.C, g.C, m.C, v.C, 1e-3, cfg, 3);
        AssertSame(p, "p"); AssertSame(m, "m"); AssertSame(v, "v");
        var table = Pair(R(7 * 6), 7, 6); var outp = Out(4, 6);
        int[] idx = [6, 0, 3, 3];
        Gpu.GatherRows(table.G, idx, outp.G, 6); _ref.GatherRows(table.C, idx, outp.C, 6);
        AssertSame(outp, "gather");
        var y = Pair(R(5 * 6), 5, 6); var bias = Pair(R(6), 6);
        Gpu.AddBroadcastRows(y.G, bias.G, 5); _ref.AddBroadcastRows(y.C, bias.C, 5); AssertSame(y, "add rows");
        Gpu.SumRowsInto(y.G, bias.G, 5); _ref.SumRowsInto(y.C, bias.C, 5); AssertSame(bias, "sum rows");
        // 300 rows: 18 segments of 17 rows, the last one partial (the two-stage column sum).
        var tall = Pair(R(300 * 7), 300, 7); var colSum = Pair(R(7), 7);
        Gpu.SumRowsInto(tall.G, colSum.G, 300); _ref.SumRowsInto(tall.C, colSum.C, 300); AssertSame(colSum, "sum 300 rows");
        Assert.Throws<ArgumentOutOfRangeException>(() => Gpu.GatherRows(table.G, [7], outp.G, 6));
    }

    [Test]
    public void OnDeviceSamplingMatchesTheHostGenerator()
    {
        var eps = Out(37); var t = Out(37); var m = Out(5);
        Gpu.SampleNormal(eps.G, 42, 8); _ref.SampleNormal(eps.C, 42, 8);
        AssertSame(eps, "normal");
        Gpu.SampleBelow(t.G, 50, 42, 9); _ref.SampleBelow(t.C, 50, 42, 9);
        var tg = new float[37]; Gpu.Download(t.G, tg);
        var tc = new float[37]; _ref.Download(t.C, tc);
        Assert.That(tg, Is.EqualTo(tc), "integer draws are identical on every tier");
        Assert.That(tg, Is.All.InRange(0f, 49f));
        var a = Pair([1, 2, 3, 4, 5], 5); var b = Pair([1, 0, 3, 0, 5], 5);
        Gpu.NotEqual(a.G, b.G, m.G); _ref.NotEqual(a.C, b.C, m.C);
        AssertSame(m, "mask");
        var table = Pair(R(6 * 4), 6, 4); var idx = Pair([5, 0, 2], 3); var o = Out(3, 4);
        Gpu.GatherRows(table.G, idx.G, o.G, 4); _ref.GatherRows(table.C, idx.C, o.C, 4);
        AssertSame(o, "gather by tensor");
        var c = Out(3, 4);
        Gpu.Copy(o.G, c.G); _ref.Copy(o.C, c.C);
        AssertSame(c, "copy");
    }

    /// <summary>
    /// Both gathers against the reference: rows of a multiple of 4 floats between aligned tensors by 16-byte chunks
    /// (counted), other widths and a table view one float off alignment by floats; every output element is poisoned first.
    /// </summary>
    [TestCase(4, 0, true)]
    [TestCase(12, 0, true)]
    [TestCase(6, 0, false)]
    [TestCase(12, 1, false)]
    public void GatherRowsByChunksAndByFloats(int width, int tableOffset, bool byChunks)
    {
        const int classes = 7;
        var whole = Pair(R(classes * width + tableOffset), classes * width + tableOffset);
        var table = (G: Gpu.View(whole.G, tableOffset, classes, width), C: _ref.View(whole.C, tableOffset, classes, width));
        int[] rows = [6, 0, 3, 3, 5];
        long before = Gpu.ChunkedGathers;
        var byIndex = Out(rows.Length, width);
        Gpu.GatherRows(table.G, rows, byIndex.G, width); _ref.GatherRows(table.C, rows, byIndex.C, width);
        AssertSame(byIndex, "gather by index");
        var index = Pair(rows.Select(i => (float)i).ToArray(), rows.Length); var byTensor = Out(rows.Length, width);
        Gpu.GatherRows(table.G, index.G, byTensor.G, width); _ref.GatherRows(table.C, index.C, byTensor.C, width);
        AssertSame(byTensor, "gather by tensor");
        Assert.That(Gpu.ChunkedGathers - before, Is.EqualTo(byChunks ? 2 : 0), "gathers by 16-byte chunks");
    }

    /// <summary>A few whole training steps (device-side sampling, forward, TD loss, backward, AdamW) agree with the CPU tier.</summary>
    [Test]
    public void TrainingStepsAgreeWithTheCpuTier()
    {
        var cfg = new Tdsm.Model.DiTConfig(InChannels: 6, CondSize: 5, Hidden: 8, Depth: 1, Heads: 2, LocalTokens: 3);
        var train = new Tdsm.Training.TrainConfig(Iterations: 3, Batch: 4, Lr: 1e-3, Warmup: 1, Seed: 9);
        var feats = R(10 * 6); var labels = Enumerable.Range(0, 10).Select(i => i % 3).ToArray(); var text = R(3 * 4 * 5);
        double[] Losses(IOps ops, bool queued)
        {
            var model = new Tdsm.Model.DiT(cfg, ops);
            model.InitializeOfficial(9);
            var trainer = new Tdsm.Training.TdsmTrainer(model, train, feats, labels, new Tdsm.Model.TextTable(ops, text, 3, 4, 5), [0, 1, 2]);
            return queued ? trainer.TrainSteps(3).Select(p => p.Loss).ToArray() : Enumerable.Range(0, 3).Select(_ => trainer.TrainStep().Loss).ToArray();
        }
        var cpu = Losses(new Tdsm.Cpu.CpuOps(), queued: false);
        var gpu = Losses(Gpu, queued: true);   // the loop's way on the device: three steps queued, one read-back
        TestContext.Out.WriteLine($"cpu {string.Join(", ", cpu)}; gpu {string.Join(", ", gpu)}");
        Assert.That(cpu.All(double.IsFinite), Is.True, "CPU losses finite (NaN on both tiers would compare equal)");
        Assert.That(gpu, Is.EqualTo(cpu).Within(1e-4).Percent);
    }

    /// <summary>
    /// Zero-shot scoring through the per-class constants and forward-only activations on the
    /// device agrees with the reference tier's scorer (chunks of 5 rows over 3 samples x 4 classes,
    /// so a chunk spans samples and the last one is partial), with random parameters everywhere.
    /// </summary>
    [Test]
    public void ZeroShotScoresAgreeWithTheReferenceTier()
    {
        var cfg = new Tdsm.Model.DiTConfig(InChannels: 5, CondSize: 6, Hidden: 8, Depth: 2, Heads: 2, LocalTokens: 3);
        var parameters = R(Tdsm.Model.DiT.BuildLayout(cfg).Count, 0.3);
        var text = R(4 * 4 * 6); var feats = R(3 * 5); var noises = R(2 * 5);
        Tdsm.Model.ZeroShotScores Scores(IOps ops)
        {
            var model = new Tdsm.Model.DiT(cfg, ops);
            model.LoadParameters(parameters);
            var scorer = new Tdsm.Model.ZeroShotScorer(model, chunkRows: 5);
            return scorer.Score(feats, 3, new Tdsm.Model.TextTable(ops, text, 4, 4, 6), noises);
        }
        var wantScored = Scores(_ref);
        var gotScored = Scores(Gpu);
        var (want, got) = (wantScored.Scores, gotScored.Scores);
        Assert.That(want.Cast<double>().All(double.IsFinite), Is.True, "reference scores finite (NaN on both tiers would compare equal)");
        Assert.That(gotScored.Predictions, Is.EqualTo(Tdsm.Model.ZeroShotScorer.Predict(got)), "device argmin = host argmin of the same scores");
        Assert.That(gotScored.Predictions, Is.EqualTo(wantScored.Predictions), "device predictions = reference predictions");
        for (int n = 0; n < 3; n++)
            for (int k = 0; k < 4; k++)
                Assert.That(got[n, k], Is.EqualTo(want[n, k]).Within(1e-5 + 1e-4 * Math.Abs(want[n, k])), $"score[{n},{k}]");
    }

    /// <summary>
    /// fp32 zero-shot scoring at widths that are multiples of 4 runs every product on <see cref="Tdsm.Kernels.Gemm.KernelVecABt"/>
    /// (the parameters' and activations' views start on 16-byte boundaries: otherwise the scalar kernel would take them,
    /// correct but slower), with the bits of scalar staging. Per call 15 products: 9 for the class constants, then for the
    /// one chunk and noise x_embedder, qkv, proj, the MLP's two and the final linear.
    /// </summary>
    [Test]
    public void Fp32ScoringStagesEveryProductInSixteenByteChunks()
    {
        var cfg = new Tdsm.Model.DiTConfig(InChannels: 8, CondSize: 16, Hidden: 16, Depth: 1, Heads: 2, LocalTokens: 3);
        var parameters = R(Tdsm.Model.DiT.BuildLayout(cfg).Count, 0.2);
        var text = R(3 * 4 * 16); var feats = R(2 * 8); var noise = R(8);
        var model = new Tdsm.Model.DiT(cfg, Gpu);
        model.LoadParameters(parameters);
        var scorer = new Tdsm.Model.ZeroShotScorer(model, chunkRows: 6);
        var table = new Tdsm.Model.TextTable(Gpu, text, 3, 4, 16);
        Assert.That(Gpu.GemmPrecision, Is.EqualTo(GemmPrecision.Fp32));
        double[] Score(bool vector)
        {
            bool wasVector = Gpu.SimtVectorStaging;
            Gpu.SimtVectorStaging = vector;
            try
            {
                long before = Gpu.SimtVectorProducts;
                var scored = scorer.Score(feats, 2, table, noise).Scores.Cast<double>().ToArray();
                Assert.That(Gpu.SimtVectorProducts - before, Is.EqualTo(vector ? 15 : 0), "products on the 16-byte staging kernel");
                return scored;
            }
            finally { Gpu.SimtVectorStaging = wasVector; }
        }
        double[] vec = Score(true), scalar = Score(false);
        Assert.That(vec.All(double.IsFinite), Is.True);
        Assert.That(vec, Is.EqualTo(scalar), "scores with 16-byte staging vs scalar staging (same bits)");
    }

    /// <summary>The whole fixture on the GPU tier: run on CUDA only (the simulator would take minutes).</summary>
    [Test]
    public void DiTFixtureParity()
    {
        if (!Device.IsCuda) Assert.Ignore("whole-model GPU parity runs on a CUDA device (the kernels are covered op by op above)");
        var report = DiTParity.Run(SafeTensorsFile.Read(TestPaths.Fixture("dit_small.safetensors")), Gpu);
        foreach (var line in report.Lines()) TestContext.Out.WriteLine(line);
        Assert.That(report.Groups.Where(gr => !gr.Passed).Select(gr => gr.Name), Is.Empty);
    }
}

/// <summary>TDSM_PACKED_GEMM: the packed kernel a run uses by default (GpuOps.PackedGemm), settable without a rebuild.</summary>
public class PackedGemmSettingTests
{
    [TestCase(null, PackedGemmKernel.LdMatrix)]
    [TestCase("", PackedGemmKernel.LdMatrix)]
    [TestCase("LdMatrixAsync", PackedGemmKernel.LdMatrixAsync)]
    [TestCase("wgmma", PackedGemmKernel.Wgmma)]
    [TestCase("WgmmaDeep", PackedGemmKernel.WgmmaDeep)]
    [TestCase("ldmatrixwideasync", PackedGemmKernel.LdMatrixWideAsync)]
    [TestCase("Off", PackedGemmKernel.Off)]
    public void NamesAKernel(string? value, PackedGemmKernel expected) => Assert.That(GpuOps.PackedGemmSetting(value), Is.EqualTo(expected));

    [TestCase("LdMatrixFast")]
    [TestCase("3")]
    [TestCase("5")]
    public void AnythingElseFailsLoudly(string value) =>
        Assert.That(() => GpuOps.PackedGemmSetting(value), Throws.ArgumentException.With.Message.Contains("TDSM_PACKED_GEMM").And.Message.Contains("LdMatrixAsync"));

    /// <summary>
    /// Without TDSM_PACKED_GEMM a device gets its own default: the simulator LdMatrix (its tests name the kernels they
    /// compare), a Hopper GPU WgmmaDeep (GpuOps.DefaultPackedGemm; on CUDA, checked by the device's compute capability).
    /// </summary>
    [Test]
    public void AnEmptySettingGivesTheDevicesDefault()
    {
        Assert.That(GpuOps.PackedGemmSetting(null, PackedGemmKernel.WgmmaDeep), Is.EqualTo(PackedGemmKernel.WgmmaDeep));
        Assert.That(GpuOps.PackedGemmSetting("LdMatrix", PackedGemmKernel.WgmmaDeep), Is.EqualTo(PackedGemmKernel.LdMatrix));
        using var device = GpuDevice.OpenSimulator();
        Assert.That(GpuOps.DefaultPackedGemm(device.Accelerator), Is.EqualTo(PackedGemmKernel.LdMatrix));
        if (Environment.GetEnvironmentVariable("TDSM_PACKED_GEMM") is not { Length: > 0 })
        {
            using var ops = new GpuOps(device);
            Assert.That(ops.PackedGemm, Is.EqualTo(PackedGemmKernel.LdMatrix));
        }
    }
}

/// <summary>TDSM_CONV_WGMMA's values (StGcnGpuOps.WgmmaConvSetting): 1 and 0 decide, empty gives the device's default (wgmma
/// convolutions on a Hopper GPU, the mma.sync kernels elsewhere, the simulator included), anything else fails.</summary>
public class WgmmaConvSettingTests
{
    [TestCase(null, true, true)]
    [TestCase("", false, false)]
    [TestCase("1", false, true)]
    [TestCase("0", true, false)]
    public void OneAndZeroDecideEmptyGivesTheDefault(string? value, bool whenUnset, bool expected) =>
        Assert.That(Tdsm.Gpu.StGcn.StGcnGpuOps.WgmmaConvSetting(value, whenUnset), Is.EqualTo(expected));

    [TestCase("yes")]
    [TestCase("2")]
    public void AnythingElseFailsLoudly(string value) =>
        Assert.That(() => Tdsm.Gpu.StGcn.StGcnGpuOps.WgmmaConvSetting(value, true), Throws.ArgumentException.With.Message.Contains("TDSM_CONV_WGMMA"));

    [Test]
    public void TheSimulatorDefaultsToTheMmaSyncKernels()
    {
        if (Environment.GetEnvironmentVariable("TDSM_CONV_WGMMA") is { Length: > 0 }) Assert.Ignore("TDSM_CONV_WGMMA is set: the default is not in force");
        using var device = GpuDevice.OpenSimulator();
        using var ops = new Tdsm.Gpu.StGcn.StGcnGpuOps(device);
        Assert.That(ops.WgmmaPackedConvs, Is.False);
    }
}
