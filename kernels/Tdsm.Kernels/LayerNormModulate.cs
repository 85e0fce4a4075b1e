using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using Vec4 = Tdsm.Kernels.Gemm.Vec4;

namespace Tdsm.Kernels;

/// <summary>Shapes of LN-modulate: x (B, N, H), mod (B, Chunks·H) with shift at ShiftChunk and scale at ScaleChunk.</summary>
public struct LayerNormArgs
{
    public int B, N, H, Chunks, ShiftChunk, ScaleChunk, AccumulateDx;
    /// <summary>Forward: 1 = also write y as bf16 pairs (the packed A operand of the product that reads y next); H even.</summary>
    public int PackOut;
    /// <summary><see cref="LayerNormModulate.GatedForwardVec"/>: the gate's mod (B, GateChunks·H) and its chunk.</summary>
    public int GateChunks, GateChunk;
}

/// <summary>
/// LayerNorm without affine (eps 1e-6) fused with modulate: y = LN(x)·(1 + scale[b]) + shift[b].
/// Forward: one warp per (b, token) row, float64 statistics reduced with warp shuffles; saves
/// mean and rstd; with PackOut it also casts y to bf16 pairs (LN + modulate + cast: the following
/// product's packed operand without a pack pass that reads y back). Backward in two launches, each with enough threads to fill the GPU:
/// <see cref="BackwardInput"/> is one warp per row (dx overwritten, or added with AccumulateDx = 1);
/// <see cref="BackwardModulation"/> is one thread per (b, channel) summing its N tokens into the
/// shift/scale gradients (deterministic, no atomics).
/// </summary>
public static class LayerNormModulate
{
    /// <summary>Threads per group of the row kernels: four warps, a row each. Groups of one warp (the first version)
    /// cap an SM at 32 groups, half its warps, for kernels that wait on their loads.</summary>
    public const int Threads = 128;
    /// <summary>Rows per group of the row kernels (a warp per row). Launch: grid ⌈B·N / RowsPerGroup⌉, group <see cref="Threads"/>.</summary>
    public const int RowsPerGroup = Threads / Lanes;
    private const int Lanes = 32;
    private const double Eps = 1e-6;

    private static double WarpSum(double v)
    {
        for (int offset = 16; offset > 0; offset /= 2) v += Warp.ShuffleXor(v, offset);
        return v;
    }

    /// <summary>Launch: see <see cref="RowsPerGroup"/>. packed (B·N, H/2) words, written when p.PackOut = 1 (a dummy otherwise).</summary>
    public static void Forward(ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<uint> packed, LayerNormArgs p)
    {
        int row = Grid.IdxX * RowsPerGroup + (Group.IdxX >> 5), lane = Group.IdxX & (Lanes - 1);
        if (row >= p.B * p.N) return;   // the whole warp: no shuffle waits on it
        int bi = row / p.N;
        long o = (long)row * p.H, m = (long)bi * p.Chunks * p.H;
        double s = 0;
        for (int i = lane; i < p.H; i += Lanes) s += x[o + i];
        double mu = WarpSum(s) / p.H;
        double v = 0;
        for (int i = lane; i < p.H; i += Lanes) { double d = x[o + i] - mu; v += d * d; }
        double rs = 1 / XMath.Sqrt(WarpSum(v) / p.H + Eps);
        if (lane == 0) { mean[row] = (float)mu; rstd[row] = (float)rs; }
        if (p.PackOut == 0)
        {
            for (int i = lane; i < p.H; i += Lanes) y[o + i] = Modulated(x, mod, o, m, i, mu, rs, p);
            return;
        }
        // A lane per pair of channels, so each lane packs its own two values (the same floats, then rounded as Bf16.PackRows does).
        for (int j = lane; j < p.H / 2; j += Lanes)
        {
            float y0 = Modulated(x, mod, o, m, 2 * j, mu, rs, p), y1 = Modulated(x, mod, o, m, 2 * j + 1, mu, rs, p);
            y[o + 2 * j] = y0;
            y[o + 2 * j + 1] = y1;
            packed[o / 2 + j] = Bf16.Pack(y0, y1);
        }
    }

    /// <summary>Most channels <see cref="ForwardVec"/> takes: 8 float4 chunks per lane.</summary>
    public const int MaxVecWidth = 8 * 4 * Lanes;

