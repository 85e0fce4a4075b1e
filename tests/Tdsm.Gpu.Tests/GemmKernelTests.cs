using System.Text.RegularExpressions;
using Tdsm.Gpu;
using Tdsm.Kernels;
using Tdsm.Tensors;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// The fp32 SIMT GEMM (<see cref="Gemm"/>) through <see cref="GpuOps.MatMul"/> against a float64 reference
/// written here, for every layout, with bias and accumulate, at sizes that exercise the edge guards (odd
/// sizes, K not a multiple of the K-step, more than one 128×128 block in M and N with an interior block),
/// the unguarded path (multiples of the tile) and the split-K path (one block, K ≥ 1024). Operands are views at odd offsets (not 16-byte
/// aligned). Outputs are poisoned with NaN unless accumulated into. Tolerance per element:
/// |gpu − ref| ≤ 1e-5 · (Σ_k |A_ik·B_kj| + |bias_j| + |C0_ij|), i.e. 1e-5 relative to the size of the
/// terms summed (an fp32 sum of K terms errs by about √K·6e-8 of that for random signs, and K ≤ 3001 here).
/// </summary>
[TestFixture("simulator")]
[TestFixture("cuda")]
[NonParallelizable]
public class GemmKernelTests(string device) : GpuOpsFixture(device)
{

    [TestCase(GemmLayout.ABt, 37, 29, 45, true, false)]
    [TestCase(GemmLayout.AB, 37, 29, 45, false, true)]
    [TestCase(GemmLayout.AtB, 37, 29, 45, true, true)]
    [TestCase(GemmLayout.ABt, 150, 133, 21, true, true)]
    [TestCase(GemmLayout.AB, 150, 133, 21, false, false)]
    [TestCase(GemmLayout.AtB, 150, 133, 21, false, true)]
    [TestCase(GemmLayout.ABt, 128, 256, 16, true, true)]
    [TestCase(GemmLayout.AtB, 128, 128, 24, false, false)]
    [TestCase(GemmLayout.AB, 5, 3, 1, true, false)]
    [TestCase(GemmLayout.ABt, 37, 29, 1100, true, true)]      // K split in 2 (the last split shorter)
    [TestCase(GemmLayout.AtB, 150, 133, 1500, true, false)]   // K split in 2 over 4 blocks
    [TestCase(GemmLayout.AB, 37, 29, 3001, false, true)]      // K split in 5
    public void MatchesFloat64Reference(GemmLayout layout, int m, int n, int k, bool bias, bool accumulate) =>
        Check(layout, m, n, k, bias, accumulate);

    /// <summary>Shapes too slow for the simulator: several blocks and K-steps in every direction.</summary>
    [TestCase(GemmLayout.ABt, 515, 389, 300)]
    [TestCase(GemmLayout.AB, 389, 515, 300)]
    [TestCase(GemmLayout.AtB, 300, 515, 389)]
    public void MatchesFloat64ReferenceLarge(GemmLayout layout, int m, int n, int k)
    {
        if (!Device.IsCuda) Assert.Ignore("CUDA only (the CPU simulator takes minutes at this size)");
        Check(layout, m, n, k, true, true);
    }

