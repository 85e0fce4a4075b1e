using Tdsm.Cpu;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Temporal conv (kt x 1, stride s, pad p = (kt-1)/2) as GEMMs per sample, all in the register-tiled
// A·Bᵀ form of Gemm.MatMulABt (a few times faster here than the axpy-based A·B forms):
//   forward  y_b (Cout, Lo)   = W (Cout, K) · colT_b (Lo, K)ᵀ + bias,  K = Cin*kt, Lo = Tout*V,
//            colT[(to,v),(ci,j)] = x[ci, to*s + j - p, v] (0 outside);
//   dW      (Cout, K)        += dy_b (Cout, Lo) · col_b (K, Lo)ᵀ,        col = colTᵀ;
//   dcol_b  (K, Lo)           = Wᵀ (K, Cout) · dyT_b (Lo, Cout)ᵀ, then col2im (dx overwritten).
// The im2col/transpose copies cost 1/Cout of the GEMMs. dBias accumulates row sums of dy.
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    protected override void TemporalConvForward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(x, (long)b * cin * t * v, "x"); Need(w, (long)cout * rows, "w"); Need(bias, cout, "bias"); Need(y, (long)b * cout * lo, "y");
        var colT = Scratch(2, (long)rows * lo);
        for (int bi = 0; bi < b; bi++)
        {
            Im2ColT(x.Array!, x.Offset + bi * cin * t * v, colT, cin, t, v, kt, stride, tout);
            int yo = y.Offset + bi * cout * lo;
            Gemm.MatMulABt(w.Array!, w.Offset, colT, 0, y.Array!, yo, cout, lo, rows, accumulate: false);
            for (int co = 0; co < cout; co++) AddScalar(y.Array.AsSpan(yo + co * lo, lo), bias[co]);
        }
    }

    /// <inheritdoc/>
    protected override void TemporalConvBackward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(dy, (long)b * cout * lo, "dy"); Need(x, (long)b * cin * t * v, "x"); Need(dx, (long)b * cin * t * v, "dx");
        Need(dW, (long)cout * rows, "dW"); Need(dBias, cout, "dBias");
        var col = Scratch(2, (long)rows * lo);
        var dcol = Scratch(3, (long)rows * lo);
        var dyT = Scratch(1, (long)cout * lo);
        var wT = new float[rows * cout];
        for (int co = 0; co < cout; co++)
            for (int r = 0; r < rows; r++) wT[r * cout + co] = w[co * rows + r];
        var db = new double[cout];
        for (int bi = 0; bi < b; bi++)
        {
            int dyo = dy.Offset + bi * cout * lo;
            Im2Col(x.Array!, x.Offset + bi * cin * t * v, col, cin, t, v, kt, stride, tout);
            Gemm.MatMulABt(dy.Array!, dyo, col, 0, dW.Array!, dW.Offset, cout, rows, lo, accumulate: true);
            for (int co = 0; co < cout; co++) db[co] += SumD(dy.Array.AsSpan(dyo + co * lo, lo));
            Transpose(dy.Array!, dyo, dyT, cout, lo);
            Gemm.MatMulABt(wT, 0, dyT, 0, dcol, 0, rows, lo, cout, accumulate: false);
            Col2Im(dcol, dx.Array!, dx.Offset + bi * cin * t * v, cin, t, v, kt, stride, tout);
        }
        for (int co = 0; co < cout; co++) dBias[co] += (float)db[co];
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

    // colT (Tout*V, Cin*kt): the transpose of Im2Col's matrix, written row by output position.
    private static void Im2ColT(float[] x, int xo, float[] colT, int cin, int t, int v, int kt, int stride, int tout)
    {
        int p = (kt - 1) / 2, rows = cin * kt;
        Parallel.For(0, tout, to =>
        {
            for (int vi = 0; vi < v; vi++)
            {
                var row = colT.AsSpan((to * v + vi) * rows, rows);
                for (int ci = 0; ci < cin; ci++)
                    for (int j = 0; j < kt; j++)
                    {
                        int ti = to * stride + j - p;
                        row[ci * kt + j] = ti < 0 || ti >= t ? 0f : x[xo + (ci * t + ti) * v + vi];
                    }
            }
        });
    }

    // dst (cols, rows) = src (rows, cols)ᵀ.
    private static void Transpose(float[] src, int so, float[] dst, int rows, int cols)
    {
        const int Block = 32;
        Parallel.For(0, (cols + Block - 1) / Block, cb =>
        {
            int c0 = cb * Block, c1 = Math.Min(cols, c0 + Block);
            for (int r = 0; r < rows; r++)
                for (int c = c0; c < c1; c++) dst[c * rows + r] = src[so + r * cols + c];
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
