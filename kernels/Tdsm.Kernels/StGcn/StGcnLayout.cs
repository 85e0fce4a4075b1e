using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// Layout changes around data_bn, one thread per element (pure permutations, so backward is the
/// inverse gather). x is (N,C,T,V,M); the data_bn view is (B=N*M, V*C, T) with channel v*C + c;
/// the blocks see (B, C, T, V).
/// </summary>
public static class StGcnLayout
{
    /// <summary>y (N*M, V*C, T)[i] from x (N,C,T,V,M); i indexes y.</summary>
    public static void InputToBn(Index1D i, ArrayView<float> x, ArrayView<float> y, int c, int t, int v, int m)
    {
        // i = (((n*m + mi)*v + vi)*c + ci)*t + ti
        int ti = i % t, r = i / t;
        int ci = r % c; r /= c;
        int vi = r % v; r /= v;
        int mi = r % m, ni = r / m;
        y[i] = x[((((long)ni * c + ci) * t + ti) * v + vi) * m + mi];
    }

    /// <summary>dx (N,C,T,V,M)[i] from dy (N*M, V*C, T); i indexes dx.</summary>
    public static void InputToBnBackward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, int c, int t, int v, int m)
    {
        // i = (((n*c + ci)*t + ti)*v + vi)*m + mi
        int mi = i % m, r = i / m;
        int vi = r % v; r /= v;
        int ti = r % t; r /= t;
        int ci = r % c, ni = r / c;
        dx[i] = dy[((((long)ni * m + mi) * v + vi) * c + ci) * t + ti];
    }

    /// <summary>y (B,C,T,V)[i] from x (B, V*C, T); i indexes y.</summary>
    public static void BnToBlock(Index1D i, ArrayView<float> x, ArrayView<float> y, int c, int t, int v)
    {
        int vi = i % v, r = i / v;
        int ti = r % t; r /= t;
        int ci = r % c, bi = r / c;
        y[i] = x[(((long)bi * v + vi) * c + ci) * t + ti];
    }

    /// <summary>dx (B, V*C, T)[i] from dy (B,C,T,V); i indexes dx.</summary>
    public static void BnToBlockBackward(Index1D i, ArrayView<float> dy, ArrayView<float> dx, int c, int t, int v)
    {
        int ti = i % t, r = i / t;
        int ci = r % c; r /= c;
        int vi = r % v, bi = r / v;
        dx[i] = dy[(((long)bi * c + ci) * t + ti) * v + vi];
    }
}