    /// <summary>Whether <see cref="ForwardVec"/> and <see cref="BackwardInputVec"/> take rows of <paramref name="h"/> channels
    /// (a multiple of 128 up to <see cref="MaxVecWidth"/>); their views must also be 16-byte aligned.</summary>
    public static bool VecFits(int h) => h > 0 && h % (4 * Lanes) == 0 && h <= MaxVecWidth;

    /// <summary>
    /// <see cref="Forward"/> for H a multiple of 128 up to <see cref="MaxVecWidth"/> with 16-byte aligned x, mod and y: the
    /// row is read once, as H/128 float4 chunks per lane held in registers (lane l takes chunks l, l + 32, ...), instead of
    /// three scalar passes over x. Same launch. The float64 sums run in another order than <see cref="Forward"/>'s, so
    /// mean and rstd may differ in their last bits (y within float rounding).
    /// </summary>
    public static void ForwardVec(ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<uint> packed, LayerNormArgs p)
    {
        int row = Grid.IdxX * RowsPerGroup + (Group.IdxX >> 5), lane = Group.IdxX & (Lanes - 1);
        if (row >= p.B * p.N) return;   // the whole warp: no shuffle waits on it
        int bi = row / p.N, h4 = p.H >> 2, q = p.H >> 7;   // chunks per row, chunks per lane
        long o4 = (long)row * h4 + lane, m4 = (long)bi * p.Chunks * h4 + lane;
        var x4 = x.Cast<Vec4>().AsAligned(16);
        Vec4 v0 = default, v1 = default, v2 = default, v3 = default, v4 = default, v5 = default, v6 = default, v7 = default;
        if (q > 0) v0 = x4[o4 + 0];
        if (q > 1) v1 = x4[o4 + 32];
        if (q > 2) v2 = x4[o4 + 64];
        if (q > 3) v3 = x4[o4 + 96];
        if (q > 4) v4 = x4[o4 + 128];
        if (q > 5) v5 = x4[o4 + 160];
        if (q > 6) v6 = x4[o4 + 192];
        if (q > 7) v7 = x4[o4 + 224];
        NormalizeRowVec(row, lane, q, o4, m4, v0, v1, v2, v3, v4, v5, v6, v7, mod, y, mean, rstd, packed, p);
    }

    /// <summary>
    /// The gated residual then LN-modulate of its output in one pass (sites where the model runs them back to back):
    /// sum = x + gate[b]·residual (<see cref="Residual.GatedForward4"/>'s float operations, the gate chunk p.GateChunk of gateMod
    /// (B, p.GateChunks·H)), then <see cref="ForwardVec"/> on the sums held in registers: y, mean, rstd (and the bf16 pairs) as
    /// ForwardVec gives them for the stored sum, without reading it back. Same launch and conditions as ForwardVec (every view
    /// 16-byte aligned).
    /// </summary>
    public static void GatedForwardVec(ArrayView<float> x, ArrayView<float> gateMod, ArrayView<float> residual, ArrayView<float> sum,
        ArrayView<float> mod, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<uint> packed, LayerNormArgs p)
    {
        int row = Grid.IdxX * RowsPerGroup + (Group.IdxX >> 5), lane = Group.IdxX & (Lanes - 1);
        if (row >= p.B * p.N) return;   // the whole warp: no shuffle waits on it
        int bi = row / p.N, h4 = p.H >> 2, q = p.H >> 7;
        long o4 = (long)row * h4 + lane, m4 = (long)bi * p.Chunks * h4 + lane, g4 = (long)bi * p.GateChunks * h4 + p.GateChunk * h4 + lane;
        var x4 = x.Cast<Vec4>().AsAligned(16);
        var r4 = residual.Cast<Vec4>().AsAligned(16);
        var gm4 = gateMod.Cast<Vec4>().AsAligned(16);
        var s4 = sum.Cast<Vec4>().AsAligned(16);
        Vec4 v0 = default, v1 = default, v2 = default, v3 = default, v4 = default, v5 = default, v6 = default, v7 = default;
        if (q > 0) v0 = GatedChunk(x4, r4, gm4, s4, o4 + 0, g4 + 0);
        if (q > 1) v1 = GatedChunk(x4, r4, gm4, s4, o4 + 32, g4 + 32);
        if (q > 2) v2 = GatedChunk(x4, r4, gm4, s4, o4 + 64, g4 + 64);
        if (q > 3) v3 = GatedChunk(x4, r4, gm4, s4, o4 + 96, g4 + 96);
        if (q > 4) v4 = GatedChunk(x4, r4, gm4, s4, o4 + 128, g4 + 128);
        if (q > 5) v5 = GatedChunk(x4, r4, gm4, s4, o4 + 160, g4 + 160);
        if (q > 6) v6 = GatedChunk(x4, r4, gm4, s4, o4 + 192, g4 + 192);
        if (q > 7) v7 = GatedChunk(x4, r4, gm4, s4, o4 + 224, g4 + 224);
        NormalizeRowVec(row, lane, q, o4, m4, v0, v1, v2, v3, v4, v5, v6, v7, mod, y, mean, rstd, packed, p);
    }

