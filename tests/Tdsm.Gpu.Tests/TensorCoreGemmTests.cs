using ILGPU;
using ILGPU.Runtime;
using System.Text.RegularExpressions;
using Tdsm.Gpu;
using Tdsm.Kernels;
using Tdsm.Tensors;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// The tensor-core GEMMs (<see cref="TensorCoreGemm"/> through <see cref="GpuOps"/> with
/// <see cref="GemmPrecision.Bf16"/> and <see cref="GemmPrecision.Tf32"/>) on ILGPU's CPU simulator,
/// where the mma is emulated from the same per-lane fragment registers, and on CUDA when a device
/// exists. Sizes do not divide the 128×128×32 tile; the larger case spans two block tiles in M and N
/// and three K-steps. Per element, with s = Σ_k |a_k||b_k| + |bias| + |C₀| over the unrounded inputs:
/// (1) vs a float64 product of the rounded operands, |err| ≤ 1e-5·s (fp32 accumulation);
/// (2) vs the float64 product of the fp32 operands, |err| ≤ (2u + u²)·s + 1e-5·s with the unit
/// roundoff u of the operand format: bf16 keeps 8 significant bits (u = 2⁻⁸, bound 7.8e-3·s),
/// tf32 11 (u = 2⁻¹¹, bound 9.8e-4·s); random signs keep the measured errors well below.
/// </summary>
[TestFixture("simulator")]
[TestFixture("cuda")]
[NonParallelizable]
public class TensorCoreGemmTests(string device) : GpuOpsFixture(device)
{
    private const double RoundedTolerance = 1e-5;

    private static float[] Normal(Rng rng, int n) { var a = new float[n]; rng.FillNormal(a); return a; }

    [TestCase(37, 29, 45, GemmLayout.ABt, GemmPrecision.Bf16)]
    [TestCase(37, 29, 45, GemmLayout.AB, GemmPrecision.Bf16)]
    [TestCase(37, 29, 45, GemmLayout.AtB, GemmPrecision.Bf16)]
    [TestCase(133, 131, 77, GemmLayout.ABt, GemmPrecision.Bf16)]
    [TestCase(133, 131, 77, GemmLayout.AB, GemmPrecision.Bf16)]
    [TestCase(133, 131, 77, GemmLayout.AtB, GemmPrecision.Bf16)]
    [TestCase(1, 1, 1, GemmLayout.AB, GemmPrecision.Bf16)]
    [TestCase(5, 3, 0, GemmLayout.AtB, GemmPrecision.Bf16)]
    [TestCase(37, 29, 45, GemmLayout.ABt, GemmPrecision.Tf32)]
    [TestCase(37, 29, 45, GemmLayout.AB, GemmPrecision.Tf32)]
    [TestCase(37, 29, 45, GemmLayout.AtB, GemmPrecision.Tf32)]
    [TestCase(133, 131, 77, GemmLayout.ABt, GemmPrecision.Tf32)]
    [TestCase(133, 131, 77, GemmLayout.AB, GemmPrecision.Tf32)]
    [TestCase(133, 131, 77, GemmLayout.AtB, GemmPrecision.Tf32)]
    [TestCase(1, 1, 1, GemmLayout.AB, GemmPrecision.Tf32)]
    [TestCase(5, 3, 0, GemmLayout.AtB, GemmPrecision.Tf32)]
    // K ≥ 1024 with few C blocks: split along K (two partial products, the second shorter), then reduced.
    [TestCase(37, 29, 1100, GemmLayout.AtB, GemmPrecision.Bf16)]
    [TestCase(37, 29, 1100, GemmLayout.AB, GemmPrecision.Tf32)]
    public void MatchesRoundedReferenceAndFp32WithinFormatTolerance(int m, int n, int k, GemmLayout layout, GemmPrecision precision)
    {
        Gpu.GemmPrecision = precision;
        long splitBefore = Gpu.SplitProducts;
        var rng = new Rng(4321);
        float[] a = Normal(rng, m * k), b = Normal(rng, n * k), bias = Normal(rng, n), c0 = Normal(rng, m * n);
        // Overwrite without bias into a NaN-poisoned C (every element must be written), then
        // accumulate with bias into C₀.
        var poisoned = Enumerable.Repeat(float.NaN, m * n).ToArray();
        var plain = Run(a, b, null, poisoned, layout, m, n, k, accumulate: false);
        var acc = Run(a, b, bias, c0, layout, m, n, k, accumulate: true);
        Check(plain, a, b, null, null, layout, m, n, k, precision, "C = AB");
        Check(acc, a, b, bias, c0, layout, m, n, k, precision, "C += AB + bias");
        Assert.That(Gpu.SplitProducts - splitBefore, Is.EqualTo(k >= 1024 ? 2 : 0), "products split along K");
    }

    [TestCase(GemmPrecision.Bf16)]
    [TestCase(GemmPrecision.Tf32)]
    public void LinearUsesTheTensorCoreKernel(GemmPrecision precision)
    {
        Gpu.GemmPrecision = precision;
        int rows = 19, inF = 23, outF = 17;
        var rng = new Rng(99);
        float[] x = Normal(rng, rows * inF), w = Normal(rng, outF * inF), bias = Normal(rng, outF);
        var ty = Up(Enumerable.Repeat(float.NaN, rows * outF).ToArray());
        Gpu.Linear(Up(x), Up(w), Up(bias), ty, rows, inF, outF);
        var y = new float[rows * outF];
        Gpu.Download(ty, y);
        Check(y, x, w, bias, null, GemmLayout.ABt, rows, outF, inF, precision, "Linear");
    }

    /// <summary>
    /// <see cref="TensorCoreGemm.KernelPacked"/> on operands packed by <see cref="GpuOps.PackBf16"/> (A as
    /// given or packed from its transpose) against <see cref="TensorCoreGemm.Kernel"/> on the fp32 operands:
    /// both round each operand to bf16 nearest-even and run the same mma sequence and epilogue, so C must be
    /// the same bits (tolerance 0), with bias and accumulate, over edge tiles in M, N and K.
    /// </summary>
    [TestCase(37, 29, 46, false)]
    [TestCase(133, 131, 78, false)]
    [TestCase(133, 131, 78, true)]
    [TestCase(1, 1, 2, true)]
    [TestCase(5, 3, 0, false)]
    [TestCase(37, 29, 1104, true)]   // split along K, as the fp32-operand kernel splits it
    public void PackedOperandsGiveTheBitsOfTheFp32OperandKernel(int m, int n, int k, bool packATransposed)
    {
        var rng = new Rng(77);
        float[] a = Normal(rng, m * k), b = Normal(rng, n * k), bias = Normal(rng, n), c0 = Normal(rng, m * n);
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        var want = Run(a, b, bias, c0, GemmLayout.ABt, m, n, k, accumulate: true);

        using var pa = Gpu.Device.Accelerator.Allocate1D<uint>(Math.Max(1, m * k / 2));
        using var pb = Gpu.Device.Accelerator.Allocate1D<uint>(Math.Max(1, n * k / 2));
        if (packATransposed)
        {
            // A handed over as Aᵀ (K, M) row-major, the layout of a weight-gradient operand, packed across its rows.
            var at = new float[k * m];
            for (int i = 0; i < m; i++) for (int kk = 0; kk < k; kk++) at[kk * m + i] = a[i * k + kk];
            Gpu.PackBf16(Up(at), pa.View, k, m, transpose: true);
        }
        else Gpu.PackBf16(Up(a), pa.View, m, k, transpose: false);
        Gpu.PackBf16(Up(b), pb.View, n, k, transpose: false);
        var tc = Up(c0);
        Gpu.MatMulPacked(pa.View, pb.View, tc, Up(bias), m, n, k, accumulate: true);
        var got = new float[m * n];
        Gpu.Download(tc, got);
        AssertSameBits(got, want, n, $"{m}x{n}x{k}: on packed operands vs from fp32 operands");
        if (k > 0)
        {
            var words = new uint[m * k / 2];
            pa.View.SubView(0, words.Length).CopyToCPU(words);
            Assert.That(words[^1], Is.EqualTo(Bf16.Bits(a[^2]) | (Bf16.Bits(a[^1]) << 16)), "last word of packed A: (A[m-1, k-2], A[m-1, k-1])");
        }
    }

    /// <summary>
    /// <see cref="TensorCoreGemm.KernelLdMatrix"/> (128-bit staging, swizzled rows, ldmatrix fragments) against
    /// <see cref="TensorCoreGemm.KernelPacked"/> on the same packed operands: same tiles, mma order and epilogue, so the
    /// same bits (tolerance 0). K spans 1, 3 (a partial last K-step), 4 and 5 K-steps (both stages reused; the loop runs
    /// two K-steps per trip, so odd counts leave after the first), M and N end inside a tile (the 256-row cases have
    /// full tiles: the unguarded loads). On the simulator the matrix loads are emulated from the PTX ISA's ldmatrix layout.
    /// </summary>
    [TestCase(37, 29, 24)]
    [TestCase(133, 131, 88)]
    [TestCase(256, 128, 160)]
    [TestCase(256, 256, 128)]
    [TestCase(130, 140, 64)]
    [TestCase(129, 250, 160)]
    [TestCase(5, 3, 0)]
    [TestCase(37, 29, 1056)]  // split along K
    public void LdMatrixKernelGivesTheBitsOfThePackedKernel(int m, int n, int k) => LdMatrixKernelMatchesPacked(PackedGemmKernel.LdMatrix, m, n, k);

