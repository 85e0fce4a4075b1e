using System.Numerics;

namespace Tdsm.StGcn.Reference;

// Partitioned graph aggregation. y is (B,K,C,T,V) (the gcn conv output viewed per partition),
// A and imp are (K,V,V), o is (B,C,T,V): o[b,c,t,w] = sum_k sum_v y[b,k,c,t,v] * A[k,v,w] * imp[k,v,w].
// Backward: dy overwritten; dImp accumulates dAeff * A where dAeff[k,v,w] = sum_{b,c,t} y * dO.
public static partial class Ref
{
    /// <summary>Forward.</summary>
    public static void GraphAggregateForward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> a, ReadOnlySpan<T> imp, Span<T> o,
        int b, int k, int c, int t, int v) where T : IFloatingPointIeee754<T>
    {
        Need<T>(y, (long)b * k * c * t * v, "y"); Need<T>(a, (long)k * v * v, "A"); Need<T>(imp, (long)k * v * v, "imp"); Need<T>(o, (long)b * c * t * v, "o");
        for (int bi = 0; bi < b; bi++)
            for (int ci = 0; ci < c; ci++)
                for (int ti = 0; ti < t; ti++)
                    for (int w = 0; w < v; w++)
                    {
                        double acc = 0;
                        for (int ki = 0; ki < k; ki++)
                            for (int vi = 0; vi < v; vi++)
                            {
                                int ai = (ki * v + vi) * v + w;
                                acc += D(y[(((bi * k + ki) * c + ci) * t + ti) * v + vi]) * (D(a[ai]) * D(imp[ai]));
                            }
                        o[((bi * c + ci) * t + ti) * v + w] = F<T>(acc);
                    }
    }

    /// <summary>Backward.</summary>
    public static void GraphAggregateBackward<T>(ReadOnlySpan<T> dO, ReadOnlySpan<T> y, ReadOnlySpan<T> a, ReadOnlySpan<T> imp,
        Span<T> dy, Span<T> dImp, int b, int k, int c, int t, int v) where T : IFloatingPointIeee754<T>
    {
        Need<T>(dO, (long)b * c * t * v, "dO"); Need<T>(y, (long)b * k * c * t * v, "y"); Need<T>(dy, (long)b * k * c * t * v, "dy");
        for (int bi = 0; bi < b; bi++)
            for (int ki = 0; ki < k; ki++)
                for (int ci = 0; ci < c; ci++)
                    for (int ti = 0; ti < t; ti++)
                        for (int vi = 0; vi < v; vi++)
                        {
                            double acc = 0;
                            for (int w = 0; w < v; w++)
                            {
                                int ai = (ki * v + vi) * v + w;
                                acc += D(dO[((bi * c + ci) * t + ti) * v + w]) * (D(a[ai]) * D(imp[ai]));
                            }
                            dy[(((bi * k + ki) * c + ci) * t + ti) * v + vi] = F<T>(acc);
                        }
        for (int ki = 0; ki < k; ki++)
            for (int vi = 0; vi < v; vi++)
                for (int w = 0; w < v; w++)
                {
                    double acc = 0;
                    for (int bi = 0; bi < b; bi++)
                        for (int ci = 0; ci < c; ci++)
                            for (int ti = 0; ti < t; ti++)
                                acc += D(y[(((bi * k + ki) * c + ci) * t + ti) * v + vi]) * D(dO[((bi * c + ci) * t + ti) * v + w]);
                    int ai = (ki * v + vi) * v + w;
                    dImp[ai] = F<T>(D(dImp[ai]) + acc * D(a[ai]));
                }
    }
}