    /// <summary>
    /// x·Wᵀ on operands at 16-byte boundaries with K a multiple of 4 runs on <see cref="Gemm.KernelVecABt"/> (16-byte staging;
    /// counted) and gives the bits of the scalar-staging kernel (<see cref="GpuOps.SimtVectorStaging"/> off): edge tiles in
    /// M, N and K (K not a multiple of the K-step), full tiles, and K split in two. C poisoned with NaN first.
    /// </summary>
    [TestCase(150, 133, 20, true)]
    [TestCase(128, 256, 16, false)]
    [TestCase(37, 29, 1100, true)]
    public void VectorStagingGivesTheBitsOfScalarStaging(int m, int n, int k, bool bias)
    {
        var rng = new Rng((ulong)(m * 31 + n * 7 + k));
        float[] a = Normal(rng, m * k), b = Normal(rng, n * k), bv = Normal(rng, n);
        // Offsets of whole 16-byte chunks into one storage tensor (whose start is aligned: device allocations are).
        int oa = 4, ob = oa + (a.Length + 3) / 4 * 4 + 4, obias = ob + b.Length + 4, oc = obias + n + 4;
        var storage = Gpu.Allocate(oc + m * n);
        Tensor ta = Gpu.View(storage, oa, a.Length), tb = Gpu.View(storage, ob, b.Length), tbias = Gpu.View(storage, obias, n), tc = Gpu.View(storage, oc, m * n);
        Gpu.Upload(a, ta); Gpu.Upload(b, tb); Gpu.Upload(bv, tbias);
        float[] Run(bool vector)
        {
            Gpu.Upload(Enumerable.Repeat(float.NaN, m * n).ToArray(), tc);
            long before = Gpu.SimtVectorProducts;
            bool wasVector = Gpu.SimtVectorStaging;
            Gpu.SimtVectorStaging = vector;
            try { Gpu.MatMul(ta, tb, tc, bias ? tbias : null, GemmLayout.ABt, m, n, k, accumulate: false); }
            finally { Gpu.SimtVectorStaging = wasVector; }
            Assert.That(Gpu.SimtVectorProducts - before, Is.EqualTo(vector ? 1 : 0), vector ? "the product on KernelVecABt" : "the product on Kernel");
            var got = new float[m * n];
            Gpu.Download(tc, got);
            return got;
        }
        float[] vec = Run(true), scalar = Run(false);
        Assert.That(vec, Has.None.NaN, "every element written");
        Assert.That(vec.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(scalar.Select(BitConverter.SingleToInt32Bits)), $"{m}x{n}x{k}: 16-byte staging vs scalar staging");
    }

    private void Check(GemmLayout layout, int m, int n, int k, bool bias, bool accumulate)
    {
        var rng = new Rng((ulong)(m * 1_000_003 + n * 1009 + k * 7 + (int)layout));
        float[] a = Normal(rng, m * k), b = Normal(rng, k * n), bv = Normal(rng, n);
        float[] c0 = accumulate ? Normal(rng, m * n) : Enumerable.Repeat(float.NaN, m * n).ToArray();

        // Odd element offsets into one storage tensor: no operand starts 16-byte aligned.
        int oa = 1, ob = oa + a.Length + 2, obias = ob + b.Length + 3, oc = obias + n + 1;
        var storage = Gpu.Allocate(oc + m * n);
        Tensor ta = Gpu.View(storage, oa, a.Length), tb = Gpu.View(storage, ob, b.Length);
        Tensor tbias = Gpu.View(storage, obias, n), tc = Gpu.View(storage, oc, m * n);
        Gpu.Upload(a, ta); Gpu.Upload(b, tb); Gpu.Upload(bv, tbias); Gpu.Upload(c0, tc);

        Gpu.MatMul(ta, tb, tc, bias ? tbias : null, layout, m, n, k, accumulate);
        var got = new float[m * n];
        Gpu.Download(tc, got);

        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, scale = 0;
                for (int kk = 0; kk < k; kk++)
                {
                    double x = layout == GemmLayout.AtB ? a[kk * m + i] : a[i * k + kk];
                    double y = layout == GemmLayout.ABt ? b[j * k + kk] : b[kk * n + j];
                    sum += x * y;
                    scale += Math.Abs(x * y);
                }
                if (bias) { sum += bv[j]; scale += Math.Abs(bv[j]); }
                if (accumulate) { sum += c0[i * n + j]; scale += Math.Abs(c0[i * n + j]); }
                float g = got[i * n + j];
                Assert.That(Math.Abs(g - sum), Is.Not.NaN.And.LessThanOrEqualTo(1e-5 * scale),
                    $"{layout} {m}x{n}x{k} C[{i},{j}]: gpu {g} vs float64 {sum} (scale {scale})");
            }
    }

    private static float[] Normal(Rng rng, int n)
    {
        var v = new float[n];
        rng.FillNormal(v, 1.0);
        return v;
    }
}

