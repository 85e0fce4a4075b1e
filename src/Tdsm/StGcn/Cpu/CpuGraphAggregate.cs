using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Partitioned graph aggregation o[b,c,t,w] = sum_k sum_v y[b,k,c,t,v] * A[k,v,w] * imp[k,v,w] over the
// NONZEROS of A only: the NTU adjacency has 73 of 3*25*25 entries non-zero, so a sparse loop does
// 4% of the dense work (and dImp = dAeff * A is zero wherever A is). Parallel over (b, c).
// The forward takes each output value as one register sum over its nonzeros (grouped by output joint w), row by
// row of the (T, V) planes, which stay in L1; the terms are added in the nonzeros' (k, v, w) order, as a pass per
// nonzero over whole planes would add them.
// Backward: dy overwritten; dImp accumulates (per-sample partial sums, added in a fixed order).
public sealed partial class StGcnCpuOps
{
    // Nonzero entries of A as (k, v, w) index triples, in that order; Aeff values are A * imp there.
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

    // The nonzeros grouped by `key` (stable, so each group keeps the (k, v, w) order): group g's entries are
    // order[start[g] .. start[g + 1]).
    private static (int[] Start, int[] Order) GroupBy(int[] key, int groups)
    {
        var start = new int[groups + 1];
        foreach (int g in key) start[g + 1]++;
        for (int g = 0; g < groups; g++) start[g + 1] += start[g];
        var next = (int[])start.Clone();
        var order = new int[key.Length];
        for (int z = 0; z < key.Length; z++) order[next[key[z]]++] = z;
        return (start, order);
    }

    /// <inheritdoc/>
    protected override unsafe void GraphAggregateForward(Seg y, Seg a, Seg imp, Seg o, int b, int k, int c, int t, int v)
    {
        int vv = v * v, plane = t * v;
        Need(y, (long)b * k * c * plane, "y"); Need(a, (long)k * vv, "A"); Need(imp, (long)k * vv, "imp"); Need(o, (long)b * c * plane, "o");
        var (nk, nv, nw, val) = NonZeros(a, imp, k, v);
        // Per output joint w: its nonzeros' y offsets (from the (b, 0, c) plane) and values, in (k, v) order.
        var (start, order) = GroupBy(nw, v);
        var off = new int[order.Length]; var s = new float[order.Length];
        for (int i = 0; i < order.Length; i++) { int z = order[i]; off[i] = nk[z] * c * plane + nv[z]; s[i] = val[z]; }
        float[] ya = y.Array!, oa = o.Array!;
        int yo = y.Offset, oo = o.Offset;
        Parallel.For(0, b * c, bc =>
        {
            int bi = bc / c, ci = bc % c;
            fixed (float* py = ya, po = oa)
            fixed (int* pOff = off, pStart = start)
            fixed (float* ps = s)
            {
                float* src = py + yo + (long)(bi * k * c + ci) * plane, dst = po + oo + (long)bc * plane;
                for (int ti = 0; ti < t; ti++, src += v, dst += v)
                    for (int w = 0; w < v; w++)
                    {
                        float sum = 0;
                        for (int i = pStart[w], end = pStart[w + 1]; i < end; i++) sum += ps[i] * src[pOff[i]];
                        dst[w] = sum;
                    }
            }
        });
    }

    /// <inheritdoc/>
    protected override unsafe void GraphAggregateBackward(Seg dO, Seg y, Seg a, Seg imp, Seg dy, Seg dImp, int b, int k, int c, int t, int v)
    {
        int vv = v * v, plane = t * v;
        Need(dO, (long)b * c * plane, "dO"); Need(y, (long)b * k * c * plane, "y"); Need(dy, (long)b * k * c * plane, "dy"); Need(dImp, (long)k * vv, "dImp");
        var (nk, nv, nw, val) = NonZeros(a, imp, k, v);
        // Each nonzero's offset k·C·T·V + v from the (b, 0, c) plane of y / dy.
        var yOff = new int[nk.Length];
        for (int z = 0; z < yOff.Length; z++) yOff[z] = nk[z] * c * plane + nv[z];
        float[] ya = y.Array!, da = dO.Array!, dya = dy.Array!;
        int yo = y.Offset, doo = dO.Offset, dyo = dy.Offset, nz = val.Length;
        // dy[b,k,c,t,v] = sum over the nonzeros (k,v,w) of dO[b,c,t,w] * Aeff[k,v,w], added nonzero by nonzero down
        // the (T, V) planes (most inputs (k, v) have one nonzero: a register sum per output would cost more in loop
        // overhead than the adds it saves).
        Parallel.For(0, b * c, bc =>
        {
            int bi = bc / c, ci = bc % c;
            fixed (float* pd = da, pdy = dya)
            {
                float* src = pd + doo + (long)bc * plane, dst = pdy + dyo + (long)(bi * k * c + ci) * plane;
                for (int ki = 0; ki < k; ki++) new Span<float>(dst + (long)ki * c * plane, plane).Clear();
                for (int z = 0; z < nz; z++)
                {
                    float sz = val[z];
                    float* d = dst + yOff[z], sp = src + nw[z];
                    for (int ti = 0; ti < t; ti++) d[ti * v] += sz * sp[ti * v];
                }
            }
        });
        // dImp[k,v,w] += A[k,v,w] * sum_{b,c,t} y[b,k,c,t,v] * dO[b,c,t,w]: one partial per sample
        // (its planes stay in cache), summed in sample order so the result is deterministic.
        var partial = new double[b][];
        Parallel.For(0, b, bi =>
        {
            var part = partial[bi] = new double[nz];
            fixed (float* py = ya, pd = da)
            {
                for (int ci = 0; ci < c; ci++)
                {
                    float* ys = py + yo + (long)(bi * k * c + ci) * plane, ds = pd + doo + (long)(bi * c + ci) * plane;
                    for (int z = 0; z < nz; z++)
                    {
                        float* yz = ys + yOff[z], dz = ds + nw[z];
                        float sum = 0;
                        for (int ti = 0; ti < t; ti++) sum += yz[ti * v] * dz[ti * v];
                        part[z] += sum;
                    }
                }
            }
        });
        var acc = new double[nz];
        for (int bi = 0; bi < b; bi++)
            for (int z = 0; z < nz; z++) acc[z] += partial[bi][z];
        for (int z = 0; z < nz; z++)
        {
            int i = (nk[z] * v + nv[z]) * v + nw[z];
            dImp[i] += (float)(acc[z] * a[i]);
        }
    }
}
