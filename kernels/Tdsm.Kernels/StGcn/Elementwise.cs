using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// ST-GCN elementwise ops, one thread per element: ReLU and its backward (mask y &gt; 0), the
/// residual join y = max(a + r, 0) (hasR = 0: no residual) and its backward (da and, with hasR,
/// dr overwritten with the masked gradient), and the in-place add used to join branch gradients.
/// </summary>
public static class Elementwise
{
    public static void Relu(Index1D i, ArrayView<float> x, ArrayView<float> y) => y[i] = x[i] > 0 ? x[i] : 0;

    public static void ReluBackward(Index1D i, ArrayView<float> dy, ArrayView<float> y, ArrayView<float> dx) => dx[i] = y[i] > 0 ? dy[i] : 0;

    public static void ResidualRelu(Index1D i, ArrayView<float> a, ArrayView<float> r, ArrayView<float> y, int hasR)
    {
        float s = hasR != 0 ? a[i] + r[i] : a[i];
        y[i] = s > 0 ? s : 0;
    }

    public static void ResidualReluBackward(Index1D i, ArrayView<float> dy, ArrayView<float> y, ArrayView<float> da, ArrayView<float> dr, int hasR)
    {
        float g = y[i] > 0 ? dy[i] : 0;
        da[i] = g;
        if (hasR != 0) dr[i] = g;
    }

    /// <summary>dst += src.</summary>
    public static void AddInPlace(Index1D i, ArrayView<float> src, ArrayView<float> dst) => dst[i] += src[i];
}
