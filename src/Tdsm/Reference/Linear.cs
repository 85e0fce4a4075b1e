using System.Numerics;
using static Tdsm.Reference.Num;

namespace Tdsm.Reference;

/// <summary>
/// Linear layer, reference tier. x is (R, In), W is (Out, In) as PyTorch stores it, b is (Out),
/// y is (R, Out): y = x Wᵀ + b. Backward: dx = dy W (overwritten, or added when
/// <c>accumulateDx</c>), dW += dyᵀ x and db += Σ_rows dy (parameter gradients accumulate).
/// </summary>
public static class Linear
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, int rows, int inF, int outF)
        where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = b.IsEmpty ? 0 : D(b[o]);
                for (int i = 0; i < inF; i++) s += D(x[r * inF + i]) * D(w[o * inF + i]);
                y[r * outF + o] = F<T>(s);
            }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> dx, Span<T> dw, Span<T> db,
        int rows, int inF, int outF, bool accumulateDx) where T : IFloatingPointIeee754<T>
    {
        if (!dx.IsEmpty)
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < inF; i++)
                {
                    double s = accumulateDx ? D(dx[r * inF + i]) : 0;
                    for (int o = 0; o < outF; o++) s += D(dy[r * outF + o]) * D(w[o * inF + i]);
                    dx[r * inF + i] = F<T>(s);
                }
        for (int o = 0; o < outF; o++)
        {
            for (int i = 0; i < inF; i++)
            {
                double s = D(dw[o * inF + i]);
                for (int r = 0; r < rows; r++) s += D(dy[r * outF + o]) * D(x[r * inF + i]);
                dw[o * inF + i] = F<T>(s);
            }
            if (!db.IsEmpty)
            {
                double s = D(db[o]);
                for (int r = 0; r < rows; r++) s += D(dy[r * outF + o]);
                db[o] = F<T>(s);
            }
        }
    }
}
