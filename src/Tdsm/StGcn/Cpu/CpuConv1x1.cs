using Tdsm.Cpu;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// 1x1 conv with temporal stride as GEMMs per sample on the packed kernel (Gemm.MatMulAB packs B's rows as panels
// of contiguous runs, so no operand is transposed first):
//   y_b (Cout, Lo) = W (Cout, Cin) · x_b (Cin, Lo) + bias (x gathered at frames 0, s, 2s, ... for stride > 1);
//   dW (Cout, Cin) += dy_b (Cout, Lo) · x_b (Cin, Lo)ᵀ (x gathered at frames 0, s, 2s, ... first);
//   dx_b (Cin, Lo) = Wᵀ (Cin, Cout) · dy_b (Cout, Lo), scattered back for stride > 1 (dx overwritten).
// T = V = 1 (the classifier) is one GEMM over the batch. dBias accumulates row sums of dy.
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    protected override void Conv1x1Forward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int stride)
    {
        int tout = (t - 1) / stride + 1, l = t * v, lo = tout * v;
        Need(x, (long)b * cin * l, "x"); Need(w, (long)cout * cin, "w"); Need(bias, cout, "bias"); Need(y, (long)b * cout * lo, "y");
        if (l == 1)
        {
            Gemm.MatMulABt(x.Array!, x.Offset, w.Array!, w.Offset, y.Array!, y.Offset, b, cout, cin, accumulate: false);
            for (int bi = 0; bi < b; bi++)
                for (int co = 0; co < cout; co++) y[bi * cout + co] += bias[co];
            return;
        }
        var xs = stride > 1 ? Scratch(0, (long)cin * lo) : [];
        for (int bi = 0; bi < b; bi++)
        {
            int yo = y.Offset + bi * cout * lo;
            float[] xa = x.Array!; int xo = x.Offset + bi * cin * l;
            if (stride > 1) { Gather(x.AsSpan(bi * cin * l, cin * l), xs, cin, t, v, tout, stride); xa = xs; xo = 0; }
            Gemm.MatMulAB(w.Array!, w.Offset, xa, xo, y.Array!, yo, cout, lo, cin, accumulate: false);
            for (int co = 0; co < cout; co++) AddScalar(y.Array.AsSpan(yo + co * lo, lo), bias[co]);
        }
    }

    /// <inheritdoc/>
    protected override void Conv1x1Backward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int stride)
    {
        int tout = (t - 1) / stride + 1, l = t * v, lo = tout * v;
        Need(dy, (long)b * cout * lo, "dy"); Need(x, (long)b * cin * l, "x"); Need(dW, (long)cout * cin, "dW"); Need(dBias, cout, "dBias");
        bool wantDx = dx.Count > 0;
        if (wantDx) Need(dx, (long)b * cin * l, "dx");
        if (l == 1)
        {
            if (wantDx) Gemm.MatMulAB(dy.Array!, dy.Offset, w.Array!, w.Offset, dx.Array!, dx.Offset, b, cin, cout, accumulate: false);
            Gemm.MatMulAtB(dy.Array!, dy.Offset, x.Array!, x.Offset, dW.Array!, dW.Offset, cout, cin, b, accumulate: true);
            for (int co = 0; co < cout; co++)
            {
                double s = 0;
                for (int bi = 0; bi < b; bi++) s += dy[bi * cout + co];
                dBias[co] += (float)s;
            }
            return;
        }
        var db = new double[cout];
        var wT = new float[cin * cout];
        Gemm.TransposeInto(w.Array!, w.Offset, cout, cin, wT, 0);
        for (int bi = 0; bi < b; bi++)
        {
            int dyo = dy.Offset + bi * cout * lo;
            float[] xa = x.Array!; int xo = x.Offset + bi * cin * l;
            if (stride > 1)
            {
                var g = Scratch(0, (long)cin * lo);
                Gather(x.AsSpan(bi * cin * l, cin * l), g, cin, t, v, tout, stride);
                xa = g; xo = 0;
            }
            Gemm.MatMulABt(dy.Array!, dyo, xa, xo, dW.Array!, dW.Offset, cout, cin, lo, accumulate: true);
            for (int co = 0; co < cout; co++) db[co] += SumD(dy.Array.AsSpan(dyo + co * lo, lo));
            if (!wantDx) continue;
            if (stride == 1)
                Gemm.MatMulAB(wT, 0, dy.Array!, dyo, dx.Array!, dx.Offset + bi * cin * l, cin, lo, cout, accumulate: false);
            else
            {
                var g = Scratch(1, (long)cin * lo);
                Gemm.MatMulAB(wT, 0, dy.Array!, dyo, g, 0, cin, lo, cout, accumulate: false);
                var d = dx.AsSpan(bi * cin * l, cin * l);
                d.Clear();
                for (int ci = 0; ci < cin; ci++)
                    for (int to = 0; to < tout; to++)
                        g.AsSpan((ci * tout + to) * v, v).CopyTo(d.Slice((ci * t + to * stride) * v, v));
            }
        }
        for (int co = 0; co < cout; co++) dBias[co] += (float)db[co];
    }

    // x (Cin, T, V) -> g (Cin, Tout, V) taking frames 0, s, 2s, ...
    private static void Gather(ReadOnlySpan<float> x, float[] g, int cin, int t, int v, int tout, int stride)
    {
        for (int ci = 0; ci < cin; ci++)
            for (int to = 0; to < tout; to++)
                x.Slice((ci * t + to * stride) * v, v).CopyTo(g.AsSpan((ci * tout + to) * v, v));
    }

    private static void AddScalar(Span<float> y, float s)
    {
        int w = System.Numerics.Vector<float>.Count, i = 0;
        var vs = new System.Numerics.Vector<float>(s);
        for (; i <= y.Length - w; i += w) (new System.Numerics.Vector<float>(y.Slice(i, w)) + vs).CopyTo(y.Slice(i, w));
        for (; i < y.Length; i++) y[i] += s;
    }
}
