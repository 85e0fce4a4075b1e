using System.Numerics;

namespace Tdsm.StGcn.Reference;

// Temporal convolution (kt x 1 kernel, stride s, zero padding p = (kt-1)/2 on time only).
// x is (B,Cin,T,V), w (Cout,Cin,kt) (PyTorch [Cout,Cin,kt,1]), bias (Cout), y (B,Cout,Tout,V) with
// Tout = (T + 2p - kt)/s + 1 and y[.,co,to,.] = bias + sum_{ci,j} w[co,ci,j] x[.,ci,to*s + j - p,.].
// dx overwritten; dW, dBias accumulate.
public static partial class Ref
{
    /// <summary>Output length for <paramref name="t"/> frames.</summary>
    public static int TemporalOut(int t, int kt, int stride) => (t + 2 * ((kt - 1) / 2) - kt) / stride + 1;

    /// <summary>Forward.</summary>
    public static void TemporalConvForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y,
        int b, int cin, int cout, int t, int v, int kt, int stride) where T : IFloatingPointIeee754<T>
    {
        int p = (kt - 1) / 2, tout = TemporalOut(t, kt, stride);
        Need<T>(x, (long)b * cin * t * v, "x"); Need<T>(w, (long)cout * cin * kt, "w"); Need<T>(bias, cout, "bias"); Need<T>(y, (long)b * cout * tout * v, "y");
        for (int bi = 0; bi < b; bi++)
            for (int co = 0; co < cout; co++)
                for (int to = 0; to < tout; to++)
                    for (int vi = 0; vi < v; vi++)
                    {
                        double acc = D(bias[co]);
                        for (int ci = 0; ci < cin; ci++)
                            for (int j = 0; j < kt; j++)
                            {
                                int ti = to * stride + j - p;
                                if (ti < 0 || ti >= t) continue;
                                acc += D(w[(co * cin + ci) * kt + j]) * D(x[((bi * cin + ci) * t + ti) * v + vi]);
                            }
                        y[((bi * cout + co) * tout + to) * v + vi] = F<T>(acc);
                    }
    }

    /// <summary>Backward.</summary>
    public static void TemporalConvBackward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> dx, Span<T> dW, Span<T> dBias,
        int b, int cin, int cout, int t, int v, int kt, int stride) where T : IFloatingPointIeee754<T>
    {
        int p = (kt - 1) / 2, tout = TemporalOut(t, kt, stride);
        Need<T>(dy, (long)b * cout * tout * v, "dy"); Need<T>(x, (long)b * cin * t * v, "x"); Need<T>(dx, (long)b * cin * t * v, "dx");
        // dx[b,ci,ti,v] = sum_{co,j: ti = to*s + j - p} w[co,ci,j] dy[b,co,to,v]
        for (int bi = 0; bi < b; bi++)
            for (int ci = 0; ci < cin; ci++)
                for (int ti = 0; ti < t; ti++)
                    for (int vi = 0; vi < v; vi++)
                    {
                        double acc = 0;
                        for (int j = 0; j < kt; j++)
                        {
                            int num = ti + p - j;
                            if (num < 0 || num % stride != 0) continue;
                            int to = num / stride;
                            if (to >= tout) continue;
                            for (int co = 0; co < cout; co++)
                                acc += D(w[(co * cin + ci) * kt + j]) * D(dy[((bi * cout + co) * tout + to) * v + vi]);
                        }
                        dx[((bi * cin + ci) * t + ti) * v + vi] = F<T>(acc);
                    }
        for (int co = 0; co < cout; co++)
        {
            double db = 0;
            for (int bi = 0; bi < b; bi++)
                for (int q = 0; q < tout * v; q++) db += D(dy[(bi * cout + co) * tout * v + q]);
            dBias[co] = F<T>(D(dBias[co]) + db);
            for (int ci = 0; ci < cin; ci++)
                for (int j = 0; j < kt; j++)
                {
                    double acc = 0;
                    for (int bi = 0; bi < b; bi++)
                        for (int to = 0; to < tout; to++)
                        {
                            int ti = to * stride + j - p;
                            if (ti < 0 || ti >= t) continue;
                            for (int vi = 0; vi < v; vi++)
                                acc += D(dy[((bi * cout + co) * tout + to) * v + vi]) * D(x[((bi * cin + ci) * t + ti) * v + vi]);
                        }
                    int wi = (co * cin + ci) * kt + j;
                    dW[wi] = F<T>(D(dW[wi]) + acc);
                }
        }
    }
}
