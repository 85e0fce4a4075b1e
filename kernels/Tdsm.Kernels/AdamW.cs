using ILGPU;
using ILGPU.Algorithms;

namespace Tdsm.Kernels;

/// <summary>AdamW hyper-parameters for one step; the bias corrections are folded in on the host.</summary>
public struct AdamWArgs
{
    public float Lr, Beta1, Beta2, Eps, WeightDecay, Bc1, Bc2;
}

/// <summary>AdamW over a contiguous parameter range, one thread per element (torch.optim.AdamW's formula).</summary>
public static class AdamW
{
    public static void Step(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamWArgs a)
    {
        double gi = g[i];
        double pi = p[i] * (1 - (double)a.Lr * a.WeightDecay);
        double mi = a.Beta1 * (double)m[i] + (1 - (double)a.Beta1) * gi;
        double vi = a.Beta2 * (double)v[i] + (1 - (double)a.Beta2) * gi * gi;
        pi -= (double)a.Lr / a.Bc1 * mi / (XMath.Sqrt(vi) / XMath.Sqrt((double)a.Bc2) + a.Eps);
        p[i] = (float)pi; m[i] = (float)mi; v[i] = (float)vi;
    }
}