    // sum chunk c4 = x + gate·residual (Residual.GatedSum, GatedForward4's operations), stored and returned.
    private static Vec4 GatedChunk(ArrayView<Vec4> x4, ArrayView<Vec4> r4, ArrayView<Vec4> gm4, ArrayView<Vec4> s4, long c4, long gate4)
    {
        var r = Residual.GatedSum(x4[c4], gm4[gate4], r4[c4]);
        s4[c4] = r;
        return r;
    }

    // ForwardVec's statistics and stores for a row whose q chunks per lane are v0..v7 (zero past q).
    private static void NormalizeRowVec(int row, int lane, int q, long o4, long m4, Vec4 v0, Vec4 v1, Vec4 v2, Vec4 v3, Vec4 v4, Vec4 v5, Vec4 v6, Vec4 v7,
        ArrayView<float> mod, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<uint> packed, LayerNormArgs p)
    {
        int h4 = p.H >> 2;
        long sc4 = m4 + p.ScaleChunk * h4, sh4 = m4 + p.ShiftChunk * h4;
        double s = Sum(v0) + Sum(v1) + Sum(v2) + Sum(v3) + Sum(v4) + Sum(v5) + Sum(v6) + Sum(v7);   // chunks past q are zero
        double mu = WarpSum(s) / p.H;
        double d = (q > 0 ? Squares(v0, mu) : 0) + (q > 1 ? Squares(v1, mu) : 0) + (q > 2 ? Squares(v2, mu) : 0) + (q > 3 ? Squares(v3, mu) : 0) + (q > 4 ? Squares(v4, mu) : 0) + (q > 5 ? Squares(v5, mu) : 0) + (q > 6 ? Squares(v6, mu) : 0) + (q > 7 ? Squares(v7, mu) : 0);
        double rs = 1 / XMath.Sqrt(WarpSum(d) / p.H + Eps);
        if (lane == 0) { mean[row] = (float)mu; rstd[row] = (float)rs; }
        var y4 = y.Cast<Vec4>().AsAligned(16);
        var mod4 = mod.Cast<Vec4>().AsAligned(16);
        var packed2 = packed.Cast<ulong>();
        if (q > 0) StoreModulated(y4, mod4, packed2, o4 + 0, sc4 + 0, sh4 + 0, v0, mu, rs, p.PackOut);
        if (q > 1) StoreModulated(y4, mod4, packed2, o4 + 32, sc4 + 32, sh4 + 32, v1, mu, rs, p.PackOut);
        if (q > 2) StoreModulated(y4, mod4, packed2, o4 + 64, sc4 + 64, sh4 + 64, v2, mu, rs, p.PackOut);
        if (q > 3) StoreModulated(y4, mod4, packed2, o4 + 96, sc4 + 96, sh4 + 96, v3, mu, rs, p.PackOut);
        if (q > 4) StoreModulated(y4, mod4, packed2, o4 + 128, sc4 + 128, sh4 + 128, v4, mu, rs, p.PackOut);
        if (q > 5) StoreModulated(y4, mod4, packed2, o4 + 160, sc4 + 160, sh4 + 160, v5, mu, rs, p.PackOut);
        if (q > 6) StoreModulated(y4, mod4, packed2, o4 + 192, sc4 + 192, sh4 + 192, v6, mu, rs, p.PackOut);
        if (q > 7) StoreModulated(y4, mod4, packed2, o4 + 224, sc4 + 224, sh4 + 224, v7, mu, rs, p.PackOut);
    }

    private static double Sum(Vec4 v) => (double)v.X + v.Y + v.Z + v.W;

