using System.Text.RegularExpressions;
using Tdsm.Kernels.StGcn;

namespace Tdsm.Gpu.Tests;

/// <summary>
/// The conv GEMM kernels (<see cref="ConvGemm"/>) through ILGPU's PTX backend (sm_80, what ILGPU targets on the H100),
/// no driver needed, with the checks of <see cref="GemmPtxTests"/>: the 64 accumulators stay registers (no
/// <c>.local</c>), helpers are inlined (no <c>call</c>), the K-step loop body is one k's 8×8 outer product (64
/// multiply-adds fed by 4 float4 shared loads, no scalar shared loads) in one basic block, and the launch bounds
/// reach the PTX. KernelAssemblesWithoutStackOrSpills assembles the PTX for sm_80 with a ptxas (TDSM_PTXAS; ignored
/// without one): no stack frame and no spills; its register count is printed (TDSM_PTX_KEEP=DIR keeps the PTX and cubin).
/// </summary>
public class ConvGemmPtxTests
{
    private static readonly string[] KernelNames =
    [
        nameof(ConvGemm.Forward), nameof(ConvGemm.InputGrad), nameof(ConvGemm.WeightGrad), nameof(ConvGemm.ForwardWide),
        nameof(ConvGemm.InputGradWide), nameof(ConvGemm.WeightGradWide), nameof(ConvGemm.WeightGradTWide),
    ];

    [TestCaseSource(nameof(KernelNames))]
    public void KernelCompilesToUnrolledRegisterTiledPtx(string kernelName)
    {
        string ptx = PtxCompiler.CompileOne(typeof(ConvGemm).GetMethod(kernelName)!, ConvGemm.Specialization);

        int Count(string pattern) => Regex.Matches(ptx, pattern).Count;
        int mul = Count(@"\bmul(\.rn)?\.f32\b"), fma = Count(@"\bfma\.rn\.f32\b");
        int ldsV4 = Count(@"\bld\.shared\.v4\.f32\b"), lds = Count(@"\bld\.shared\.f32\b"), sts = Count(@"\bst\.shared\.f32\b");
        int ldg = Count(@"\bld\.global(\.nc)?\.f32\b"), stg = Count(@"\bst\.global\.f32\b"), div = Count(@"\b(div|rem)\.s32\b");
        TestContext.Out.WriteLine($"{kernelName} PTX: {ptx.Split('\n').Length} lines; mul.f32 {mul}, fma.rn.f32 {fma}; ld.shared.v4.f32 {ldsV4}, " +
            $"ld.shared.f32 {lds}, st.shared.f32 {sts}; ld.global.f32 {ldg}, st.global.f32 {stg}; div/rem.s32 {div}; bar.sync {Count(@"\bbar(\.sync)?\b")}");

        Assert.That(ptx, Does.Contain(".entry"));
        Assert.That(ptx, Does.Not.Contain(".local"), "the register tile spilled to local memory in ILGPU's output");
        Assert.That(Count(@"\bcall(\.uni)?\b"), Is.Zero, "a helper was not inlined");
        Assert.That(ptx, Does.Match(@"\.maxntid\s+256"), "launch bounds missing");
        Assert.That(ptx, Does.Match(@"\.minnctapersm\s+2"), "launch bounds missing");
        // Square blocks take two k per trip of the fragment loop (as Gemm.Kernel), wide blocks one.
        int kPerTrip = kernelName.EndsWith("Wide", StringComparison.Ordinal) ? 1 : 2;
        Assert.That(mul + fma, Is.EqualTo(64 * kPerTrip), $"multiply-adds of {kPerTrip} k: the 8x8 register tile, {kPerTrip} time(s)");
        Assert.That(ldsV4, Is.EqualTo(4 * kPerTrip), $"float4 fragment loads of {kPerTrip} k");
        Assert.That(lds, Is.Zero, "scalar shared loads in the inner loop");
        int first = ptx.IndexOf("ld.shared.v4.f32", StringComparison.Ordinal), last = ptx.LastIndexOf("mul.f32", StringComparison.Ordinal);
        Assert.That(Regex.IsMatch(ptx[first..last], @"^\s*L_\w+:|\bbar\b|\bbra\b", RegexOptions.Multiline), Is.False, "the k loop's body is split");
    }

    [TestCaseSource(nameof(KernelNames))]
    public void KernelAssemblesWithoutStackOrSpills(string kernelName) =>
        Ptxas.AssertAssemblesWithoutSpills(Ptxas.Binary is null ? "" : PtxCompiler.CompileOne(typeof(ConvGemm).GetMethod(kernelName)!, ConvGemm.Specialization), kernelName);
}

