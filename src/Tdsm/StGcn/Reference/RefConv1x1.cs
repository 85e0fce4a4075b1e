using System.Numerics;

namespace Tdsm.StGcn.Reference;

// 1x1 convolution with temporal stride. x is (B,Cin,T,V), w (Cout,Cin), bias (Cout),
// y (B,Cout,Tout,V) with Tout = (T-1)/stride + 1 and y[.,.,t,.] reading x[.,.,t*stride,.].
// With T = V = 1 this is the classifier fcn (Linear). dx overwritten; dW, dBias accumulate.
public static partial class Ref
{
    /// <summary>Forward.</summary>
    public static void Conv1x1Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y,
        int b, int cin, int cout, int t, int v, int stride) where T : IFloatingPointIeee754<T>
    {
        int tout = (t - 1) / stride + 1;
        Need<T>(x, (long)b * cin * t * v, "x"); Need<T>(w, (long)cout * cin, "w"); Need<T>(bias, cout, "bias"); Need<T>(y, (long)b * cout * tout * v, "y");
        for (int bi = 0; bi < b; bi++)
            for (int co = 0; co < cout; co++)
                for (int to = 0; to < tout; to++)
                    for (int vi = 0; vi < v; vi++)
                    {
                        double acc = D(bias[co]);
                        for (int ci = 0; ci < cin; ci++) acc += D(w[co * cin + ci]) * D(x[((bi * cin + ci) * t + to * stride) * v + vi]);
                        y[((bi * cout + co) * tout + to) * v + vi] = F<T>(acc);
                    }
    }

    /// <summary>Backward; pass an empty dx to skip the input gradient (the first layer's input).</summary>
    public static void Conv1x1Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> dx, Span<T> dW, Span<T> dBias,
        int b, int cin, int cout, int t, int v, int stride) where T : IFloatingPointIeee754<T>
    {
        int tout = (t - 1) / stride + 1;
        Need<T>(dy, (long)b * cout * tout * v, "dy"); Need<T>(x, (long)b * cin * t * v, "x");
        if (!dx.IsEmpty)
        {
            Need<T>(dx, (long)b * cin * t * v, "dx");
            dx[..(b * cin * t * v)].Clear();
            for (int bi = 0; bi < b; bi++)
                for (int ci = 0; ci < cin; ci++)
                    for (int to = 0; to < tout; to++)
                        for (int vi = 0; vi < v; vi++)
                        {
                            double acc = 0;
                            for (int co = 0; co < cout; co++) acc += D(w[co * cin + ci]) * D(dy[((bi * cout + co) * tout + to) * v + vi]);
                            dx[((bi * cin + ci) * t + to * stride) * v + vi] = F<T>(acc);
                        }
        }
        for (int co = 0; co < cout; co++)
        {
            double db = 0;
            for (int bi = 0; bi < b; bi++)
                for (int p = 0; p < tout * v; p++) db += D(dy[(bi * cout + co) * tout * v + p]);
            dBias[co] = F<T>(D(dBias[co]) + db);
            for (int ci = 0; ci < cin; ci++)
            {
                double acc = 0;
                for (int bi = 0; bi < b; bi++)
                    for (int to = 0; to < tout; to++)
                        for (int vi = 0; vi < v; vi++)
                            acc += D(dy[((bi * cout + co) * tout + to) * v + vi]) * D(x[((bi * cin + ci) * t + to * stride) * v + vi]);
                dW[co * cin + ci] = F<T>(D(dW[co * cin + ci]) + acc);
            }
        }
    }
}
