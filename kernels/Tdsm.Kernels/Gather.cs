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

    /// <summary>The same with the index in a float tensor (integer values, exact below 2^24), for indices produced on the device.</summary>
    public static void RowsByTensor(Index1D idx, ArrayView<float> table, ArrayView<float> index, ArrayView<float> output, int width)
    {
        int r = idx / width;
        output[idx] = table[(long)(int)index[r] * width + idx % width];
    }
}
