using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Head pooling x (N*M, C, L) -> f (N, C): mean over L (SIMD sums) then over persons. dx overwritten with df/(M*L).
public sealed partial class StGcnCpuOps
{
    /// <inheritdoc/>
    protected override void PoolForward(Seg x, Seg f, int n, int m, int c, int l)
    {
        Need(x, (long)n * m * c * l, "x"); Need(f, (long)n * c, "f");
        Parallel.For(0, n, ni =>
        {
            for (int ci = 0; ci < c; ci++)
            {
                double acc = 0;
                for (int mi = 0; mi < m; mi++) acc += (double)SumF(x.AsSpan(((ni * m + mi) * c + ci) * l, l)) / l;
                f[ni * c + ci] = (float)(acc / m);
            }
        });
    }

    /// <inheritdoc/>
    protected override void PoolBackward(Seg df, Seg dx, int n, int m, int c, int l)
    {
        Need(df, (long)n * c, "df"); Need(dx, (long)n * m * c * l, "dx");
        Parallel.For(0, n, ni =>
        {
            for (int mi = 0; mi < m; mi++)
                for (int ci = 0; ci < c; ci++)
                    dx.AsSpan(((ni * m + mi) * c + ci) * l, l).Fill((float)(df[ni * c + ci] / ((double)m * l)));
        });
    }
}