    /// <summary>
    /// <see cref="TensorCoreGemm.KernelLdMatrixWide"/> (4 warps of 64×64 on KernelLdMatrix's tiles) against
    /// <see cref="TensorCoreGemm.KernelPacked"/>, as for KernelLdMatrix: the same bits (tolerance 0) at K of 1, 3, 4 and 5
    /// K-steps, full and partial tiles, split K.
    /// </summary>
    [TestCase(37, 29, 24)]
    [TestCase(133, 131, 88)]
    [TestCase(256, 256, 128)]
    [TestCase(129, 250, 160)]
    [TestCase(37, 29, 1056)]  // split along K
    public void LdMatrixWideKernelGivesTheBitsOfThePackedKernel(int m, int n, int k) => LdMatrixKernelMatchesPacked(PackedGemmKernel.LdMatrixWide, m, n, k);

    /// <summary>
    /// <see cref="TensorCoreGemm.KernelLdMatrixAsync"/> (KernelLdMatrix staged by cp.async into 3 shared stages; on the
    /// simulator the copies land at once) against <see cref="TensorCoreGemm.KernelPacked"/>: the same bits (tolerance 0)
    /// at K of 1, 2, 3, 4 and 7 K-steps (the 3-stage loop's every exit), full and partial tiles and K ranges, split K.
    /// </summary>
    [TestCase(37, 29, 24)]
    [TestCase(37, 29, 64)]
    [TestCase(133, 131, 88)]
    [TestCase(256, 256, 128)]
    [TestCase(130, 136, 216)]
    [TestCase(37, 29, 1056)]  // split along K
    public void LdMatrixAsyncKernelGivesTheBitsOfThePackedKernel(int m, int n, int k) => LdMatrixKernelMatchesPacked(PackedGemmKernel.LdMatrixAsync, m, n, k);

    /// <summary><see cref="TensorCoreGemm.KernelLdMatrixWideAsync"/> (4 warps of 64×64, cp.async): as the async kernel above.</summary>
    [TestCase(37, 29, 64)]
    [TestCase(256, 256, 128)]
    [TestCase(130, 136, 216)]
    [TestCase(37, 29, 1056)]  // split along K
    public void LdMatrixWideAsyncKernelGivesTheBitsOfThePackedKernel(int m, int n, int k) => LdMatrixKernelMatchesPacked(PackedGemmKernel.LdMatrixWideAsync, m, n, k);

    /// <summary>
    /// <see cref="TensorCoreGemm.KernelWgmma"/> (KernelLdMatrixAsync's staging, Hopper's wgmma from shared memory through
    /// descriptors) and <see cref="TensorCoreGemm.KernelWgmmaDeep"/> (4 stages in dynamic shared memory): within the rounded-operand
    /// tolerance of <see cref="Check"/> (1e-5·s) everywhere; on the simulator, whose
    /// emulation decodes the descriptors and sums each k group as the mma.sync emulation does, also the bits of the mma.sync
    /// kernels (KernelPacked, whose bits every ldmatrix kernel's test shows it gives; tolerance 0: this checks the staging,
    /// descriptors and accumulator layout). On CUDA the hardware's order of accumulation inside a wgmma is its own, so the
    /// bits are reported, not required; a GPU before Hopper ends the test as ignored. 7 K-steps (the 3-stage loop left after
    /// its first stage) with full and partial tiles, and a product split along K.
    /// </summary>
    [TestCase(PackedGemmKernel.Wgmma, 130, 136, 216)]
    [TestCase(PackedGemmKernel.Wgmma, 37, 29, 1056)]  // split along K
    [TestCase(PackedGemmKernel.WgmmaDeep, 130, 136, 216)] // 4 stages: the loop left after its third stage in its second trip
    [Category(DeviceOrder.RunLast)] // wgmma on a GPU for the first time at the next visit
    public void WgmmaKernelMatchesTheMmaSyncKernels(PackedGemmKernel kind, int m, int n, int k)
    {
        if (!PtxTarget.CanRunSm90a(Gpu.Device.Accelerator))
            Assert.Ignore($"wgmma needs compute capability 9.0; this is {Gpu.Device.Accelerator.Name}");
        var rng = new Rng(81);
        float[] a = Normal(rng, m * k), b = Normal(rng, n * k), bias = Normal(rng, n), c0 = Normal(rng, m * n);
        using var pa = Gpu.Device.Accelerator.Allocate1D<uint>(m * k / 2);
        using var pb = Gpu.Device.Accelerator.Allocate1D<uint>(n * k / 2);
        Gpu.PackBf16(Up(a), pa.View, m, k, transpose: false);
        Gpu.PackBf16(Up(b), pb.View, n, k, transpose: false);
        float[] Product(PackedGemmKernel kind)
        {
            var tc = Up(c0);
            Gpu.MatMulPacked(kind, pa.View, pb.View, tc, Up(bias), m, n, k, accumulate: true);
            var host = new float[m * n];
            Gpu.Download(tc, host);
            return host;
        }
        float[] got = Product(kind), want = Product(PackedGemmKernel.Packed);
        Check(got, a, b, bias, c0, GemmLayout.ABt, m, n, k, GemmPrecision.Bf16, kind.ToString());
        int differing = got.Zip(want).Count(p => BitConverter.SingleToInt32Bits(p.First) != BitConverter.SingleToInt32Bits(p.Second));
        TestContext.Out.WriteLine($"{kind} {m}x{n}x{k}: {differing} of {got.Length} elements differ in their bits from the mma.sync kernels'");
        if (!Gpu.Device.IsCuda) AssertSameBits(got, want, n, $"{m}x{n}x{k}: {kind} vs KernelPacked (simulator)");
    }

    private void LdMatrixKernelMatchesPacked(PackedGemmKernel kind, int m, int n, int k)
    {
        var rng = new Rng(78);
        float[] a = Normal(rng, m * k), b = Normal(rng, n * k), bias = Normal(rng, n), c0 = Normal(rng, m * n);
        using var pa = Gpu.Device.Accelerator.Allocate1D<uint>(Math.Max(4, m * k / 2));
        using var pb = Gpu.Device.Accelerator.Allocate1D<uint>(Math.Max(4, n * k / 2));
        Gpu.PackBf16(Up(a), pa.View, m, k, transpose: false);
        Gpu.PackBf16(Up(b), pb.View, n, k, transpose: false);
        float[] Product(bool ldMatrix)
        {
            var tc = Up(c0);
            Gpu.MatMulPacked(ldMatrix ? kind : PackedGemmKernel.Packed, pa.View, pb.View, tc, Up(bias), m, n, k, accumulate: true);
            var host = new float[m * n];
            Gpu.Download(tc, host);
            return host;
        }
        float[] want = Product(ldMatrix: false), got = Product(ldMatrix: true);
        AssertSameBits(got, want, n, $"{m}x{n}x{k}: {kind} vs KernelPacked");
    }

    /// <summary>
    /// The tensor-core epilogue's fast path (GemmArgs.PairStores: a block inside C, N even, no accumulate / GELU / packed C,
    /// the bias read once per column and pairs of columns stored as 64-bit words) against the general per-element path, which
    /// a C starting 4 bytes into its buffer forces: the same bits (tolerance 0), on every tensor-core kernel, with and without
    /// bias; C poisoned with NaN first, so an element the fast path skipped would show. Shapes with edge blocks (the general
    /// path for those, the fast one for the block inside), without bias, and split along K (partial products in the workspace,
    /// which is aligned whatever C is: there the general path is the same kernel with GpuOps.EpiloguePairStores off).
    /// </summary>
    [TestCase(130, 258, 32, true)]
    [TestCase(128, 130, 32, false)]
    [TestCase(128, 128, 544, true)] // split along K (2 splits: 288 + 256): the partial products' pair stores vs the general epilogue
    public void PairStoresGiveTheBitsOfTheGeneralEpilogue(int m, int n, int k, bool withBias)
    {
        var rng = new Rng(79);
        float[] a = Normal(rng, m * k), b = Normal(rng, n * k), bias = Normal(rng, n);
        using var pa = Gpu.Device.Accelerator.Allocate1D<uint>(m * k / 2);
        using var pb = Gpu.Device.Accelerator.Allocate1D<uint>(n * k / 2);
        Gpu.PackBf16(Up(a), pa.View, m, k, transpose: false);
        Gpu.PackBf16(Up(b), pb.View, n, k, transpose: false);
        var nan = Enumerable.Repeat(float.NaN, m * n + 1).ToArray();
        float[] Product(Action<Tensor> run, bool aligned, bool pairStores = true)
        {
            var storage = Up(nan);
            var c = Gpu.View(storage, aligned ? 0 : 1, m * n);
            Gpu.EpiloguePairStores = pairStores;
            try { run(c); }
            finally { Gpu.EpiloguePairStores = true; }
            var host = new float[m * n];
            Gpu.Download(c, host);
            return host;
        }
        // Split along K the partial products go to the (aligned) workspace whatever C's alignment, so there the general
        // epilogue is asked for by switching pair stores off (GpuOps.EpiloguePairStores) rather than by moving C.
        bool split = Gemm.SplitK(m, n, k, TensorCoreGemm.KStep).Splits > 1;
        Tensor? tb = withBias ? Up(bias) : null;
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        var runs = new (string Name, Action<Tensor> Run)[]
        {
            ("fp32-operand bf16", c => Gpu.MatMul(Up(a), Up(b), c, tb, GemmLayout.ABt, m, n, k, accumulate: false)),
            ("Packed", c => Gpu.MatMulPacked(PackedGemmKernel.Packed, pa.View, pb.View, c, tb, m, n, k, accumulate: false)),
            ("LdMatrix", c => Gpu.MatMulPacked(PackedGemmKernel.LdMatrix, pa.View, pb.View, c, tb, m, n, k, accumulate: false)),
            ("LdMatrixWide", c => Gpu.MatMulPacked(PackedGemmKernel.LdMatrixWide, pa.View, pb.View, c, tb, m, n, k, accumulate: false)),
            // The cp.async kernels' epilogue is generated by the same code as LdMatrix's and LdMatrixWide's (and the simulator
            // is slow): their bits are checked against KernelPacked's by the kernels' own tests.
        };
        foreach (var (name, run) in runs)
        {
            float[] fast = Product(run, aligned: true), general = split ? Product(run, aligned: true, pairStores: false) : Product(run, aligned: false);
            Assert.That(fast, Has.None.NaN, $"{name} {m}x{n}x{k}: every element written");
            AssertSameBits(fast, general, n, $"{name} {m}x{n}x{k}: pair stores vs the general epilogue");
        }
    }

