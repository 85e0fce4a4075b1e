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

    /// <summary>Thread i = (segment s, column c): partial[s, c] = Σ dy[r, c] over rows [s·segment, (s+1)·segment) ∩ [0, rows). partial is (S, W).
    /// Eight rows' loads in flight per trip, added in row order (the sum of a row per trip, bit for bit): ILGPU keeps a loop as
    /// written, and one load per trip waited out a load's latency per row (the third visit: ~0.17 ms per 17,920-row bias gradient,
    /// ~10x its bytes).</summary>
    public static void SumRowsPartial(Index1D i, ArrayView<float> dy, ArrayView<double> partial, int rows, int width, int segment)
    {
        int col = i % width, seg = i / width;
        int r0 = seg * segment, r1 = r0 + segment < rows ? r0 + segment : rows;
        double s = 0;
        long a = (long)r0 * width + col;   // row r's element, advanced with r (a phi)
        int r = r0;
        for (; r + 8 <= r1; r += 8)
        {
            float v0 = dy[a], v1 = dy[a + width], v2 = dy[a + 2L * width], v3 = dy[a + 3L * width];
            float v4 = dy[a + 4L * width], v5 = dy[a + 5L * width], v6 = dy[a + 6L * width], v7 = dy[a + 7L * width];
            s += v0; s += v1; s += v2; s += v3; s += v4; s += v5; s += v6; s += v7;
            a += 8L * width;
        }
        for (; r < r1; r++)
        {
            s += dy[a];
            a += width;
        }
        partial[i] = s;
    }

    /// <summary>Thread c: db[c] += Σ_s partial[s, c] over the S segments, in order (eight segments' loads in flight per trip,
    /// as <see cref="SumRowsPartial"/>).</summary>
    public static void SumRowsFinish(Index1D col, ArrayView<double> partial, ArrayView<float> db, int segments, int width)
    {
        double s = db[col];
        long a = col;
        int g = 0;
        for (; g + 8 <= segments; g += 8)
        {
            double p0 = partial[a], p1 = partial[a + width], p2 = partial[a + 2L * width], p3 = partial[a + 3L * width];
            double p4 = partial[a + 4L * width], p5 = partial[a + 5L * width], p6 = partial[a + 6L * width], p7 = partial[a + 7L * width];
            s += p0; s += p1; s += p2; s += p3; s += p4; s += p5; s += p6; s += p7;
            a += 8L * width;
        }
        for (; g < segments; g++)
        {
            s += partial[a];
            a += width;
        }
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
        long h = p.H, k = (long)bi * p.N * h + i;   // token t's element, advanced with t (a phi)
        int t = 0;
        // Four tokens' loads in flight per trip, summed in token order (the same bits as a token per trip; see SumRowsPartial).
        for (; t + 4 <= p.N; t += 4)
        {
            float d0 = dout[k], d1 = dout[k + h], d2 = dout[k + 2 * h], d3 = dout[k + 3 * h];
            float y0 = y[k], y1 = y[k + h], y2 = y[k + 2 * h], y3 = y[k + 3 * h];
            acc += (double)d0 * y0; acc += (double)d1 * y1; acc += (double)d2 * y2; acc += (double)d3 * y3;
            dy[k] = g * d0; dy[k + h] = g * d1; dy[k + 2 * h] = g * d2; dy[k + 3 * h] = g * d3;
            k += 4 * h;
        }
        for (; t < p.N; t++)
        {
            acc += (double)dout[k] * y[k];
            dy[k] = g * dout[k];
            k += h;
        }
        dmod[gi] = (float)(dmod[gi] + acc);
    }
}