/// <summary>
/// <see cref="Gemm.SplitK"/> at the GEMM shapes of the DiT (benchmark shapes and the weight gradients of every
/// Linear at 17920 rows): big shapes never split, and the small-block long-K ones use every SM with a valid
/// split (multiple of the K-step, covering K, no empty split).
/// </summary>
public class GemmSplitKTests
{
    [TestCase(512, 4608, 768)]
    [TestCase(17920, 2304, 768)]
    [TestCase(17920, 3072, 768)]
    [TestCase(17920, 768, 3072)]
    [TestCase(8192, 8192, 8192)]
    [TestCase(2304, 768, 17920)]
    [TestCase(3072, 768, 17920)]
    [TestCase(768, 3072, 17920)]
    [TestCase(768, 768, 17920)]
    [TestCase(37, 29, 45)]
    [TestCase(512, 768, 768)]
    [TestCase(1920, 768, 768)]
    public void SplitsOnlyShapesThatLeaveSmsIdle(int m, int n, int k)
    {
        var (splits, kPer) = Gemm.SplitK(m, n, k);
        long blocks = (long)((m + Gemm.Tile - 1) / Gemm.Tile) * ((n + Gemm.Tile - 1) / Gemm.Tile);
        TestContext.Out.WriteLine($"{m}x{n}x{k}: {blocks} blocks, {splits} splits of K {kPer} -> {blocks * splits} groups");
        if (blocks >= Gemm.TargetGroups || k < 2 * Gemm.MinSplitK)
        {
            Assert.That((splits, kPer), Is.EqualTo((1, 0)));
            return;
        }
        Assert.That(splits, Is.InRange(2, Gemm.MaxSplits));
        Assert.That(kPer % Gemm.KStep, Is.Zero);
        Assert.That((long)splits * kPer, Is.GreaterThanOrEqualTo(k));
        Assert.That((long)(splits - 1) * kPer, Is.Not.NaN.And.LessThan(k));
        if (k >= 16 * Gemm.MinSplitK) Assert.That(blocks * splits, Is.GreaterThanOrEqualTo(Gemm.TargetGroups / 2), "SMs left idle");
    }

    /// <summary>
    /// With splitFullShapes (the fp32 SIMT kernel) a shape whose blocks fill the GPU splits only where the wave model gives at
    /// most 85 % of its unsplit waves: the skeleton stream's scoring products (M = 1,920) whose last wave is mostly idle split,
    /// the text stream's (M = 67,200) do not; without it none of them splits.
    /// </summary>
    [TestCase(1920, 2304, 768, 3)]   // 270 blocks: 2 waves, or 4 waves of a third (0.67)
    [TestCase(1920, 3072, 768, 2)]   // 360 blocks: 2 waves, or 3 of a half (0.75)
    [TestCase(67200, 768, 768, 1)]   // 3,150 blocks: 12 waves either way
    [TestCase(67200, 2304, 768, 1)]
    [TestCase(17920, 2304, 768, 1)]  // 2,520 blocks: 10 waves, or 29 of a third (0.97)
    [TestCase(17920, 768, 3072, 3)]  // 840 blocks: 4 waves, or 10 of a third (0.83)
    public void SplitsFullShapesOnlyForAMostlyIdleLastWave(int m, int n, int k, int expected)
    {
        long blocks = (long)((m + Gemm.Tile - 1) / Gemm.Tile) * ((n + Gemm.Tile - 1) / Gemm.Tile);
        Assert.That(blocks, Is.GreaterThanOrEqualTo(Gemm.TargetGroups), "a shape that fills the GPU");
        Assert.That(Gemm.SplitK(m, n, k).Splits, Is.EqualTo(1), "not split without splitFullShapes");
        var (splits, kPer) = Gemm.SplitK(m, n, k, splitFullShapes: true);
        Assert.That(splits, Is.EqualTo(expected));
        if (splits > 1) Assert.That((kPer % Gemm.KStep, (long)splits * kPer >= k, (long)(splits - 1) * kPer < k), Is.EqualTo((0, true, true)));
    }
}