    /// <summary>
    /// The packed-C fast path of the packed kernels' epilogue (the forward-only MLP's fc1: bias, GELU and the bf16 pairs for fc2,
    /// biases read once, no per-pair tests) against the general per-pair path (<see cref="GpuOps.EpiloguePairStores"/> off): fc2's
    /// output has the same bits (tolerance 0), so every hidden word was. 130 rows and 128 hidden columns: the block inside C takes
    /// the fast path, the rows past 128 the general one. On the simulator the kernels that stage by plain loads (the cp.async ones
    /// share their epilogue's code); on CUDA every packed kernel the device runs.
    /// </summary>
    [Test]
    public void PackedMlpFastEpilogueGivesTheBitsOfTheGeneralOne()
    {
        const int rows = 130, inF = 16, hid = 128, outF = 8;
        var rng = new Rng(83);
        var values = Normal(rng, hid * inF + hid + outF * hid + outF);
        for (int i = 0; i < values.Length; i++) values[i] *= 0.3f;
        Tensor all = Up(values), x = Up(Normal(rng, rows * inF)), hidden = Gpu.Allocate(rows, hid), y = Gpu.Allocate(rows, outF);
        Tensor w1 = Gpu.View(all, 0, hid, inF), b1 = Gpu.View(all, hid * inF, hid);
        Tensor w2 = Gpu.View(all, hid * inF + hid, outF, hid), b2 = Gpu.View(all, hid * inF + hid + outF * hid, outF);
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        float[] Run(PackedGemmKernel kind, bool pairStores)
        {
            Gpu.PackedGemm = kind;
            Gpu.EpiloguePairStores = pairStores;
            long mlps = Gpu.PackedMlps;
            Gpu.Upload(Enumerable.Repeat(float.NaN, rows * outF).ToArray(), y);
            using (Gpu.BindParameters(all)) Gpu.Mlp(x, w1, b1, hidden, w2, b2, y, rows, inF, hid, outF);
            Assert.That(Gpu.PackedMlps - mlps, Is.EqualTo(1), $"{kind}: the MLP ran on packed operands");
            var host = new float[rows * outF];
            Gpu.Download(y, host);
            return host;
        }
        AssertFastEpilogueGivesTheGeneralBits(Run, outF, "MLP output");
    }

    /// <summary>
    /// The GELU' fast path of the packed kernels' epilogue (the training MLP's dx product: dPre = (dy·W) ⊙ GELU'(pre), pre read
    /// and dPre written as 64-bit pairs) against the general per-element path (<see cref="GpuOps.EpiloguePairStores"/> off): the
    /// same bits (tolerance 0). 136 rows and 128 columns: the block inside dPre takes the fast path, the rows past 128 the general
    /// one. Kernels as in <see cref="PackedMlpFastEpilogueGivesTheBitsOfTheGeneralOne"/>.
    /// </summary>
    [Test]
    public void PackedGeluGradFastEpilogueGivesTheBitsOfTheGeneralOne()
    {
        const int rows = 136, inF = 128, outF = 16;
        var rng = new Rng(89);
        var weights = Normal(rng, outF * inF);
        for (int i = 0; i < weights.Length; i++) weights[i] *= 0.3f;
        Tensor w = Up(weights), x = Up(Normal(rng, rows * inF)), dy = Up(Normal(rng, rows * outF)), pre = Up(Normal(rng, rows * inF));
        Tensor dPre = Gpu.Allocate(rows, inF), dw = Gpu.Allocate(outF, inF);
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        float[] Run(PackedGemmKernel kind, bool pairStores)
        {
            Gpu.PackedGemm = kind;
            Gpu.EpiloguePairStores = pairStores;
            long shared = Gpu.SharedDyPacks;
            Gpu.Upload(Enumerable.Repeat(float.NaN, rows * inF).ToArray(), dPre);
            Gpu.Upload(new float[outF * inF], dw);
            using (Gpu.BindParameters(w)) Gpu.LinearBackwardGelu(dy, x, w, pre, dPre, dw, null, rows, inF, outF);
            Assert.That(Gpu.SharedDyPacks - shared, Is.EqualTo(1), $"{kind}: the backward ran on packed operands");
            var host = new float[rows * inF];
            Gpu.Download(dPre, host);
            return host;
        }
        AssertFastEpilogueGivesTheGeneralBits(Run, inF, "dPre");
    }

    // run(kind, pairStores) for every packed kernel the device runs (on the simulator those that stage by plain loads; the
    // cp.async ones share their epilogue's code): with the fast epilogues (pair stores on) every element written and the bits
    // of the general path (off).
    private void AssertFastEpilogueGivesTheGeneralBits(Func<PackedGemmKernel, bool, float[]> run, int columns, string what)
    {
        var kinds = new List<PackedGemmKernel> { PackedGemmKernel.Packed, PackedGemmKernel.LdMatrix, PackedGemmKernel.LdMatrixWide };
        if (Gpu.Device.IsCuda)
        {
            kinds.AddRange([PackedGemmKernel.LdMatrixAsync, PackedGemmKernel.LdMatrixWideAsync]);
            if (PtxTarget.CanRunSm90a(Gpu.Device.Accelerator)) kinds.AddRange([PackedGemmKernel.Wgmma, PackedGemmKernel.WgmmaDeep]);
        }
        try
        {
            foreach (var kind in kinds)
            {
                float[] fast = run(kind, true), general = run(kind, false);
                Assert.That(fast, Has.None.NaN, $"{kind}: every element of the {what} written");
                AssertSameBits(fast, general, columns, $"{kind}: {what} through the fast epilogue vs the general one");
            }
        }
        finally { Gpu.PackedGemm = PackedGemmKernel.Off; Gpu.EpiloguePairStores = true; }
    }

    /// <summary>KernelLdMatrix stages 16-byte chunks: an operand 8 bytes into its buffer is refused with the offset, not read misaligned.</summary>
    [Test]
    public void LdMatrixKernelRefusesOperandsOffSixteenByteBoundaries()
    {
        const int m = 16, n = 16, k = 32;
        using var pa = Gpu.Device.Accelerator.Allocate1D<uint>(m * k / 2 + 2);
        using var pb = Gpu.Device.Accelerator.Allocate1D<uint>(n * k / 2);
        var c = Gpu.Allocate(m * n);
        var e = Assert.Throws<ArgumentException>(() => Gpu.MatMulPackedLdMatrix(pa.View.SubView(2, m * k / 2), pb.View, c, null, m, n, k, accumulate: false));
        Assert.That(e!.Message, Does.Contain("16-byte boundaries").And.Contain("A at 8"));
    }

