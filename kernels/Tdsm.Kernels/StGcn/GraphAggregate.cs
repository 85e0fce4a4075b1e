using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>Sizes of the partitioned graph aggregation: y (B,K,C,T,V), A and imp (K,V,V), o (B,C,T,V).</summary>
public struct GraphArgs
{
    public int B, K, C, T, V;
}

/// <summary>
/// Partitioned graph aggregation o[b,c,t,w] = Σ_k Σ_v y[b,k,c,t,v]·A'[k,v,w] with A' = A ⊙ imp
/// (edge importance). Forward: one thread per output looping K·V. Input gradient: one thread per
/// dy element looping W. Edge-importance gradient dimp[k,v,w] += A[k,v,w]·Σ_{b,c,t} y·dO, in two
/// deterministic stages: a per-(b,k,v,w) float64 partial looping (c,t), then an ordered sum over b.
/// </summary>
public static class GraphAggregate
{
    /// <summary>Thread i indexes o (B,C,T,V).</summary>
    public static void Forward(Index1D i, ArrayView<float> y, ArrayView<float> a, ArrayView<float> imp, ArrayView<float> o, GraphArgs p)
    {
        int w = i % p.V, r = i / p.V;
        int ti = r % p.T; r /= p.T;
        int ci = r % p.C, bi = r / p.C;
        float acc = 0;
        for (int ki = 0; ki < p.K; ki++)
        {
            long yb = ((((long)bi * p.K + ki) * p.C + ci) * p.T + ti) * p.V;
            int ab = ki * p.V * p.V + w;
            for (int vi = 0; vi < p.V; vi++)
            {
                int ai = ab + vi * p.V;
                acc += y[yb + vi] * (a[ai] * imp[ai]);
            }
        }
        o[i] = acc;
    }

    /// <summary>Thread i indexes dy (B,K,C,T,V) (overwritten).</summary>
    public static void InputGrad(Index1D i, ArrayView<float> dO, ArrayView<float> a, ArrayView<float> imp, ArrayView<float> dy, GraphArgs p)
    {
        int vi = i % p.V, r = i / p.V;
        int ti = r % p.T; r /= p.T;
        int ci = r % p.C; r /= p.C;
        int ki = r % p.K, bi = r / p.K;
        long ob = (((long)bi * p.C + ci) * p.T + ti) * p.V;
        int ab = (ki * p.V + vi) * p.V;
        float acc = 0;
        for (int w = 0; w < p.V; w++) acc += dO[ob + w] * (a[ab + w] * imp[ab + w]);
        dy[i] = acc;
    }

    /// <summary>Thread i = (b, k, v, w): part[i] = Σ_{c,t} y[b,k,c,t,v]·dO[b,c,t,w].</summary>
    public static void ImportancePartial(Index1D i, ArrayView<float> y, ArrayView<float> dO, ArrayView<double> part, GraphArgs p)
    {
        int w = i % p.V, r = i / p.V;
        int vi = r % p.V; r /= p.V;
        int ki = r % p.K, bi = r / p.K;
        double acc = 0;
        for (int ci = 0; ci < p.C; ci++)
        {
            long yb = (((long)bi * p.K + ki) * p.C + ci) * p.T * p.V + vi;
            long ob = ((long)bi * p.C + ci) * p.T * p.V + w;
            for (int ti = 0; ti < p.T; ti++) acc += (double)y[yb + (long)ti * p.V] * dO[ob + (long)ti * p.V];
        }
        part[i] = acc;
    }

    /// <summary>Thread e = (k, v, w): dimp[e] += A[e]·Σ_b part[b, e].</summary>
    public static void ImportanceReduce(Index1D e, ArrayView<double> part, ArrayView<float> a, ArrayView<float> dImp, GraphArgs p)
    {
        long size = (long)p.K * p.V * p.V;
        double s = 0;
        for (int bi = 0; bi < p.B; bi++) s += part[bi * size + e];
        dImp[e] = (float)(dImp[e] + s * a[e]);
    }
}