/// <summary>
/// The GEMM kernel through ILGPU's PTX backend (sm_80, what ILGPU targets on the H100), no driver
/// needed: the 64 accumulators must stay registers (no <c>.local</c>), the helpers must be inlined (no
/// <c>call</c>), the K-step loop body must be one k's 8×8 outer product, 64 multiply-adds fed by 4 float4
/// shared loads (no scalar ones), and
/// the launch bounds must reach ptxas. ILGPU emits each multiply-add as <c>mul.f32</c> + <c>add.f32</c>
/// without a rounding modifier, which ptxas contracts to one FFMA; ptxas register use and spills are
/// for the GPU visit (SASS).
/// </summary>
public class GemmPtxTests
{
    [TestCase(nameof(Gemm.Kernel))]
    [TestCase(nameof(Gemm.KernelVecABt))]
    public void KernelCompilesToUnrolledRegisterTiledPtx(string kernel)
    {
        string ptx = PtxCompiler.CompileOne(typeof(Gemm).GetMethod(kernel)!, Gemm.Specialization);

        int Count(string pattern) => Regex.Matches(ptx, pattern).Count;
        int mul = Count(@"\bmul(\.rn)?\.f32\b"), fma = Count(@"\bfma\.rn\.f32\b"), add = Count(@"\badd(\.rn)?\.f32\b");
        int ldsV4 = Count(@"\bld\.shared\.v4\.f32\b"), lds = Count(@"\bld\.shared\.f32\b"), sts = Count(@"\bst\.shared\.f32\b");
        int ldgV4 = Count(@"\bld\.global\.v4\.f32\b"), ldg = Count(@"\bld\.global(\.nc)?\.f32\b"), stg = Count(@"\bst\.global\.f32\b");
        TestContext.Out.WriteLine($"PTX: {ptx.Split('\n').Length} lines; mul.f32 {mul}, fma.rn.f32 {fma}, add.f32 {add}; " +
            $"ld.shared.v4.f32 {ldsV4}, ld.shared.f32 {lds}, st.shared.f32 {sts}; ld.global.v4.f32 {ldgV4}, ld.global.f32 {ldg}, st.global.f32 {stg}; " +
            $"bar.sync {Count(@"\bbar(\.sync)?\b")}");

        Assert.That(ptx, Does.Contain(".entry"));
        Assert.That(ptx, Does.Not.Contain(".local"), "the register tile spilled to local memory in ILGPU's output");
        Assert.That(Count(@"\bcall(\.uni)?\b"), Is.Zero, "a helper was not inlined");
        Assert.That(ptx, Does.Match(@"\.maxntid\s+256"), "launch bounds missing");
        Assert.That(ldsV4, Is.EqualTo(8), "float4 fragment loads of one trip (two k)");
        Assert.That(lds, Is.Zero, "scalar shared loads in the inner loop");
        // The k loop's body is one basic block from the first fragment load to the next label, barrier or branch:
        // two k's 8 fragment loads and the 8x8 tile's 2 x 64 multiply-adds (the GELU epilogue's multiplies come after).
        int first = ptx.IndexOf("ld.shared.v4.f32", StringComparison.Ordinal);
        var end = Regex.Match(ptx[first..], @"^\s*L_\w+:|\bbar\b|\bbra\b", RegexOptions.Multiline);
        string body = ptx.Substring(first, end.Success ? end.Index : ptx.Length - first);
        int bodyMul = Regex.Matches(body, @"\bmul(\.rn)?\.f32\b").Count, bodyFma = Regex.Matches(body, @"\bfma\.rn\.f32\b").Count;
        Assert.That(bodyMul + bodyFma, Is.EqualTo(128), "multiply-adds of two k: the 8x8 register tile twice, in one basic block");
        Assert.That(Regex.Matches(body, @"\bld\.shared\.v4\.f32\b").Count, Is.EqualTo(8), "the trip's fragment loads, in the same block");
        Assert.That(Count(@"\b(div|rem)\.s32\b"), Is.Zero, "signed divisions (ILGPU may place them inside the K-step loop)");
        // Staging: scalar global loads (the fast path's 8 per K-step and the guarded ones), or with 16-byte chunks one
        // ld.global.v4 per operand on the fast path (twice: before the loop and in it).
        if (kernel == nameof(Gemm.KernelVecABt)) Assert.That(ldgV4, Is.EqualTo(4), "128-bit staging loads of A and B");
        else Assert.That(ldgV4, Is.Zero, "128-bit loads in the scalar-staging kernel");
    }

    [TestCase(nameof(Gemm.Kernel))]
    [TestCase(nameof(Gemm.KernelVecABt))]
    public void KernelAssemblesWithoutStackOrSpills(string kernel) =>
        Ptxas.AssertAssemblesWithoutSpills(Ptxas.Binary is null ? "" : PtxCompiler.CompileOne(typeof(Gemm).GetMethod(kernel)!, Gemm.Specialization), "Gemm." + kernel);
}
