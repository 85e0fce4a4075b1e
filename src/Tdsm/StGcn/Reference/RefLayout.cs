using System.Numerics;

namespace Tdsm.StGcn.Reference;

// Layout changes around data_bn. x is (N,C,T,V,M); the data_bn view is (B=N*M, V*C, T) with
// channel v*C + c; the blocks see (B, C, T, V). Backward is the inverse permutation (dx overwritten).
public static partial class Ref
{
    /// <summary>x (N,C,T,V,M) -> y (N*M, V*C, T).</summary>
    public static void InputToBnLayout<T>(ReadOnlySpan<T> x, Span<T> y, int n, int c, int t, int v, int m) where T : IFloatingPointIeee754<T>
    {
        Need<T>(x, (long)n * c * t * v * m, "x"); Need<T>(y, (long)n * c * t * v * m, "y");
        for (int i = 0; i < n; i++)
            for (int ci = 0; ci < c; ci++)
                for (int ti = 0; ti < t; ti++)
                    for (int vi = 0; vi < v; vi++)
                        for (int mi = 0; mi < m; mi++)
                            y[(((i * m + mi) * v + vi) * c + ci) * t + ti] = x[(((i * c + ci) * t + ti) * v + vi) * m + mi];
    }

    /// <summary>dy (N*M, V*C, T) -> dx (N,C,T,V,M).</summary>
    public static void InputToBnLayoutBackward<T>(ReadOnlySpan<T> dy, Span<T> dx, int n, int c, int t, int v, int m) where T : IFloatingPointIeee754<T>
    {
        Need<T>(dy, (long)n * c * t * v * m, "dy"); Need<T>(dx, (long)n * c * t * v * m, "dx");
        for (int i = 0; i < n; i++)
            for (int ci = 0; ci < c; ci++)
                for (int ti = 0; ti < t; ti++)
                    for (int vi = 0; vi < v; vi++)
                        for (int mi = 0; mi < m; mi++)
                            dx[(((i * c + ci) * t + ti) * v + vi) * m + mi] = dy[(((i * m + mi) * v + vi) * c + ci) * t + ti];
    }

    /// <summary>x (B, V*C, T) -> y (B, C, T, V).</summary>
    public static void BnToBlockLayout<T>(ReadOnlySpan<T> x, Span<T> y, int b, int c, int t, int v) where T : IFloatingPointIeee754<T>
    {
        Need<T>(x, (long)b * c * t * v, "x"); Need<T>(y, (long)b * c * t * v, "y");
        for (int bi = 0; bi < b; bi++)
            for (int vi = 0; vi < v; vi++)
                for (int ci = 0; ci < c; ci++)
                    for (int ti = 0; ti < t; ti++)
                        y[((bi * c + ci) * t + ti) * v + vi] = x[((bi * v + vi) * c + ci) * t + ti];
    }

    /// <summary>dy (B, C, T, V) -> dx (B, V*C, T).</summary>
    public static void BnToBlockLayoutBackward<T>(ReadOnlySpan<T> dy, Span<T> dx, int b, int c, int t, int v) where T : IFloatingPointIeee754<T>
    {
        Need<T>(dy, (long)b * c * t * v, "dy"); Need<T>(dx, (long)b * c * t * v, "dx");
        for (int bi = 0; bi < b; bi++)
            for (int vi = 0; vi < v; vi++)
                for (int ci = 0; ci < c; ci++)
                    for (int ti = 0; ti < t; ti++)
                        dx[((bi * v + vi) * c + ci) * t + ti] = dy[((bi * c + ci) * t + ti) * v + vi];
    }
}
