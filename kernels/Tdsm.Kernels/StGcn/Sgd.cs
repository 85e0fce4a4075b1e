using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// SGD with Nesterov momentum and L2 weight decay (torch.optim.SGD, dampening 0), one thread per
/// parameter, in float32 exactly as the host <c>SgdNesterov</c>: d = g + wd·p; buf = mu·buf + d; p −= lr·(d + mu·buf).
/// </summary>
public static class Sgd
{
    public static void NesterovStep(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> buf, float lr, float mu, float wd)
    {
        float d = g[i] + wd * p[i];
        float b = mu * buf[i] + d;
        buf[i] = b;
        p[i] -= lr * (d + mu * b);
    }
}
