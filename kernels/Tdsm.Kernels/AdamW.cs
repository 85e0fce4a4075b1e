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
    public static void Step(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamWArgs a) =>
        Update(p, i, g, m, v, i, a);

    /// <summary>
    /// <see cref="Step"/> that also keeps the bf16 copy of the parameters current: p is the whole parameter buffer and
    /// packed its bf16 pairs (<see cref="Bf16.PackRows"/> of it: word w = (p[2w], p[2w+1])); g, m, v are the range's
    /// views; the range starts at element <paramref name="first"/> of p and holds <paramref name="count"/> elements.
    /// One thread per word the range touches (word first/2 + i): it updates the word's elements inside the range and
    /// packs both, so the copy equals a fresh pack after the launches of every range. A last odd element of p has no word.
    /// </summary>
    public static void StepPacked(Index1D i, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, ArrayView<uint> packed,
        AdamWArgs a, long first, long count)
    {
        long w = (first >> 1) + i, e0 = 2 * w;
        for (long e = e0; e < e0 + 2; e++)
            if (e >= first && e < first + count) Update(p, e, g, m, v, e - first, a);
        if (e0 + 1 < p.Length) packed[w] = Bf16.Pack(p[e0], p[e0 + 1]);
    }

    // p[pi] and the moments m[li], v[li] after one step with gradient g[li].
    private static void Update(ArrayView<float> p, long pi, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, long li, AdamWArgs a)
    {
        double gi = g[li];
        double pv = p[pi] * (1 - (double)a.Lr * a.WeightDecay);
        double mi = a.Beta1 * (double)m[li] + (1 - (double)a.Beta1) * gi;
        double vi = a.Beta2 * (double)v[li] + (1 - (double)a.Beta2) * gi * gi;
        pv -= (double)a.Lr / a.Bc1 * mi / (XMath.Sqrt(vi) / XMath.Sqrt((double)a.Bc2) + a.Eps);
        p[pi] = (float)pv; m[li] = (float)mi; v[li] = (float)vi;
    }
}
