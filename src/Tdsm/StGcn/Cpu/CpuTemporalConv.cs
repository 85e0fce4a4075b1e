using Tdsm.Cpu;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Temporal conv (kt x 1, stride s, pad p = (kt-1)/2) as GEMMs in the register-tiled A·Bᵀ form of the packed kernel,
// with K = Cin*kt and Lo = Tout*V:
//   forward  yT (n·Lo, Cout) = colT (n·Lo, K) · Wᵀ + bias over chunks of n samples, W packed once per call, then
//            y_b = yT_bᵀ; colT[(b,to,v),(ci,j)] = x[b, ci, to*s + j - p, v] (0 outside). The samples' output positions
//            stacked into M keep the GEMM tall where Cout is small (per sample, M = Cout = 16 ran at ~30 GFLOP/s);
//   dWᵀ     (K, Cout)       += col_b (K, Lo) · dy_b (Cout, Lo)ᵀ per sample, col = colTᵀ (dy_b is the packed operand);
//   dcol_b  (K, Lo)          = Wᵀ (K, Cout) · dy_b (Cout, Lo) per sample, then col2im (dx overwritten). Per sample
//            because its col / dcol (K·Lo floats, ~1 MB at the Small config) stay in cache; a chunked backward was slower.
// The im2col/transpose copies cost 1/Cout of the GEMMs. dBias accumulates row sums of dy.
public sealed partial class StGcnCpuOps
{
    // Floats per chunk buffer (colT, dcolT): samples are taken while their columns fit (at least one).
    private const int ChunkFloats = 1 << 21;

    private static int ChunkSamples(int b, int lo, int rows, int cout) => Math.Clamp(ChunkFloats / Math.Max(1, lo * Math.Max(rows, cout)), 1, Math.Max(1, b));

