using ILGPU;

namespace Tdsm.Kernels;

/// <summary>Row gather: output (R, W) = table[index[r]] — the class text features by label.</summary>
public static class Gather
{
    public static void Rows(Index1D idx, ArrayView<float> table, ArrayView<int> index, ArrayView<float> output, int width)
    {
        int r = idx / width;
        output[idx] = table[(long)index[r] * width + idx % width];
    }
}
