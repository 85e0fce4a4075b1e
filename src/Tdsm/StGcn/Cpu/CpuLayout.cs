using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Layout changes around data_bn (see Reference/RefLayout.cs): x (N,C,T,V,M) <-> (B, V*C, T) <-> (B, C, T, V).
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    protected override void InputToBnLayout(Seg x, Seg y, int n, int c, int t, int v, int m)
    {
        Need(x, (long)n * c * t * v * m, "x"); Need(y, (long)n * c * t * v * m, "y");
        var xa = x.Array!; var ya = y.Array!; int xo = x.Offset, yo = y.Offset;
        Parallel.For(0, n, i =>
        {
            for (int ci = 0; ci < c; ci++)
                for (int ti = 0; ti < t; ti++)
                {
                    int src = xo + ((i * c + ci) * t + ti) * v * m;
                    for (int vi = 0; vi < v; vi++)
                        for (int mi = 0; mi < m; mi++)
                            ya[yo + (((i * m + mi) * v + vi) * c + ci) * t + ti] = xa[src + vi * m + mi];
                }
        });
    }

    /// <inheritdoc/>
    protected override void InputToBnLayoutBackward(Seg dy, Seg dx, int n, int c, int t, int v, int m)
    {
        Need(dy, (long)n * c * t * v * m, "dy"); Need(dx, (long)n * c * t * v * m, "dx");
        var ya = dy.Array!; var xa = dx.Array!; int yo = dy.Offset, xo = dx.Offset;
        Parallel.For(0, n, i =>
        {
            for (int ci = 0; ci < c; ci++)
                for (int ti = 0; ti < t; ti++)
                {
                    int dst = xo + ((i * c + ci) * t + ti) * v * m;
                    for (int vi = 0; vi < v; vi++)
                        for (int mi = 0; mi < m; mi++)
                            xa[dst + vi * m + mi] = ya[yo + (((i * m + mi) * v + vi) * c + ci) * t + ti];
                }
        });
    }

    /// <inheritdoc/>
    protected override void BnToBlockLayout(Seg x, Seg y, int b, int c, int t, int v)
    {
        Need(x, (long)b * c * t * v, "x"); Need(y, (long)b * c * t * v, "y");
        var xa = x.Array!; var ya = y.Array!; int xo = x.Offset, yo = y.Offset;
        Parallel.For(0, b, bi =>
        {
            for (int vi = 0; vi < v; vi++)
                for (int ci = 0; ci < c; ci++)
                {
                    int src = xo + ((bi * v + vi) * c + ci) * t;
                    for (int ti = 0; ti < t; ti++) ya[yo + ((bi * c + ci) * t + ti) * v + vi] = xa[src + ti];
                }
        });
    }

    /// <inheritdoc/>
    protected override void BnToBlockLayoutBackward(Seg dy, Seg dx, int b, int c, int t, int v)
    {
        Need(dy, (long)b * c * t * v, "dy"); Need(dx, (long)b * c * t * v, "dx");
        var ya = dy.Array!; var xa = dx.Array!; int yo = dy.Offset, xo = dx.Offset;
        Parallel.For(0, b, bi =>
        {
            for (int vi = 0; vi < v; vi++)
                for (int ci = 0; ci < c; ci++)
                {
                    int dst = xo + ((bi * v + vi) * c + ci) * t;
                    for (int ti = 0; ti < t; ti++) xa[dst + ti] = ya[yo + ((bi * c + ci) * t + ti) * v + vi];
                }
        });
    }
}
