using Tdsm.Cpu;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Temporal conv (kt x 1, stride s, pad (kt-1)/2) as im2col + GEMM per sample:
// col (Cin*kt, Tout*V) with col[(ci,j),(to,v)] = x[ci, to*s + j - p, v] (0 outside), y_b = W col + bias
// (W is (Cout, Cin*kt), the PyTorch layout). Backward: dcol = W^T dy_b then col2im (dx overwritten),
// dW += dy_b col^T, dBias += row sums of dy.
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    public void TemporalConvForward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(x, (long)b * cin * t * v, "x"); Need(w, (long)cout * rows, "w"); Need(bias, cout, "bias"); Need(y, (long)b * cout * lo, "y");
        var col = Scratch(2, (long)rows * lo);
        for (int bi = 0; bi < b; bi++)
        {
            Im2Col(x.Array!, x.Offset + bi * cin * t * v, col, cin, t, v, kt, stride, tout);
            int yo = y.Offset + bi * cout * lo;
            Gemm.MatMulAB(w.Array!, w.Offset, col, 0, y.Array!, yo, cout, lo, rows, accumulate: false);
            for (int co = 0; co < cout; co++) AddScalar(y.Array.AsSpan(yo + co * lo, lo), bias[co]);
        }
    }

    /// <inheritdoc/>
    public void TemporalConvBackward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(dy, (long)b * cout * lo, "dy"); Need(x, (long)b * cin * t * v, "x"); Need(dx, (long)b * cin * t * v, "dx");
        Need(dW, (long)cout * rows, "dW"); Need(dBias, cout, "dBias");
        var col = Scratch(2, (long)rows * lo);
        var dcol = Scratch(3, (long)rows * lo);
        var db = new double[cout];
        for (int bi = 0; bi < b; bi++)
        {
            int dyo = dy.Offset + bi * cout * lo;
            Im2Col(x.Array!, x.Offset + bi * cin * t * v, col, cin, t, v, kt, stride, tout);
            Gemm.MatMulABt(dy.Array!, dyo, col, 0, dW.Array!, dW.Offset, cout, rows, lo, accumulate: true);
            for (int co = 0; co < cout; co++) db[co] += SumD(dy.Array.AsSpan(dyo + co * lo, lo));
            Gemm.MatMulAtB(w.Array!, w.Offset, dy.Array!, dyo, dcol, 0, rows, lo, cout, accumulate: false);
            Col2Im(dcol, dx.Array!, dx.Offset + bi * cin * t * v, cin, t, v, kt, stride, tout);
        }
        for (int co = 0; co < cout; co++) dBias[co] += (float)db[co];
    }

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