    private static double Squares(Vec4 v, double mu)
    {
        double a = v.X - mu, b = v.Y - mu, c = v.Z - mu, e = v.W - mu;
        return a * a + b * b + c * c + e * e;
    }

    // y chunk c4 (ModulatedValue per element); with pack, also the two bf16 words.
    private static void StoreModulated(ArrayView<Vec4> y4, ArrayView<Vec4> mod4, ArrayView<ulong> packed2, long c4, long scale4, long shift4,
        Vec4 v, double mu, double rs, int pack)
    {
        Vec4 sc = mod4[scale4], sh = mod4[shift4], r;
        r.X = ModulatedValue(v.X, mu, rs, sc.X, sh.X);
        r.Y = ModulatedValue(v.Y, mu, rs, sc.Y, sh.Y);
        r.Z = ModulatedValue(v.Z, mu, rs, sc.Z, sh.Z);
        r.W = ModulatedValue(v.W, mu, rs, sc.W, sh.W);
        y4[c4] = r;
        if (pack != 0) packed2[c4] = Bf16.Pack(r.X, r.Y) | ((ulong)Bf16.Pack(r.Z, r.W) << 32);
    }

    // y[o + i] of row o's LN-modulate (m: the row's sample offset into mod).
    private static float Modulated(ArrayView<float> x, ArrayView<float> mod, long o, long m, int i, double mu, double rs, LayerNormArgs p) =>
        ModulatedValue(x[o + i], mu, rs, mod[m + p.ScaleChunk * p.H + i], mod[m + p.ShiftChunk * p.H + i]);

    // The per-element arithmetic every LN-modulate kernel shares (float64, rounded once): x̂ = (x − μ)·rstd,
    // y = x̂·(1 + scale) + shift; backward dx̂ = dy·(1 + scale), dx = rstd·(dx̂ − mean dx̂ − x̂·mean(dx̂·x̂)).
    private static double Normalized(float x, double mu, double rs) => (x - mu) * rs;

    private static float ModulatedValue(float x, double mu, double rs, float scale, float shift) => (float)(Normalized(x, mu, rs) * (1 + scale) + shift);

    private static double ScaledGrad(float dy, float scale) => dy * (1 + (double)scale);

    /// <summary>dx for one row per warp. Launch: see <see cref="RowsPerGroup"/>.</summary>
    public static void BackwardInput(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dx, LayerNormArgs p)
    {
        int row = Grid.IdxX * RowsPerGroup + (Group.IdxX >> 5), lane = Group.IdxX & (Lanes - 1);
        if (row >= p.B * p.N) return;
        int bi = row / p.N;
        long o = (long)row * p.H, sc = (long)bi * p.Chunks * p.H + p.ScaleChunk * p.H;
        double mu = mean[row], rs = rstd[row];
        double sumD = 0, sumDX = 0;
        for (int i = lane; i < p.H; i += Lanes)
        {
            double dxh = ScaledGrad(dy[o + i], mod[sc + i]);
            sumD += dxh;
            sumDX += dxh * Normalized(x[o + i], mu, rs);
        }
        sumD = WarpSum(sumD) / p.H;
        sumDX = WarpSum(sumDX) / p.H;
        for (int i = lane; i < p.H; i += Lanes)
        {
            double v = InputGrad(x[o + i], dy[o + i], mod[sc + i], mu, rs, sumD, sumDX);
            dx[o + i] = p.AccumulateDx != 0 ? (float)(dx[o + i] + v) : (float)v;
        }
    }

