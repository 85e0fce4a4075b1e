using System.Numerics;

namespace Tdsm.StGcn.Reference;

// Head pooling: x is (N*M, C, L) with L = T*V; f (N, C) = mean over persons of the mean over L.
// Backward: dx overwritten with df / (M*L).
public static partial class Ref
{
    /// <summary>Forward.</summary>
    public static void PoolForward<T>(ReadOnlySpan<T> x, Span<T> f, int n, int m, int c, int l) where T : IFloatingPointIeee754<T>
    {
        Need<T>(x, (long)n * m * c * l, "x"); Need<T>(f, (long)n * c, "f");
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
            {
                double acc = 0;
                for (int mi = 0; mi < m; mi++)
                {
                    double s = 0;
                    for (int li = 0; li < l; li++) s += D(x[((ni * m + mi) * c + ci) * l + li]);
                    acc += s / l;
                }
                f[ni * c + ci] = F<T>(acc / m);
            }
    }

    /// <summary>Backward.</summary>
    public static void PoolBackward<T>(ReadOnlySpan<T> df, Span<T> dx, int n, int m, int c, int l) where T : IFloatingPointIeee754<T>
    {
        Need<T>(df, (long)n * c, "df"); Need<T>(dx, (long)n * m * c * l, "dx");
        for (int ni = 0; ni < n; ni++)
            for (int mi = 0; mi < m; mi++)
                for (int ci = 0; ci < c; ci++)
                {
                    var g = F<T>(D(df[ni * c + ci]) / ((double)m * l));
                    for (int li = 0; li < l; li++) dx[((ni * m + mi) * c + ci) * l + li] = g;
                }
    }
}
