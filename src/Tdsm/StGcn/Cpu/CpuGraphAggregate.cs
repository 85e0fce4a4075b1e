using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Partitioned graph aggregation o[b,c,t,w] = sum_k sum_v y[b,k,c,t,v] * A[k,v,w] * imp[k,v,w] over the
// NONZEROS of A only: the NTU adjacency has 73 of 3*25*25 entries non-zero, so a sparse loop does
// 4% of the dense work (and dImp = dAeff * A is zero wherever A is). Parallel over (b, c).
// Backward: dy overwritten; dImp accumulates (per-sample partial sums, added in a fixed order).
public sealed partial class StGcnCpuOps
{
    // Nonzero entries of A as (k, v, w) index triples; Aeff values are A * imp there.
    private static (int[] K, int[] V, int[] W, float[] Val) NonZeros(Seg a, Seg imp, int k, int v)
    {
        var ks = new List<int>(); var vs = new List<int>(); var ws = new List<int>(); var val = new List<float>();
        for (int ki = 0; ki < k; ki++)
            for (int vi = 0; vi < v; vi++)
                for (int w = 0; w < v; w++)
                {
                    int i = (ki * v + vi) * v + w;
                    if (a[i] == 0f) continue;
                    ks.Add(ki); vs.Add(vi); ws.Add(w); val.Add(a[i] * imp[i]);
                }
        return (ks.ToArray(), vs.ToArray(), ws.ToArray(), val.ToArray());
    }

    /// <inheritdoc/>
    protected override void GraphAggregateForward(Seg y, Seg a, Seg imp, Seg o, int b, int k, int c, int t, int v)
    {
        int vv = v * v, plane = t * v;
        Need(y, (long)b * k * c * plane, "y"); Need(a, (long)k * vv, "A"); Need(imp, (long)k * vv, "imp"); Need(o, (long)b * c * plane, "o");
        var (nk, nv, nw, val) = NonZeros(a, imp, k, v);
        float[] ya = y.Array!, oa = o.Array!;
        int yo = y.Offset, oo = o.Offset;
        Parallel.For(0, b * c, bc =>
        {
            int bi = bc / c, ci = bc % c;
            var dst = oa.AsSpan(oo + bc * plane, plane);
            dst.Clear();
            for (int z = 0; z < val.Length; z++)
            {
                float s = val[z];
                int src = yo + ((bi * k + nk[z]) * c + ci) * plane + nv[z], w = nw[z];
                for (int ti = 0; ti < t; ti++) dst[ti * v + w] += s * ya[src + ti * v];
            }
        });
    }

    /// <inheritdoc/>
    protected override void GraphAggregateBackward(Seg dO, Seg y, Seg a, Seg imp, Seg dy, Seg dImp, int b, int k, int c, int t, int v)
    {
        int vv = v * v, plane = t * v;
        Need(dO, (long)b * c * plane, "dO"); Need(y, (long)b * k * c * plane, "y"); Need(dy, (long)b * k * c * plane, "dy"); Need(dImp, (long)k * vv, "dImp");
        var (nk, nv, nw, val) = NonZeros(a, imp, k, v);
        float[] ya = y.Array!, da = dO.Array!, dya = dy.Array!;
        int yo = y.Offset, doo = dO.Offset, dyo = dy.Offset;
        // dy[b,k,c,t,v] = sum over nonzeros (k,v,w) of dO[b,c,t,w] * Aeff[k,v,w]
        Parallel.For(0, b * c, bc =>
        {
            int bi = bc / c, ci = bc % c;
            var src = da.AsSpan(doo + bc * plane, plane);
            for (int ki = 0; ki < k; ki++) dya.AsSpan(dyo + ((bi * k + ki) * c + ci) * plane, plane).Clear();
            for (int z = 0; z < val.Length; z++)
            {
                float s = val[z];
                int dst = dyo + ((bi * k + nk[z]) * c + ci) * plane + nv[z], w = nw[z];
                for (int ti = 0; ti < t; ti++) dya[dst + ti * v] += s * src[ti * v + w];
            }
        });
        // dImp[k,v,w] += A[k,v,w] * sum_{b,c,t} y[b,k,c,t,v] * dO[b,c,t,w]: one partial per sample
        // (its planes stay in cache), summed in sample order so the result is deterministic.
        var partial = new double[b][];
        Parallel.For(0, b, bi =>
        {
            var part = partial[bi] = new double[val.Length];
            for (int ci = 0; ci < c; ci++)
            {
                int ds = doo + (bi * c + ci) * plane;
                for (int z = 0; z < val.Length; z++)
                {
                    int ys = yo + ((bi * k + nk[z]) * c + ci) * plane + nv[z], dw = ds + nw[z];
                    float sum = 0;
                    for (int ti = 0; ti < t; ti++) sum += ya[ys + ti * v] * da[dw + ti * v];
                    part[z] += sum;
                }
            }
        });
        var acc = new double[val.Length];
        for (int bi = 0; bi < b; bi++)
            for (int z = 0; z < val.Length; z++) acc[z] += partial[bi][z];
        for (int z = 0; z < val.Length; z++)
        {
            int i = (nk[z] * v + nv[z]) * v + nw[z];
            dImp[i] += (float)(acc[z] * a[i]);
        }
    }
}
