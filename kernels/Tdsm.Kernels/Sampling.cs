using ILGPU;
using ILGPU.Algorithms;
using Tdsm.Tensors;

namespace Tdsm.Kernels;

/// <summary>
/// On-device sampling for the training step with the counter-based generator of the CPU tiers
/// (<see cref="CounterRng"/>): the integer mixing is the same code, so integers match the host
/// exactly; normals use XMath's float64 log/cos. Also the y ≠ y_neg mask.
/// </summary>
public static class Sampling
{
    public static void Normal(Index1D i, ArrayView<float> dst, ulong seed, ulong stream)
    {
        ulong k = (ulong)(long)(int)i;
        double u1 = ((CounterRng.Bits(seed, stream, 2 * k) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        double u2 = ((CounterRng.Bits(seed, stream, 2 * k + 1) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
        dst[i] = (float)(XMath.Sqrt(-2 * XMath.Log(u1)) * XMath.Cos(2 * XMath.PI * u2));
    }

    public static void Below(Index1D i, ArrayView<float> dst, int n, ulong seed, ulong stream) =>
        dst[i] = CounterRng.Below(n, seed, stream, (ulong)(long)(int)i);

    public static void NotEqual(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> mask) =>
        mask[i] = a[i] != b[i] ? 1f : 0f;
}