    /// <summary>
    /// Zero-shot scoring in bf16 with <see cref="GpuOps.PackedGemm"/> set (every x·Wᵀ inside the scorer's
    /// <see cref="GpuOps.BindParameters"/> scope on packed operands: the parameters packed once, x before each
    /// product, the MLP's hidden layer handed from fc1's epilogue (GELU, bf16 pairs) to fc2) gives the bits of the
    /// fp32-operand path, for each packed kernel (on the simulator one per staging); after new parameters are loaded the next call packs them again. All
    /// widths are multiples of 8, so every product qualifies (checked by the counts). Small on purpose: the simulator is slow.
    /// </summary>
    [Test]
    public void ScoringOnPackedOperandsGivesTheBitsOfTheFp32OperandPath()
    {
        var cfg = new Tdsm.Model.DiTConfig(InChannels: 8, CondSize: 16, Hidden: 16, Depth: 1, Heads: 2, LocalTokens: 3);
        var rng = new Rng(31);
        int count = Tdsm.Model.DiT.BuildLayout(cfg).Count;
        float[] first = Normal(rng, count), second = Normal(rng, count), text = Normal(rng, 3 * 4 * 16), feats = Normal(rng, 2 * 8), noise = Normal(rng, 8);
        for (int i = 0; i < count; i++) { first[i] *= 0.2f; second[i] *= 0.2f; }
        var model = new Tdsm.Model.DiT(cfg, Gpu);
        var scorer = new Tdsm.Model.ZeroShotScorer(model, chunkRows: 6);
        var table = new Tdsm.Model.TextTable(Gpu, text, 3, 4, 16);
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        Tdsm.Model.ZeroShotScores Score(PackedGemmKernel kind)
        {
            Gpu.PackedGemm = kind;
            long before = Gpu.PackedProducts, mlps = Gpu.PackedMlps, casts = Gpu.LayerNormCastOperands;
            var scored = scorer.Score(feats, 2, table, noise);
            // Per call: 9 class-constant products and, for one chunk and noise, x_embedder, qkv, proj, the MLP (2) and the final linear.
            Assert.That(Gpu.PackedProducts - before, Is.EqualTo(kind == PackedGemmKernel.Off ? 0 : 15), $"{kind}: products on packed operands");
            Assert.That(Gpu.PackedMlps - mlps, Is.EqualTo(kind == PackedGemmKernel.Off ? 0 : 1), $"{kind}: MLPs with the hidden layer handed over in bf16");
            // LN-modulate cast for the product after it: the class constants' text qkv, then the chunk's qkv, MLP and final linear.
            Assert.That(Gpu.LayerNormCastOperands - casts, Is.EqualTo(kind == PackedGemmKernel.Off ? 0 : 4), $"{kind}: A operands cast by LN-modulate");
            return scored;
        }
        void AssertSameScores(Tdsm.Model.ZeroShotScores got, Tdsm.Model.ZeroShotScores want, string what)
        {
            Assert.That(got.Predictions, Is.EqualTo(want.Predictions), what);
            AssertSameBits(got.Scores.Cast<double>().ToArray(), want.Scores.Cast<double>().ToArray(), 3, $"{what}: scores on packed operands vs fp32 operands");
        }
        try
        {
            model.LoadParameters(first);
            var want = Score(PackedGemmKernel.Off);
            // On the simulator one kernel per staging (the others' bits are their own tests'), every kernel on CUDA.
            var kinds = Gpu.Device.IsCuda
                ? new[] { PackedGemmKernel.Packed, PackedGemmKernel.LdMatrix, PackedGemmKernel.LdMatrixWide, PackedGemmKernel.LdMatrixAsync, PackedGemmKernel.LdMatrixWideAsync }
                : [PackedGemmKernel.Packed, PackedGemmKernel.LdMatrix, PackedGemmKernel.LdMatrixAsync];
            foreach (var kind in kinds)
                AssertSameScores(Score(kind), want, kind.ToString());
            model.LoadParameters(second); // the next scope must pack these, not reuse the first ones
            AssertSameScores(Score(PackedGemmKernel.LdMatrix), Score(PackedGemmKernel.Off), "LdMatrix after new parameters");
        }
        finally { Gpu.PackedGemm = PackedGemmKernel.Off; }
    }

    /// <summary>
    /// <see cref="Bf16.PackRowsTransposed"/> (through <see cref="GpuOps.PackBf16"/> with transpose): every word of
    /// every dst row is (src[2j, c], src[2j+1, c]) rounded to bf16, over shapes that end inside a 64 x 32 tile, fill
    /// whole tiles, and span one row pair.
    /// </summary>
    [TestCase(130, 70)]
    [TestCase(64, 32)]
    [TestCase(66, 33)]
    [TestCase(2, 1)]
    [TestCase(192, 96)]
    public void TransposedPackHoldsThePairsOfEachColumn(int rows, int cols)
    {
        var src = Normal(new Rng(5), rows * cols);
        using var dst = Gpu.Device.Accelerator.Allocate1D<uint>(rows * cols / 2);
        Gpu.PackBf16(Up(src), dst.View, rows, cols, transpose: true);
        Gpu.Synchronize();
        var words = dst.GetAsArray1D();
        for (int c = 0; c < cols; c++)
            for (int j = 0; j < rows / 2; j++)
            {
                uint want = Bf16.Bits(src[2 * j * cols + c]) | (Bf16.Bits(src[(2 * j + 1) * cols + c]) << 16);
                if (words[c * (rows / 2) + j] != want) Assert.Fail($"{rows}x{cols}: word {j} of row {c} = {words[c * (rows / 2) + j]:X8}, want {want:X8}");
            }
    }

    /// <summary>
    /// With packed products, LN-modulate casts its output for the product that reads it next (one pass fewer); an op
    /// in between that writes that output (here a copy into it) must leave the product to pack it again. Both give the
    /// fp32-operand kernel's bits on the values y holds at the product (tolerance 0), and the count says which path ran.
    /// </summary>
    [TestCase(16)]
    [TestCase(128)] // LayerNormModulate.ForwardVec writes the cast
    public void LayerNormCastIsUsedOnlyByTheNextProduct(int h)
    {
        int b = 2, n = 3, outF = 8, rows = b * n;
        var rng = new Rng(17);
        Tensor x = Up(Normal(rng, rows * h)), mod = Up(Normal(rng, b * 6 * h)), w = Up(Normal(rng, outF * h)), other = Up(Normal(rng, rows * h));
        Tensor y = Gpu.Allocate(rows, h), mean = Gpu.Allocate(rows), rstd = Gpu.Allocate(rows), output = Gpu.Allocate(rows, outF);
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        (float[] Output, long Casts) Run(PackedGemmKernel kind, bool overwrite)
        {
            Gpu.PackedGemm = kind;
            long casts = Gpu.LayerNormCastOperands;
            using (Gpu.BindParameters(w))
            {
                Gpu.LayerNormModulate(x, mod, 6, 0, 1, y, mean, rstd, b, n, h);
                if (overwrite) Gpu.Copy(other, y);
                Gpu.Linear(y, w, null, output, rows, h, outF);
            }
            var host = new float[rows * outF];
            Gpu.Download(output, host);
            return (host, Gpu.LayerNormCastOperands - casts);
        }
        try
        {
            foreach (bool overwrite in new[] { false, true })
            {
                var want = Run(PackedGemmKernel.Off, overwrite);
                var got = Run(PackedGemmKernel.Packed, overwrite);
                AssertSameBits(got.Output, want.Output, outF, overwrite ? "y overwritten after LN-modulate" : "y as LN-modulate wrote it");
                Assert.That(got.Casts, Is.EqualTo(overwrite ? 0 : 1), overwrite ? "the stale cast must not be used" : "the cast must be used");
            }
        }
        finally { Gpu.PackedGemm = PackedGemmKernel.Off; }
    }

    /// <summary>
    /// The joint attention's bf16 cast of its text output (the tiled kernel with <see cref="AttentionArgs.PackOut"/>), taken
    /// by the product that reads that output next, as <see cref="LayerNormCastIsUsedOnlyByTheNextProduct"/> checks for
    /// LN-modulate: the same bits as the fp32-operand path (tolerance 0) with the output as the attention wrote it, and a
    /// copy into it in between must leave the product to pack it again. D = 8 and 64 (the paper's), 3 and 35 text tokens.
    /// </summary>
    [TestCase(2, 3, 16, 2)]
    [TestCase(2, 35, 128, 2)]
    public void AttentionCastIsUsedOnlyByTheNextProduct(int b, int l, int h, int heads)
    {
        int outF = 8, rows = b * l;
        var rng = new Rng(23);
        Tensor qkvX = Up(Normal(rng, b * 3 * h)), qkvU = Up(Normal(rng, rows * 3 * h)), w = Up(Normal(rng, outF * h)), other = Up(Normal(rng, rows * h));
        Tensor outX = Gpu.Allocate(b, h), outU = Gpu.Allocate(rows, h), output = Gpu.Allocate(rows, outF), noProbs = Gpu.Allocate(0);
        Assert.That(Gpu.UsesTiledAttention(l, h, heads), Is.True, "the tiled kernel writes the cast");
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        (float[] Output, long Casts) Run(PackedGemmKernel kind, bool overwrite)
        {
            Gpu.PackedGemm = kind;
            long casts = Gpu.AttentionCastOperands;
            using (Gpu.BindParameters(w))
            {
                Gpu.JointAttention(qkvX, qkvU, noProbs, outX, outU, b, l, h, heads);
                if (overwrite) Gpu.Copy(other, outU);
                Gpu.Linear(outU, w, null, output, rows, h, outF);
            }
            var host = new float[rows * outF];
            Gpu.Download(output, host);
            return (host, Gpu.AttentionCastOperands - casts);
        }
        try
        {
            foreach (bool overwrite in new[] { false, true })
            {
                var want = Run(PackedGemmKernel.Off, overwrite);
                var got = Run(PackedGemmKernel.Packed, overwrite);
                AssertSameBits(got.Output, want.Output, outF, overwrite ? "outU overwritten after the attention" : "outU as the attention wrote it");
                Assert.That(got.Casts, Is.EqualTo(overwrite ? 0 : 1), overwrite ? "the stale cast must not be used" : "the cast must be used");
            }
        }
        finally { Gpu.PackedGemm = PackedGemmKernel.Off; }
    }