    /// <inheritdoc/>
    protected override void TemporalConvForward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(x, (long)b * cin * t * v, "x"); Need(w, (long)cout * rows, "w"); Need(bias, cout, "bias"); Need(y, (long)b * cout * lo, "y");
        if (b == 0 || lo == 0 || cout == 0) return;
        int per = ChunkSamples(b, lo, rows, cout);
        var colT = Scratch(2, (long)per * lo * rows);
        var yT = Scratch(1, (long)per * lo * cout);
        var packedW = PackedMatrix.Rent(w.Array!, w.Offset, cout, rows);
        try
        {
            for (int b0 = 0; b0 < b; b0 += per)
            {
                int n = Math.Min(per, b - b0);
                Im2ColT(x.Array!, x.Offset + b0 * cin * t * v, colT, n, cin, t, v, kt, stride, tout);
                Gemm.MatMulPacked(colT, 0, packedW, yT, 0, n * lo, accumulate: false, bias.Array, bias.Offset);
                Parallel.For(0, n, i => Gemm.TransposeInto(yT, i * lo * cout, lo, cout, y.Array!, y.Offset + (b0 + i) * cout * lo));
            }
        }
        finally { packedW.Return(); }
    }

    /// <inheritdoc/>
    protected override void TemporalConvBackward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(dy, (long)b * cout * lo, "dy"); Need(x, (long)b * cin * t * v, "x"); Need(dx, (long)b * cin * t * v, "dx");
        Need(dW, (long)cout * rows, "dW"); Need(dBias, cout, "dBias");
        var col = Scratch(2, (long)rows * lo);
        var dcol = Scratch(3, (long)rows * lo);
        // wT (K, Cout) and dWᵀ (K, Cout), which starts as dW's transpose so that the sums continue in dW's order.
        var wT = new float[rows * cout];
        var dWT = new float[rows * cout];
        Gemm.TransposeInto(w.Array!, w.Offset, cout, rows, wT, 0);
        Gemm.TransposeInto(dW.Array!, dW.Offset, cout, rows, dWT, 0);
        var db = new double[cout];
        for (int bi = 0; bi < b; bi++)
        {
            int dyo = dy.Offset + bi * cout * lo;
            Im2Col(x.Array!, x.Offset + bi * cin * t * v, col, cin, t, v, kt, stride, tout);
            // dWᵀ += col·dy_bᵀ: the packed operand is dy_b (Cout·Lo floats), not col (K·Lo, kt·Cin/Cout times more).
            Gemm.MatMulABt(col, 0, dy.Array!, dyo, dWT, 0, rows, cout, lo, accumulate: true);
            for (int co = 0; co < cout; co++) db[co] += SumD(dy.Array.AsSpan(dyo + co * lo, lo));
            Gemm.MatMulAB(wT, 0, dy.Array!, dyo, dcol, 0, rows, lo, cout, accumulate: false);
            Col2Im(dcol, dx.Array!, dx.Offset + bi * cin * t * v, cin, t, v, kt, stride, tout);
        }
        for (int co = 0; co < cout; co++) dBias[co] += (float)db[co];
        Gemm.TransposeInto(dWT, 0, rows, cout, dW.Array!, dW.Offset);
    }

    // col (Cin*kt, Tout*V): row (ci, j) holds the input frames to*s + j - p of channel ci.
    private static void Im2Col(float[] x, int xo, float[] col, int cin, int t, int v, int kt, int stride, int tout)
    {
        int p = (kt - 1) / 2, lo = tout * v;
        Parallel.For(0, cin, ci =>
        {
            for (int j = 0; j < kt; j++)
            {
                var row = col.AsSpan((ci * kt + j) * lo, lo);
                for (int to = 0; to < tout; to++)
                {
                    int ti = to * stride + j - p;
                    var dst = row.Slice(to * v, v);
                    if (ti < 0 || ti >= t) dst.Clear();
                    else x.AsSpan(xo + (ci * t + ti) * v, v).CopyTo(dst);
                }
            }
        });
    }

    // colT (n·Tout·V, Cin*kt) for n samples of x from xo: row (b, to, v) holds, for each (ci, j), input frame to*s + j - p.
    // Per (sample, output frame) each tap's frame of a channel is read as one contiguous run of V and written down a column.
    private static unsafe void Im2ColT(float[] x, int xo, float[] colT, int n, int cin, int t, int v, int kt, int stride, int tout)
    {
        int p = (kt - 1) / 2, rows = cin * kt;
        Parallel.For(0, n * tout, q =>
        {
            int bi = q / tout, to = q % tout;
            fixed (float* px = x, pc = colT)
            {
                float* xb = px + xo + (long)bi * cin * t * v, block = pc + (long)q * v * rows;
                for (int ci = 0; ci < cin; ci++)
                    for (int j = 0; j < kt; j++)
                    {
                        int ti = to * stride + j - p;
                        float* dst = block + ci * kt + j;
                        if (ti < 0 || ti >= t) { for (int vi = 0; vi < v; vi++) dst[(long)vi * rows] = 0f; continue; }
                        float* src = xb + (long)(ci * t + ti) * v;
                        for (int vi = 0; vi < v; vi++) dst[(long)vi * rows] = src[vi];
                    }
            }
        });
    }

    // dx (Cin, T, V) = sum over kernel taps of dcol rows (overwrites dx).
    private static void Col2Im(float[] dcol, float[] dx, int dxo, int cin, int t, int v, int kt, int stride, int tout)
    {
        int p = (kt - 1) / 2, lo = tout * v;
        Parallel.For(0, cin, ci =>
        {
            var d = dx.AsSpan(dxo + ci * t * v, t * v);
            d.Clear();
            for (int j = 0; j < kt; j++)
                for (int to = 0; to < tout; to++)
                {
                    int ti = to * stride + j - p;
                    if (ti < 0 || ti >= t) continue;
                    Gemm.Axpy(1f, dcol.AsSpan((ci * kt + j) * lo + to * v, v), d.Slice(ti * v, v));
                }
        });
    }
}