    /// <summary>
    /// <see cref="BackwardInput"/> for the widths and alignment of <see cref="ForwardVec"/> (x, dy, mod and dx 16-byte aligned):
    /// the row's x and dy are read once into registers (float4 chunks l, l + 32, ... of lane l) instead of twice (the scale,
    /// one row per sample, is read again from cache). Same launch and float64 arithmetic per element; the sums run in
    /// another order, so dx is within float rounding of <see cref="BackwardInput"/>'s.
    /// </summary>
    public static void BackwardInputVec(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dx, LayerNormArgs p)
    {
        int row = Grid.IdxX * RowsPerGroup + (Group.IdxX >> 5), lane = Group.IdxX & (Lanes - 1);
        if (row >= p.B * p.N) return;
        int bi = row / p.N, h4 = p.H >> 2, q = p.H >> 7;
        long o4 = (long)row * h4 + lane, sc4 = (long)bi * p.Chunks * h4 + p.ScaleChunk * h4 + lane;
        var xView = x.Cast<Vec4>().AsAligned(16);
        var dy4 = dy.Cast<Vec4>().AsAligned(16);
        var mod4 = mod.Cast<Vec4>().AsAligned(16);
        double mu = mean[row], rs = rstd[row];
        Vec4 xc0 = default, gc0 = default, xc1 = default, gc1 = default, xc2 = default, gc2 = default, xc3 = default, gc3 = default, xc4 = default, gc4 = default, xc5 = default, gc5 = default, xc6 = default, gc6 = default, xc7 = default, gc7 = default;
        if (q > 0) { xc0 = xView[o4 + 0]; gc0 = dy4[o4 + 0]; }
        if (q > 1) { xc1 = xView[o4 + 32]; gc1 = dy4[o4 + 32]; }
        if (q > 2) { xc2 = xView[o4 + 64]; gc2 = dy4[o4 + 64]; }
        if (q > 3) { xc3 = xView[o4 + 96]; gc3 = dy4[o4 + 96]; }
        if (q > 4) { xc4 = xView[o4 + 128]; gc4 = dy4[o4 + 128]; }
        if (q > 5) { xc5 = xView[o4 + 160]; gc5 = dy4[o4 + 160]; }
        if (q > 6) { xc6 = xView[o4 + 192]; gc6 = dy4[o4 + 192]; }
        if (q > 7) { xc7 = xView[o4 + 224]; gc7 = dy4[o4 + 224]; }
        // Σ dx̂ and Σ dx̂·x̂ with dx̂ = dy·(1 + scale) (chunks past q: dy = 0, nothing added).
        double sumD = 0, sumDX = 0;
        if (q > 0) Sums(gc0, mod4[sc4 + 0], xc0, mu, rs, ref sumD, ref sumDX);
        if (q > 1) Sums(gc1, mod4[sc4 + 32], xc1, mu, rs, ref sumD, ref sumDX);
        if (q > 2) Sums(gc2, mod4[sc4 + 64], xc2, mu, rs, ref sumD, ref sumDX);
        if (q > 3) Sums(gc3, mod4[sc4 + 96], xc3, mu, rs, ref sumD, ref sumDX);
        if (q > 4) Sums(gc4, mod4[sc4 + 128], xc4, mu, rs, ref sumD, ref sumDX);
        if (q > 5) Sums(gc5, mod4[sc4 + 160], xc5, mu, rs, ref sumD, ref sumDX);
        if (q > 6) Sums(gc6, mod4[sc4 + 192], xc6, mu, rs, ref sumD, ref sumDX);
        if (q > 7) Sums(gc7, mod4[sc4 + 224], xc7, mu, rs, ref sumD, ref sumDX);
        sumD = WarpSum(sumD) / p.H;
        sumDX = WarpSum(sumDX) / p.H;
        var dx4 = dx.Cast<Vec4>().AsAligned(16);
        if (q > 0) StoreInputGrad(dx4, o4 + 0, xc0, gc0, mod4[sc4 + 0], mu, rs, sumD, sumDX, p.AccumulateDx);
        if (q > 1) StoreInputGrad(dx4, o4 + 32, xc1, gc1, mod4[sc4 + 32], mu, rs, sumD, sumDX, p.AccumulateDx);
        if (q > 2) StoreInputGrad(dx4, o4 + 64, xc2, gc2, mod4[sc4 + 64], mu, rs, sumD, sumDX, p.AccumulateDx);
        if (q > 3) StoreInputGrad(dx4, o4 + 96, xc3, gc3, mod4[sc4 + 96], mu, rs, sumD, sumDX, p.AccumulateDx);
        if (q > 4) StoreInputGrad(dx4, o4 + 128, xc4, gc4, mod4[sc4 + 128], mu, rs, sumD, sumDX, p.AccumulateDx);
        if (q > 5) StoreInputGrad(dx4, o4 + 160, xc5, gc5, mod4[sc4 + 160], mu, rs, sumD, sumDX, p.AccumulateDx);
        if (q > 6) StoreInputGrad(dx4, o4 + 192, xc6, gc6, mod4[sc4 + 192], mu, rs, sumD, sumDX, p.AccumulateDx);
        if (q > 7) StoreInputGrad(dx4, o4 + 224, xc7, gc7, mod4[sc4 + 224], mu, rs, sumD, sumDX, p.AccumulateDx);
    }