/// <summary>
/// The launch plans (<see cref="ConvGemm.TileFor"/>, <see cref="ConvGemm.PlanWeightGrad"/>) at every convolution of the
/// ST-GCN <c>Paper</c> encoder at N = 32, M = 2 (B = 64 person-samples), T = 300, V = 25, printed as a wave table
/// (groups, waves of <see cref="ConvGemm.TargetGroups"/>, padded-area efficiency). The weight-gradient splits must
/// cover K exactly once, in multiples of the K-step, and fill at least half the GPU.
/// </summary>
public class ConvGemmPlanTests
{
    [Test]
    public void PaperShapesFillTheGpu()
    {
        var cfg = Tdsm.StGcn.StGcnConfig.Paper(60);
        int b = 64, v = 25, t = 300;
        var rows = new List<string>();
        void Row(string name, string kind, long m, long n, long k, int z, ConvTile tile, int gx, int gy)
        {
            long groups = (long)gx * gy * z;
            long padM = gy * (tile == ConvTile.Wide ? ConvGemm.WideRows : ConvGemm.Tile), padN = gx * (tile == ConvTile.Wide ? ConvGemm.WideCols : ConvGemm.Tile);
            double waves = (double)groups / ConvGemm.TargetGroups;
            rows.Add($"{name,-9} {kind,-6} {m,5} {n,5} {k,7} {z,4} {tile,-6} {groups,6} {waves,6:F2} {groups / (Math.Ceiling(waves) * ConvGemm.TargetGroups),5:F2} {(double)m * n / (padM * padN),5:F2}");
            Assert.That(padM, Is.GreaterThanOrEqualTo(m)); Assert.That(padN, Is.GreaterThanOrEqualTo(n));
        }
        for (int i = 0; i < cfg.Layers.Count; i++)
        {
            var l = cfg.Layers[i];
            var convs = new List<(string Name, int Cin, int Cout, int Kt, int Stride)> { ("gcn", l.Cin, 3 * l.Cout, 1, 1), ("tcn", l.Cout, l.Cout, cfg.Kt, l.Stride) };
            if (l.HasResidualConv) convs.Add(("res", l.Cin, l.Cout, 1, l.Stride));
            foreach (var c in convs)
            {
                int pad = (c.Kt - 1) / 2, tout = (t + 2 * pad - c.Kt) / c.Stride + 1;
                var p = new ConvArgs { B = b, Cin = c.Cin, Cout = c.Cout, T = t, Tout = tout, V = v, Kt = c.Kt, Stride = c.Stride, Pad = pad };
                string name = $"L{i + 1} {c.Name}";
                long n = (long)tout * v;
                var tile = ConvGemm.TileFor(c.Cout, n);
                var (gx, gy) = ConvGemm.Blocks(tile, c.Cout, n);
                Row(name, "fwd", c.Cout, n, (long)c.Cin * c.Kt, b, tile, gx, gy);
                if (i > 0)
                {
                    long nPhase = (long)((t + c.Stride - 1) / c.Stride) * v; // dx by output phase
                    tile = ConvGemm.TileFor(c.Cin, nPhase);
                    (gx, gy) = ConvGemm.Blocks(tile, c.Cin, nPhase);
                    Row(name, "dx", c.Cin, nPhase, (long)c.Cout * c.Kt / c.Stride, b * c.Stride, tile, gx, gy);
                }
                var plan = ConvGemm.PlanWeightGrad(p);
                long k = (long)b * tout * v;
                Assert.That(plan.KSplit % ConvGemm.KStep, Is.Zero, name);
                Assert.That((long)plan.Splits * plan.KSplit, Is.GreaterThanOrEqualTo(k), name);
                Assert.That((long)(plan.Splits - 1) * plan.KSplit, Is.Not.NaN.And.LessThan(k), name);
                Assert.That((long)plan.GridX * plan.GridY * plan.Splits, Is.GreaterThanOrEqualTo(ConvGemm.TargetGroups / 2), $"{name}: SMs left idle");
                long wm = plan.Swapped ? (long)c.Cin * c.Kt : c.Cout, wn = plan.Swapped ? c.Cout : (long)c.Cin * c.Kt;
                Row(name, plan.Swapped ? "dW(T)" : "dW", wm, wn, plan.KSplit, plan.Splits, plan.Tile, plan.GridX, plan.GridY);
            }
            t = cfg.TemporalOut(t, l.Stride);
        }
        TestContext.Out.WriteLine("op        kind       M     N  K/split    z tile   groups  waves  fill   pad");
        foreach (var r in rows) TestContext.Out.WriteLine(r);
    }
}