    // One training step of the depth-2 DiT (its last block skips its text stream's proj_c and MLP): forward 25 x·Wᵀ (6 embedding
    // linears; per block adaLN, adaLN_c, qkv, qkv_c, proj, fc1, fc2, and in the first block proj_c, fc1 and fc2 of the text MLP;
    // the final adaLN and linear); backward a dW product for each of the 25 linears and a dx product for the 21 whose input is not
    // data (x_embedder, the text embedder, t_embedder's first linear and the condition's first linear have none).
    private const int DxProductsPerStep = 21;
    private const int ProductsPerStep = 25 + 25 + DxProductsPerStep;
    // The LN-modulates before qkv (2), qkv_c (2: the second block's is the first block's end, its gated residual fused with it), fc1 (2),
    // the text fc1 (1) and the final linear, each cast for the product that follows it.
    private const int LayerNormCastsPerStep = 8;
    // The GELUs of the three MLPs the step runs, each cast for its fc2.
    private const int GeluCastsPerStep = 3;
    // The first block's joint attention (D = 8: the tiled kernel), its text output cast for proj_c; the last block has no proj_c.
    private const int AttentionCastsPerStep = 1;

    /// <summary>
    /// Training in bf16 with <see cref="GpuOps.PackedGemm"/> set: inside the trainer's <see cref="GpuOps.BindParameters"/>
    /// scope every product runs on packed operands (x·Wᵀ with W from the parameters' bf16 copy and x, after an
    /// LN-modulate or the GELU, as that kernel cast it; dy·W and dyᵀ·x with dy's rows and columns packed in one pass and the other
    /// operands packed across their columns) and AdamW keeps the copy current. Two steps give the fp32-operand path's
    /// losses and parameters bit for bit (tolerance 0); without warm-up the first step changes the weights, so a stale
    /// copy would change the second. Every width and row count is a multiple of 8, so every product qualifies (checked
    /// by the counts). On CUDA for each packed kernel; on the slow simulator for KernelPacked, whose bits the other
    /// gives (LdMatrixKernelGivesTheBitsOfThePackedKernel).
    /// </summary>
    [Test]
    public void TrainingOnPackedOperandsGivesTheBitsOfTheFp32OperandPath()
    {
        var cfg = new Tdsm.Model.DiTConfig(InChannels: 8, CondSize: 16, Hidden: 16, Depth: 2, Heads: 2, LocalTokens: 3);
        var rng = new Rng(41);
        int classes = 3, samples = 8, steps = 2;
        float[] feats = Normal(rng, samples * 8), text = Normal(rng, classes * 4 * 16);
        var labels = Enumerable.Range(0, samples).Select(i => i % classes).ToArray();
        var init = Normal(rng, Tdsm.Model.DiT.BuildLayout(cfg).Count);
        for (int i = 0; i < init.Length; i++) init[i] *= 0.2f;
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        (float[] Parameters, double[] Losses, long Products, long AdamW, int Ranges) Train(PackedGemmKernel kind)
        {
            var model = new Tdsm.Model.DiT(cfg, Gpu);
            model.LoadParameters(init);
            var trainer = new Tdsm.Training.TdsmTrainer(model, new Tdsm.Training.TrainConfig(Iterations: steps, Batch: 4, Lr: 1e-2, Warmup: 0, Seed: 3),
                feats, labels, new Tdsm.Model.TextTable(Gpu, text, classes, 4, 16), [0, 1, 2]);
            Gpu.PackedGemm = kind;
            long products = Gpu.PackedProducts, adamw = Gpu.PackedAdamWSteps, casts = Gpu.LayerNormCastOperands, shared = Gpu.SharedDyPacks;
            long geluCasts = Gpu.GeluCastOperands, attentionCasts = Gpu.AttentionCastOperands;
            try
            {
                var losses = trainer.TrainSteps(steps).Select(p => p.Loss).ToArray();
                var parameters = new float[init.Length];
                Gpu.Download(model.Parameters, parameters);
                Assert.That(Gpu.LayerNormCastOperands - casts, Is.EqualTo(kind == PackedGemmKernel.Off ? 0 : steps * LayerNormCastsPerStep), $"{kind}: A operands cast by LN-modulate");
                Assert.That(Gpu.GeluCastOperands - geluCasts, Is.EqualTo(kind == PackedGemmKernel.Off ? 0 : steps * GeluCastsPerStep), $"{kind}: A operands cast by the GELU");
                Assert.That(Gpu.AttentionCastOperands - attentionCasts, Is.EqualTo(kind == PackedGemmKernel.Off ? 0 : steps * AttentionCastsPerStep),
                    $"{kind}: A operands cast by the joint attention");
                Assert.That(Gpu.SharedDyPacks - shared, Is.EqualTo(kind == PackedGemmKernel.Off ? 0 : steps * DxProductsPerStep), $"{kind}: backwards that packed dy once for dx and dW");
                return (parameters, losses, Gpu.PackedProducts - products, Gpu.PackedAdamWSteps - adamw, trainer.Optimizer.Ranges.Count);
            }
            finally { Gpu.PackedGemm = PackedGemmKernel.Off; }
        }
        var want = Train(PackedGemmKernel.Off);
        Assert.That((want.Products, want.AdamW), Is.EqualTo((0L, 0L)), "Off: nothing packed");
        var kinds = Gpu.Device.IsCuda ? new[] { PackedGemmKernel.Packed, PackedGemmKernel.LdMatrix, PackedGemmKernel.LdMatrixWide, PackedGemmKernel.LdMatrixAsync, PackedGemmKernel.LdMatrixWideAsync } : [PackedGemmKernel.Packed];
        foreach (var kind in kinds)
        {
            var got = Train(kind);
            Assert.That(want.Losses.All(double.IsFinite), Is.True, "fp32-operand losses finite (identical NaNs would pass the bit comparison)");
            AssertSameBits(got.Losses, want.Losses, 1, $"{kind}: losses");
            AssertSameBits(got.Parameters, want.Parameters, 1, $"{kind}: parameters after {steps} steps");
            Assert.That(got.Products, Is.EqualTo(steps * ProductsPerStep), $"{kind}: products on packed operands");
            Assert.That(got.AdamW, Is.EqualTo(steps * got.Ranges), $"{kind}: AdamW launches that wrote the bf16 copy");
        }
    }

    /// <summary>
    /// AdamW inside a <see cref="GpuOps.BindParameters"/> scope whose bf16 copy exists updates the copy too, also
    /// for ranges that start and end inside a word and a buffer of odd length (its last element has no word): the
    /// parameters equal those of the plain AdamW kernel (tolerance 0), and a product whose W spans two of the ranges,
    /// read from the copy, gives the bits of the fp32-operand kernel on the updated W.
    /// </summary>
    [Test]
    public void AdamWKeepsTheBf16CopyOfTheBoundParameters()
    {
        var rng = new Rng(9);
        const int count = 77;
        float[] p0 = Normal(rng, count), g = Normal(rng, count), x = Normal(rng, 3 * 8);
        (int Start, int Length)[] ranges = [(0, 13), (13, 18), (31, 46)];  // boundaries at odd elements; the last ends at 77
        var cfg = new Tdsm.Reference.AdamWConfig(1e-2, WeightDecay: 0.1);
        Gpu.GemmPrecision = GemmPrecision.Bf16;
        float[] Run(bool bound, out float[] y)
        {
            Tensor p = Up(p0), gt = Up(g), m = Gpu.Allocate(count), v = Gpu.Allocate(count), yt = Gpu.Allocate(3 * 4);
            var w1 = Gpu.View(p, 0, 2, 8);    // (2, 8): the first product makes the copy
            var w2 = Gpu.View(p, 24, 4, 8);   // (4, 8) = elements 24..55, in the second and third ranges
            long adamw = Gpu.PackedAdamWSteps, products = Gpu.PackedProducts;
            Gpu.PackedGemm = bound ? PackedGemmKernel.Packed : PackedGemmKernel.Off;
            try
            {
                using (bound ? Gpu.BindParameters(p) : null)
                {
                    Gpu.Linear(Up(x), w1, null, Gpu.Allocate(3 * 2), 3, 8, 2);
                    for (int step = 1; step <= 2; step++)
                        foreach (var (start, length) in ranges)
                            Gpu.AdamWStep(Gpu.View(p, start, length), Gpu.View(gt, start, length), Gpu.View(m, start, length), Gpu.View(v, start, length), 1e-2, cfg, step);
                    Gpu.Linear(Up(x), w2, null, yt, 3, 8, 4);
                }
            }
            finally { Gpu.PackedGemm = PackedGemmKernel.Off; }
            Assert.That(Gpu.PackedAdamWSteps - adamw, Is.EqualTo(bound ? 2 * ranges.Length : 0), "AdamW launches that wrote the copy");
            Assert.That(Gpu.PackedProducts - products, Is.EqualTo(bound ? 2 : 0), "products on packed operands");
            y = new float[3 * 4];
            Gpu.Download(yt, y);
            var host = new float[count];
            Gpu.Download(p, host);
            return host;
        }
        var want = Run(bound: false, out var yWant);
        var got = Run(bound: true, out var yGot);
        AssertSameBits(got, want, 1, "parameters after AdamW with the bf16 copy vs plain AdamW");
        AssertSameBits(yGot, yWant, 4, "x·W2ᵀ from the updated copy vs from the fp32 parameters");
    }

