using Tdsm.Cpu;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Partitioned graph aggregation as GEMMs: per sample and partition k, o_b (C*T, V) += y_bk (C*T, V) Aeff_k (V, V)
// with Aeff = A * imp. Backward: dy_bk = dO_b Aeff_k^T (overwritten); dAeff_k += y_bk^T dO_b; dImp += dAeff * A.
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    public void GraphAggregateForward(Seg y, Seg a, Seg imp, Seg o, int b, int k, int c, int t, int v)
    {
        int rows = c * t, vv = v * v;
        Need(y, (long)b * k * rows * v, "y"); Need(a, (long)k * vv, "A"); Need(imp, (long)k * vv, "imp"); Need(o, (long)b * rows * v, "o");
        var aeff = new float[k * vv];
        for (int i = 0; i < aeff.Length; i++) aeff[i] = a[i] * imp[i];
        for (int bi = 0; bi < b; bi++)
            for (int ki = 0; ki < k; ki++)
                Gemm.MatMulAB(y.Array!, y.Offset + (bi * k + ki) * rows * v, aeff, ki * vv, o.Array!, o.Offset + bi * rows * v, rows, v, v, accumulate: ki > 0);
    }

    /// <inheritdoc/>
    public void GraphAggregateBackward(Seg dO, Seg y, Seg a, Seg imp, Seg dy, Seg dImp, int b, int k, int c, int t, int v)
    {
        int rows = c * t, vv = v * v;
        Need(dO, (long)b * rows * v, "dO"); Need(y, (long)b * k * rows * v, "y"); Need(dy, (long)b * k * rows * v, "dy"); Need(dImp, (long)k * vv, "dImp");
        var aeff = new float[k * vv];
        for (int i = 0; i < aeff.Length; i++) aeff[i] = a[i] * imp[i];
        var dAeff = new float[k * vv];
        for (int bi = 0; bi < b; bi++)
            for (int ki = 0; ki < k; ki++)
            {
                int yo = (bi * k + ki) * rows * v, oo = dO.Offset + bi * rows * v;
                Gemm.MatMulABt(dO.Array!, oo, aeff, ki * vv, dy.Array!, dy.Offset + yo, rows, v, v, accumulate: false);
                Gemm.MatMulAtB(y.Array!, y.Offset + yo, dO.Array!, oo, dAeff, ki * vv, v, v, rows, accumulate: true);
            }
        for (int i = 0; i < dAeff.Length; i++) dImp[i] += dAeff[i] * a[i];
    }
}
