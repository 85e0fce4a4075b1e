using ILGPU;
using ILGPU.Runtime;

namespace Tdsm.Kernels;

/// <summary>Shapes of the (B, N, H) residual ops; the gate lives at chunk G of mod (B, Chunks·H).</summary>
public struct ResidualArgs
{
    public int B, N, H, Chunks, Chunk;
}

/// <summary>
/// Additions and the adaLN gated residual. Add: y = a + b. AddBroadcastRows: y (R, W) += bias (W).
/// Column sums db (W) += Σ_r dy (R, W) in two deterministic stages: <see cref="SumRowsPartial"/>
/// adds segments of <c>segment</c> rows per (segment, column) thread in float64, then
/// <see cref="SumRowsFinish"/> adds the segments in order per column. One thread per column over
/// all rows would leave the GPU nearly idle on the text stream's 17,920-row bias gradients.
/// Gated residual: out = x + gate[b]·y (<see cref="GatedForward4"/>: four channels per thread where the views allow); its backward writes dy = gate·dout and accumulates
/// Σ_tokens dout·y into the gate chunk of dmod, one thread per (b, channel) looping the tokens.
/// </summary>
public static class Residual
{
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] + b[i];

    public static void AddBroadcastRows(Index1D i, ArrayView<float> y, ArrayView<float> bias, int width) => y[i] += bias[i % width];

    /// <summary>Thread i = (segment s, column c): partial[s, c] = Σ dy[r, c] over rows [s·segment, (s+1)·segment) ∩ [0, rows). partial is (S, W).</summary>
    public static void SumRowsPartial(Index1D i, ArrayView<float> dy, ArrayView<double> partial, int rows, int width, int segment)
    {
        int col = i % width, seg = i / width;
        int r0 = seg * segment, r1 = r0 + segment < rows ? r0 + segment : rows;
        double s = 0;
        for (int r = r0; r < r1; r++) s += dy[(long)r * width + col];
        partial[i] = s;
    }

    /// <summary>Thread c: db[c] += Σ_s partial[s, c] over the S segments, in order.</summary>
    public static void SumRowsFinish(Index1D col, ArrayView<double> partial, ArrayView<float> db, int segments, int width)
    {
        double s = db[col];
        for (int g = 0; g < segments; g++) s += partial[(long)g * width + col];
        db[col] = (float)s;
    }

    public static void GatedForward(Index1D idx, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> output, ResidualArgs p)
    {
        int i = idx % p.H;
        int bi = idx / (p.N * p.H);
        output[idx] = x[idx] + mod[(long)bi * p.Chunks * p.H + p.Chunk * p.H + i] * y[idx];
    }

    /// <summary>
    /// <see cref="GatedForward"/> four channels per thread (thread i4 over B·N·H/4): 128-bit loads and stores and a quarter of
    /// the index divisions, the same float operations per element (the same bits). H a multiple of 4, every view 16-byte aligned
    /// (the host checks).
    /// </summary>
    public static void GatedForward4(Index1D i4, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> output, ResidualArgs p)
    {
        int h4 = p.H >> 2;
        int c4 = i4 % h4, bi = i4 / (p.N * h4);
        var x4 = x.Cast<Gemm.Vec4>().AsAligned(16);
        var y4 = y.Cast<Gemm.Vec4>().AsAligned(16);
        var g4 = mod.Cast<Gemm.Vec4>().AsAligned(16);
        output.Cast<Gemm.Vec4>().AsAligned(16)[i4] = GatedSum(x4[i4], g4[(long)bi * p.Chunks * h4 + p.Chunk * h4 + c4], y4[i4]);
    }

    /// <summary>x + gate·y for four channels: <see cref="GatedForward4"/>'s and the fused LN-modulate's
    /// (<see cref="LayerNormModulate.GatedForwardVec"/>) operations, so the two give the same sums.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static Gemm.Vec4 GatedSum(Gemm.Vec4 x, Gemm.Vec4 gate, Gemm.Vec4 y)
    {
        Gemm.Vec4 r;
        r.X = x.X + gate.X * y.X;
        r.Y = x.Y + gate.Y * y.Y;
        r.Z = x.Z + gate.Z * y.Z;
        r.W = x.W + gate.W * y.W;
        return r;
    }

    public static void GatedBackward(Index1D idx, ArrayView<float> dout, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> dy,
        ArrayView<float> dmod, ResidualArgs p)
    {
        int i = idx % p.H, bi = idx / p.H;
        long gi = (long)bi * p.Chunks * p.H + p.Chunk * p.H + i;
        float g = mod[gi];
        double acc = 0;
        for (int t = 0; t < p.N; t++)
        {
            long k = ((long)bi * p.N + t) * p.H + i;
            acc += (double)dout[k] * y[k];
            dy[k] = g * dout[k];
        }
        dmod[gi] = (float)(dmod[gi] + acc);
    }
}