    private static void Sums(Vec4 g, Vec4 sc, Vec4 xv, double mu, double rs, ref double sumD, ref double sumDX)
    {
        double d0 = ScaledGrad(g.X, sc.X), d1 = ScaledGrad(g.Y, sc.Y), d2 = ScaledGrad(g.Z, sc.Z), d3 = ScaledGrad(g.W, sc.W);
        sumD += d0; sumD += d1; sumD += d2; sumD += d3;
        sumDX += d0 * Normalized(xv.X, mu, rs); sumDX += d1 * Normalized(xv.Y, mu, rs); sumDX += d2 * Normalized(xv.Z, mu, rs); sumDX += d3 * Normalized(xv.W, mu, rs);
    }

    // dx chunk c4 = rs·(dx̂ − mean dx̂ − x̂·mean(dx̂·x̂)) per element in float64, rounded once (after the add with accumulate),
    // as BackwardInput does.
    private static void StoreInputGrad(ArrayView<Vec4> dx4, long c4, Vec4 xv, Vec4 g, Vec4 sc, double mu, double rs, double sumD, double sumDX, int accumulate)
    {
        double v0 = InputGrad(xv.X, g.X, sc.X, mu, rs, sumD, sumDX), v1 = InputGrad(xv.Y, g.Y, sc.Y, mu, rs, sumD, sumDX);
        double v2 = InputGrad(xv.Z, g.Z, sc.Z, mu, rs, sumD, sumDX), v3 = InputGrad(xv.W, g.W, sc.W, mu, rs, sumD, sumDX);
        if (accumulate != 0)
        {
            Vec4 old = dx4[c4];
            v0 += old.X; v1 += old.Y; v2 += old.Z; v3 += old.W;
        }
        Vec4 r;
        r.X = (float)v0; r.Y = (float)v1; r.Z = (float)v2; r.W = (float)v3;
        dx4[c4] = r;
    }

    private static double InputGrad(float xv, float g, float sc, double mu, double rs, double sumD, double sumDX) =>
        rs * (ScaledGrad(g, sc) - sumD - Normalized(xv, mu, rs) * sumDX);

    /// <summary>dshift[b, i] += Σ_t dy, dscale[b, i] += Σ_t dy·x̂ over the N tokens. Thread idx = b·H + i (B·H threads).</summary>
    public static void BackwardModulation(Index1D idx, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> dmod, LayerNormArgs p)
    {
        int bi = idx / p.H, i = idx % p.H;
        double s = 0, sx = 0;
        int row = bi * p.N, t = 0;
        long h = p.H, k = (long)row * h + i;   // token t's row and element, advanced with t (phis)
        // Four tokens' loads in flight per trip, summed in token order: the same bits as a token per trip, without waiting out a
        // load's latency per token (ILGPU keeps a loop as written).
        for (; t + 4 <= p.N; t += 4)
        {
            float g0 = dy[k], g1 = dy[k + h], g2 = dy[k + 2 * h], g3 = dy[k + 3 * h];
            float x0 = x[k], x1 = x[k + h], x2 = x[k + 2 * h], x3 = x[k + 3 * h];
            float m0 = mean[row], m1 = mean[row + 1], m2 = mean[row + 2], m3 = mean[row + 3];
            float r0 = rstd[row], r1 = rstd[row + 1], r2 = rstd[row + 2], r3 = rstd[row + 3];
            s += g0; sx += g0 * (double)((x0 - m0) * r0);
            s += g1; sx += g1 * (double)((x1 - m1) * r1);
            s += g2; sx += g2 * (double)((x2 - m2) * r2);
            s += g3; sx += g3 * (double)((x3 - m3) * r3);
            row += 4;
            k += 4 * h;
        }
        for (; t < p.N; t++)
        {
            double g = dy[k];
            s += g;
            sx += g * ((x[k] - mean[row]) * rstd[row]);
            row++;
            k += h;
        }
        long m = (long)bi * p.Chunks * p.H;
        long si = m + p.ShiftChunk * p.H + i, ci = m + p.ScaleChunk * p.H + i;
        dmod[si] = (float)(dmod[si] + s);
        dmod[ci] = (float)(dmod[ci] + sx);
    }
}