    [Test]
    public void PackedOperandsNeedAnEvenK()
    {
        using var p = Gpu.Device.Accelerator.Allocate1D<uint>(16);
        Assert.Throws<ArgumentException>(() => Gpu.MatMulPacked(p.View, p.View, Up(new float[4]), null, 2, 2, 3, accumulate: false));
        Assert.Throws<ArgumentException>(() => Gpu.PackBf16(Up(new float[6]), p.View, 2, 3, transpose: false));
        Assert.Throws<ArgumentException>(() => Gpu.MatMulPackedLdMatrix(p.View, p.View, Up(new float[4]), null, 2, 2, 4, accumulate: false));
    }

    /// <summary>
    /// One mma through <see cref="Bf16.Mma"/> with the fragments loaded by the PTX ISA layout
    /// (its doc): on CUDA this checks that layout against the tensor cores, on the simulator the
    /// per-instruction emulation. D = C + A·B vs float64 over the bf16-rounded A, B: |err| ≤ 1e-5·s
    /// (the hardware may align and truncate the 17 terms inside one mma; a layout error is O(s)).
    /// </summary>
    [Test]
    public void SingleMmaFollowsTheDocumentedFragmentLayout()
    {
        var rng = new Rng(7);
        float[] a = Normal(rng, 16 * 16), b = Normal(rng, 16 * 8), c = Normal(rng, 16 * 8);
        var acc = Device.Accelerator;
        using var da = acc.Allocate1D(a); using var db = acc.Allocate1D(b); using var dc = acc.Allocate1D(c);
        using var dd = acc.Allocate1D<float>(16 * 8);
        using var packed = acc.Allocate1D<uint>(1);
        var kernel = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<uint>>(MmaProbe);
        kernel(new KernelConfig(1, 32), da.View, db.View, dc.View, dd.View, packed.View);
        acc.Synchronize();
        var d = dd.GetAsArray1D();
        Assert.That(packed.GetAsArray1D()[0], Is.EqualTo(0xC0003F80u), "Bf16.Pack(1, -2) on this device: low half = first argument");
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double r = c[i * 8 + j], s = Math.Abs(c[i * 8 + j]);
                for (int k = 0; k < 16; k++)
                {
                    double p = (double)Bf16.Round(a[i * 16 + k]) * Bf16.Round(b[k * 8 + j]);
                    r += p; s += Math.Abs(p);
                }
                Assert.That(Math.Abs(d[i * 8 + j] - r), Is.Not.NaN.And.LessThanOrEqualTo(RoundedTolerance * s), $"D[{i},{j}]");
            }
    }

    /// <summary>A (16,16), B (16,8) as [k][n], C and D (16,8), all row-major; one warp.</summary>
    private static void MmaProbe(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d, ArrayView<uint> packed)
    {
        int lane = ILGPU.Group.IdxX, g = lane >> 2, t = lane & 3;
        uint a0 = Bf16.Pack(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]);
        uint a1 = Bf16.Pack(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]);
        uint a2 = Bf16.Pack(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]);
        uint a3 = Bf16.Pack(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9]);
        uint b0 = Bf16.Pack(b[2 * t * 8 + g], b[(2 * t + 1) * 8 + g]);
        uint b1 = Bf16.Pack(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
        float d0 = c[g * 8 + 2 * t], d1 = c[g * 8 + 2 * t + 1], d2 = c[(g + 8) * 8 + 2 * t], d3 = c[(g + 8) * 8 + 2 * t + 1];
        Bf16.Mma(ref d0, ref d1, ref d2, ref d3, a0, a1, a2, a3, b0, b1);
        d[g * 8 + 2 * t] = d0; d[g * 8 + 2 * t + 1] = d1; d[(g + 8) * 8 + 2 * t] = d2; d[(g + 8) * 8 + 2 * t + 1] = d3;
        if (lane == 0) packed[0] = Bf16.Pack(1f, -2f);
    }

    /// <summary>As <see cref="SingleMmaFollowsTheDocumentedFragmentLayout"/> for <see cref="Tf32.Mma"/> (m16n8k8).</summary>
    [Test]
    public void SingleTf32MmaFollowsTheDocumentedFragmentLayout()
    {
        var rng = new Rng(8);
        float[] a = Normal(rng, 16 * 8), b = Normal(rng, 8 * 8), c = Normal(rng, 16 * 8);
        var acc = Device.Accelerator;
        using var da = acc.Allocate1D(a); using var db = acc.Allocate1D(b); using var dc = acc.Allocate1D(c);
        using var dd = acc.Allocate1D<float>(16 * 8);
        var kernel = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(MmaProbeTf32);
        kernel(new KernelConfig(1, 32), da.View, db.View, dc.View, dd.View);
        acc.Synchronize();
        var d = dd.GetAsArray1D();
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double r = c[i * 8 + j], s = Math.Abs(c[i * 8 + j]);
                for (int k = 0; k < 8; k++)
                {
                    double p = (double)Tf32.Round(a[i * 8 + k]) * Tf32.Round(b[k * 8 + j]);
                    r += p; s += Math.Abs(p);
                }
                Assert.That(Math.Abs(d[i * 8 + j] - r), Is.Not.NaN.And.LessThanOrEqualTo(RoundedTolerance * s), $"D[{i},{j}]");
            }
    }

    /// <summary>A (16,8), B (8,8) as [k][n], C and D (16,8), all row-major; one warp.</summary>
    private static void MmaProbeTf32(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d)
    {
        int lane = ILGPU.Group.IdxX, g = lane >> 2, t = lane & 3;
        uint a0 = Tf32.Bits(a[g * 8 + t]), a1 = Tf32.Bits(a[(g + 8) * 8 + t]), a2 = Tf32.Bits(a[g * 8 + t + 4]), a3 = Tf32.Bits(a[(g + 8) * 8 + t + 4]);
        uint b0 = Tf32.Bits(b[t * 8 + g]), b1 = Tf32.Bits(b[(t + 4) * 8 + g]);
        float d0 = c[g * 8 + 2 * t], d1 = c[g * 8 + 2 * t + 1], d2 = c[(g + 8) * 8 + 2 * t], d3 = c[(g + 8) * 8 + 2 * t + 1];
        Tf32.Mma(ref d0, ref d1, ref d2, ref d3, a0, a1, a2, a3, b0, b1);
        d[g * 8 + 2 * t] = d0; d[g * 8 + 2 * t + 1] = d1; d[(g + 8) * 8 + 2 * t] = d2; d[(g + 8) * 8 + 2 * t + 1] = d3;
    }

    [Test]
    public void Tf32RoundsToNearestTiesAway()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Tf32.Round(1f + MathF.Pow(2, -11)), Is.EqualTo(1f + MathF.Pow(2, -10)), "tie 1 + 2⁻¹¹ goes away from zero");
            Assert.That(Tf32.Round(-(1f + MathF.Pow(2, -11))), Is.EqualTo(-(1f + MathF.Pow(2, -10))), "negative tie goes away from zero");
            Assert.That(Tf32.Round(1f + MathF.Pow(2, -11) - MathF.Pow(2, -20)), Is.EqualTo(1f), "below the tie rounds down");
            Assert.That(Tf32.Round(-3.14159f), Is.EqualTo(-3.140625f));
            Assert.That(Tf32.Round(float.PositiveInfinity), Is.EqualTo(float.PositiveInfinity));
            Assert.That(float.IsNaN(Tf32.Round(float.NaN)), Is.True);
        });
    }

    [Test]
    public void Bf16RoundsToNearestEven()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Bf16.Round(1f + MathF.Pow(2, -8)), Is.EqualTo(1f), "tie 1 + 2⁻⁸ goes to the even 1");
            Assert.That(Bf16.Round(1f + 3 * MathF.Pow(2, -8)), Is.EqualTo(1f + MathF.Pow(2, -6)), "tie 1 + 3·2⁻⁸ goes to the even 1 + 2⁻⁶");
            Assert.That(Bf16.Round(1f + MathF.Pow(2, -8) + MathF.Pow(2, -20)), Is.EqualTo(1f + MathF.Pow(2, -7)), "above the tie rounds up");
            Assert.That(Bf16.Round(-3.14159f), Is.EqualTo(-3.140625f));
            Assert.That(Bf16.Round(float.PositiveInfinity), Is.EqualTo(float.PositiveInfinity));
            Assert.That(Bf16.Round(float.MaxValue), Is.EqualTo(float.PositiveInfinity), "overflow rounds to infinity");
            Assert.That(float.IsNaN(Bf16.Round(float.NaN)), Is.True);
            Assert.That(Bf16.Pack(1f, -2f), Is.EqualTo(0xC0003F80u), "low half = first argument");
        });
    }

    /// <summary>
    /// The fp32-operand kernels compiled for two blocks per SM (<see cref="GpuOps.TensorCoreGroupsPerSM"/> = 2, the
    /// default) carry the launch bounds in their PTX, and with ptxas at hand fit their share of the register file, 128 registers (two blocks of 256
    /// threads per SM) spilling at most a few words: bf16 ≤ 64 bytes, tf32 ≤ 256 (ptxas 11.8 on 2026-11-27: 24 and 128).
    /// The packed-operand kernels, always loaded bounded for two, must not spill at all (ptxas 11.8, 2026-11-27:
    /// KernelPacked 122 registers; KernelLdMatrix 134 unbounded, 128 bounded; KernelLdMatrixWide, 128 threads, 252 of its 256).
    /// The PTX is assembled as the tier loads it: with the inline-asm operand slots lifted into registers (LiftedKernels;
    /// KernelLdMatrixAsync without that needs a 4,808-byte stack frame, ptxas 11.8, 2026-11-28).
    /// </summary>
    [TestCase(nameof(TensorCoreGemm.Kernel), 64)]
    [TestCase(nameof(TensorCoreGemm.KernelTf32), 256)]
    [TestCase(nameof(TensorCoreGemm.KernelPacked), 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrix), 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixWide), 0)]  // 128 threads: 256 registers per thread for two blocks
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixShifted), 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixTapRows), 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixAsync), 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixWideAsync), 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixShiftedAsync), 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixTapRowsAsync), 0)]
    public void BoundForTwoBlocksPerSmFitsItsRegisterShare(string kernelName, int maxSpillBytes)
    {
        var method = typeof(TensorCoreGemm).GetMethod(kernelName)!;
        var bounds = PtxCompiler.TierBounds(method); // 2 blocks per SM of the kernel's block size (Wide: 128 threads)
        int threads = bounds.MaxNumThreadsPerGroup!.Value;
        Assert.That(bounds.MinNumGroupsPerMultiprocessor, Is.EqualTo(2), "the tier's bounds are for two blocks per SM");
        string ptx = PtxLocalSlots.Promote(PtxCompiler.CompileOne(method, bounds)).Ptx;
        Assert.That(Regex.IsMatch(ptx, $@"\.maxntid\s+{threads}\b") && Regex.IsMatch(ptx, @"\.minnctapersm\s+2\b"), Is.True, "launch bounds in the PTX");
        var (exitCode, log) = Ptxas.Assemble(ptx, kernelName + "-2PerSM");
        if (log is null) Assert.Ignore(Ptxas.NotConfigured);
        Assert.That(exitCode, Is.EqualTo(0), log);
        int registers = int.Parse(Regex.Match(log, @"Used (\d+) registers").Groups[1].Value);
        int spilled = int.Parse(Regex.Match(log, @"(\d+) bytes spill stores").Groups[1].Value);
        Assert.That(registers, Is.Not.NaN.And.LessThanOrEqualTo(65536 / (2 * threads)), "registers");
        Assert.That(spilled, Is.Not.NaN.And.LessThanOrEqualTo(maxSpillBytes), "spill stores (bytes)");
    }

    /// <summary>The fp32-operand kernels bounded for one or two blocks per SM give the same bits (register allocation
    /// differs, arithmetic does not); on CUDA a split product too. The simulator ignores launch bounds, so there the
    /// comparison only shows that both variants load and write every element (no NaN left of the poisoned C);
    /// the bits are compared where it matters, on CUDA.</summary>
    [TestCase(GemmPrecision.Bf16)]
    [TestCase(GemmPrecision.Tf32)]
    public void BlocksPerSmDoNotChangeTheBits(GemmPrecision precision)
    {
        var rng = new Rng(12);
        Gpu.GemmPrecision = precision;
        var shapes = Gpu.Device.IsCuda ? new[] { (133, 131, 77), (37, 29, 1100) } : [(133, 131, 77)];
        foreach (var (m, n, k) in shapes)
        {
            float[] a = Normal(rng, m * k), b = Normal(rng, n * k), bias = Normal(rng, n);
            float[] Product(int groups)
            {
                Gpu.TensorCoreGroupsPerSM = groups;
                try { return Run(a, b, bias, Enumerable.Repeat(float.NaN, m * n).ToArray(), GemmLayout.AB, m, n, k, accumulate: false); }
                finally { Gpu.TensorCoreGroupsPerSM = TensorCoreGemm.MinGroupsPerSM; }
            }
            float[] two = Product(2), one = Product(1);
            Assert.That(one, Has.None.NaN, $"{precision} {m}x{n}x{k}: C written (one block per SM)");
            AssertSameBits(two, one, n, $"{precision} {m}x{n}x{k}: two blocks per SM vs one");
        }
    }

    /// <summary>
    /// The kernel through ILGPU's PTX backend for sm_80 (no driver needed): the mma and cvt
    /// instructions are there. ILGPU passes inline-asm operands through one-word <c>.local</c>
    /// slots and keeps the simulator branch behind a constant predicate; ptxas folds both away (except with cp.async in the
    /// kernel, hence LiftedKernels). AssemblesWithoutStackOrSpills: with a ptxas (TDSM_PTXAS, e.g. from Debian's
    /// nvidia-cuda-toolkit package; ignored without one) the PTX as the tier loads it (slots lifted) is assembled and must
    /// need no stack frame and no spills.
    /// </summary>
    [TestCase(nameof(TensorCoreGemm.Kernel), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 32, "cvt.rn.bf16x2.f32", 2 * 2 * 8)]
    [TestCase(nameof(TensorCoreGemm.KernelTf32), "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", 64, "cvt.rna.tf32.f32", 2 * 2 * 16)]
    [TestCase(nameof(TensorCoreGemm.KernelPacked), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 32, "cvt.rn.bf16x2.f32", 3 * 32)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrix), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 64, "cvt.rn.bf16x2.f32", 3 * 32)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixWide), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 128, "cvt.rn.bf16x2.f32", 3 * 64)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixShifted), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 64, "cvt.rn.bf16x2.f32", 0)] // fp32 epilogue only
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixTapRows), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 64, "cvt.rn.bf16x2.f32", 32)] // no packed fast path
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixAsync), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 96, "cvt.rn.bf16x2.f32", 3 * 32)] // three stages
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixWideAsync), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 192, "cvt.rn.bf16x2.f32", 3 * 64)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixShiftedAsync), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 96, "cvt.rn.bf16x2.f32", 0)]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixTapRowsAsync), "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 96, "cvt.rn.bf16x2.f32", 32)]
    public void CompilesToPtxWithMmaSync(string kernelName, string mmaText, int mmaCount, string cvtText, int cvtCount)
    {
        // mma: 4×4 tiles × the k groups of a K-step (2 for bf16, 4 for tf32; KernelLdMatrix's loop body holds two
        // K-steps, one per shared stage; KernelLdMatrixWide's warps have 4×8 tiles); cvt: the words a
        // thread stages per operand (8 bf16 pairs, 16 tf32) in two staging paths (K- and MN-contiguous),
        // none for the kernels on packed operands, whose epilogue has one instead per store of the 32
        // pairs a thread owns (GemmArgs.PackedOut), three times where the GEMMs write packed C: the general path and the
        // packed fast path's two bodies (with and without GELU); the convolutions' TapRows kernels have only the first.
        var method = typeof(TensorCoreGemm).GetMethod(kernelName)!;
        string ptx = PtxCompiler.CompileOne(method, PtxCompiler.TierBounds(method)); // the launch bounds change no instruction
        int mma = Regex.Matches(ptx, Regex.Escape(mmaText)).Count;
        int cvt = Regex.Matches(ptx, Regex.Escape(cvtText)).Count;
        var depots = Regex.Matches(ptx, @"\.local \.align \d+ \.b8 __local_depot\d+\[(\d+)\]").Select(x => int.Parse(x.Groups[1].Value)).ToList();
        int localOps = Regex.Matches(ptx, @"\b(ld|st)\.local\b").Count;
        TestContext.Out.WriteLine($"{kernelName} PTX: {ptx.Split('\n').Length} lines; {mmaText}: {mma}; {cvtText}: {cvt}; "
            + $".local: {depots.Count} slots, {depots.Sum()} bytes, {localOps} ld/st.local (asm operand slots)");
        Assert.Multiple(() =>
        {
            Assert.That(ptx, Does.Contain(".entry"));
            Assert.That(mma, Is.EqualTo(mmaCount), mmaText);
            Assert.That(cvt, Is.EqualTo(cvtCount), cvtText);
        });
    }

    [TestCase(nameof(TensorCoreGemm.Kernel))]
    [TestCase(nameof(TensorCoreGemm.KernelTf32))]
    [TestCase(nameof(TensorCoreGemm.KernelPacked))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrix))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixWide))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixShifted))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixTapRows))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixAsync))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixWideAsync))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixShiftedAsync))]
    [TestCase(nameof(TensorCoreGemm.KernelLdMatrixTapRowsAsync))]
    [TestCase(nameof(TensorCoreGemm.KernelWgmma))] // for sm_90a, with a CUDA 12+ ptxas
    [TestCase(nameof(TensorCoreGemm.KernelWgmmaShifted))]
    [TestCase(nameof(TensorCoreGemm.KernelWgmmaTapRows))]
    [TestCase(nameof(TensorCoreGemm.KernelWgmmaDeep))]
    public void AssemblesWithoutStackOrSpills(string kernelName) =>
        Ptxas.AssertAssemblesWithoutSpills(Ptxas.Binary is null && (Ptxas.Sm90aBinary is null || !kernelName.StartsWith("KernelWgmma", StringComparison.Ordinal)) ? ""
            : PtxLocalSlots.Promote(PtxCompiler.CompileOne(typeof(TensorCoreGemm).GetMethod(kernelName)!, KernelSpecialization.Empty)).Ptx, kernelName);

    /// <summary>
    /// The PTX of <see cref="TensorCoreGemm.KernelWgmma"/> and its convolution twins: per K-step (3 in the loop body, one per stage) a wgmma.fence, 2
    /// m64n128k16 (one per k group), one commit and one wait, and the proxy fence after the cp.async wait;
    /// retargeted as LiftedKernels loads it (sm_90a, shared aligned to 1,024). With an sm_90a ptxas (CUDA 12+,
    /// TDSM_PTXAS_SM90A or TDSM_PTXAS; ignored without): assembles within the register share of 2 blocks of 256 threads
    /// per SM, no stack or spills, and no warning that the wgmma are serialized (C7515 and its kin, which ptxas 12.4 gave
    /// while the accumulators were asm operands: ILGPU's copies of them defined them between a wgmma and its wait). With a
    /// cuobjdump beside that ptxas, the SASS: one HGMMA.64x128x16 per wgmma, each adding to its accumulators, and no HMMA.
    /// </summary>
    [TestCase(nameof(TensorCoreGemm.KernelWgmma))]
    [TestCase(nameof(TensorCoreGemm.KernelWgmmaShifted))]
    [TestCase(nameof(TensorCoreGemm.KernelWgmmaTapRows))]
    [TestCase(nameof(TensorCoreGemm.KernelWgmmaDeep))] // 4 stages, each K-step waits for all but its own batch, 1 wait after the loop
    public void WgmmaKernelPtxIsAPipelineForSm90a(string kernelName)
    {
        var method = typeof(TensorCoreGemm).GetMethod(kernelName)!;
        string ptx = PtxCompiler.CompileOne(method, PtxCompiler.TierBounds(method));
        int Count(string text) => Regex.Matches(ptx, Regex.Escape(text)).Count;
        bool deep = kernelName == nameof(TensorCoreGemm.KernelWgmmaDeep);
        int stages = deep ? 4 : 3;
        Assert.Multiple(() =>
        {
            Assert.That(Count("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16"), Is.EqualTo(2 * stages), "wgmma");
            Assert.That(Count("wgmma.fence.sync.aligned;"), Is.EqualTo(stages), "wgmma.fence");
            Assert.That(Count("wgmma.commit_group.sync.aligned;"), Is.EqualTo(stages), "commit");
            Assert.That(Count("wgmma.wait_group.sync.aligned 0;"), Is.EqualTo(deep ? 1 : stages), "wait for all");
            Assert.That(Count("wgmma.wait_group.sync.aligned 1;"), Is.EqualTo(deep ? stages : 0), "wait for all but one");
            Assert.That(Count("fence.proxy.async.shared::cta;"), Is.EqualTo(stages), "proxy fence");
            Assert.That(ptx, Does.Match(@"\.target sm_80\b"), "ILGPU's own target");
        });
        var (lifted, _) = PtxLocalSlots.Promote(ptx);
        string loaded = PtxTarget.ToSm90a(lifted);
        Assert.That(loaded, Does.Match(@"(?m)^\.target sm_90a$").And.Match(deep ? @"\.extern \.shared \.align 1024 \.b8 __dyn_shared_alloca\[\]" : @"\.shared \.align 1024 \.b8 __shared_alloca0\["));
        var (exitCode, log, sass) = Ptxas.AssembleAndDisassemble(lifted, kernelName + "-2PerSM");
        if (log is null) Assert.Ignore(Ptxas.NoSm90a);
        Assert.That(exitCode, Is.EqualTo(0), log);
        int registers = int.Parse(Regex.Match(log, @"Used (\d+) registers").Groups[1].Value);
        Assert.Multiple(() =>
        {
            Assert.That(registers, Is.LessThanOrEqualTo(65536 / (2 * TensorCoreGemm.Threads)), "registers");
            Assert.That(log, Does.Contain("0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"));
            Assert.That(log, Does.Not.Contain("serialized"), "the wgmma pipeline kept");
        });
        if (sass is null)
        {
            TestContext.Out.WriteLine("SASS not checked: no cuobjdump beside the sm_90a ptxas");
            return;
        }
        // Every wgmma is an HGMMA that adds to its accumulators: C is D's own registers. The immediate scale-d 1 of
        // Wgmma.MmaM64N128K16 is what makes it so; a 0 there gives "RZ, !UPT" (D = A·B, the sums of earlier K-steps lost).
        var hgmma = Regex.Matches(sass, @"HGMMA\.64x128x16\.F32\.BF16 (R\d+), gdesc\[UR\d+\], (\S+?)[ ,;]");
        Assert.Multiple(() =>
        {
            Assert.That(hgmma, Has.Count.EqualTo(2 * stages), "HGMMA in the SASS");
            Assert.That(hgmma.Select(m => m.Groups[2].Value == m.Groups[1].Value), Is.All.True, "every HGMMA accumulates: " + string.Join(" | ", hgmma.Select(m => m.Value)));
            Assert.That(sass, Does.Not.Contain("HMMA."), "no mma.sync in a wgmma kernel");
        });
    }

    private float[] Run(float[] a, float[] b, float[]? bias, float[] c0, GemmLayout layout, int m, int n, int k, bool accumulate)
    {
        var tc = Up(c0);
        Gpu.MatMul(Up(a), Up(b), tc, bias is null ? null : Up(bias), layout, m, n, k, accumulate);
        var c = new float[m * n];
        Gpu.Download(tc, c);
        return c;
    }

    /// <summary>Checks C against both float64 references (see the class doc for the tolerances).</summary>
    private static void Check(float[] got, float[] a, float[] b, float[]? bias, float[]? c0, GemmLayout layout, int m, int n, int k, GemmPrecision precision, string what)
    {
        Func<float, float> round = precision == GemmPrecision.Bf16 ? Bf16.Round : Tf32.Round;
        double u = precision == GemmPrecision.Bf16 ? Math.Pow(2, -8) : Math.Pow(2, -11);
        double fp32Tolerance = 2 * u + u * u + RoundedTolerance;
        double worstRounded = 0, worstFp32 = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double rounded = 0, exact = 0, scale = 0;
                for (int kk = 0; kk < k; kk++)
                {
                    float x = layout == GemmLayout.AtB ? a[kk * m + i] : a[i * k + kk];
                    float y = layout == GemmLayout.ABt ? b[j * k + kk] : b[kk * n + j];
                    rounded += (double)round(x) * round(y);
                    exact += (double)x * y;
                    scale += Math.Abs((double)x * y);
                }
                double extra = (bias is null ? 0 : bias[j]) + (c0 is null ? 0 : c0[i * n + j]);
                scale += (bias is null ? 0 : Math.Abs(bias[j])) + (c0 is null ? 0 : Math.Abs(c0[i * n + j]));
                double v = got[i * n + j];
                double eRounded = Math.Abs(v - (rounded + extra)), eFp32 = Math.Abs(v - (exact + extra));
                if (!(eRounded <= RoundedTolerance * scale))
                    Assert.Fail($"{what} {precision} {layout} {m}x{n}x{k}: C[{i},{j}] = {v} vs rounded-operand reference {rounded + extra} (|err| {eRounded:G3} > {RoundedTolerance}·{scale:G4})");
                if (!(eFp32 <= fp32Tolerance * scale))
                    Assert.Fail($"{what} {precision} {layout} {m}x{n}x{k}: C[{i},{j}] = {v} vs fp32-operand reference {exact + extra} (|err| {eFp32:G3} > {fp32Tolerance:G3}·{scale:G4})");
                if (scale > 0) { worstRounded = Math.Max(worstRounded, eRounded / scale); worstFp32 = Math.Max(worstFp32, eFp32 / scale); }
            }
        TestContext.Out.WriteLine($"{what} {precision} {layout} {m}x{n}x{k}: max |err|/s vs rounded-operand reference {worstRounded:G3}, vs fp32 reference {worstFp32:G3}");
    }

    /// <summary>Fails at the first element (row-major, <paramref name="columns"/> wide) whose bits differ.</summary>
    private static void AssertSameBits(float[] got, float[] want, int columns, string what) =>
        AssertSameBits(Array.ConvertAll(got, v => (double)v), Array.ConvertAll(want, v => (double)v), columns, what); // float -> double is exact

    private static void AssertSameBits(double[] got, double[] want, int columns, string what)
    {
        Assert.That(got, Has.Length.EqualTo(want.Length), what);
        for (int i = 0; i < got.Length; i++)
            if (BitConverter.DoubleToInt64Bits(got[i]) != BitConverter.DoubleToInt64Bits(want[i]))
                Assert.Fail($"{what}: [{i / columns},{i % columns}] = {got[i]:R} vs {want[i]:R}");
    }

    /// <summary>A device tensor holding <paramref name="v"/> (freed with the op set).</summary>
    private Tensor Up(float[] v) { var t = Gpu.Allocate(v.Length); Gpu.Upload(v, t); return t; }
}
