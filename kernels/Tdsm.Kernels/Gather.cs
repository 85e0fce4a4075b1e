using ILGPU;
using ILGPU.Runtime;
using Vec4 = Tdsm.Kernels.Gemm.Vec4;

namespace Tdsm.Kernels;

/// <summary>
/// Row gather: output (R, W) = table[index[r]] — the class text features by label, and in zero-shot scoring every
/// per-class constant (the first block's text q/k/v: 620 MB per 1,920-row chunk, the modulations) by candidate.
/// </summary>
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

    /// <summary>
    /// <see cref="Rows"/> by 16-byte chunks, thread c for chunk c of the output: width4 = W/4 chunks per row, table and
    /// output 16-byte aligned. A thread per float spent ~30 instructions on one float (the division by W among them):
    /// the third visit's scoring profile had the gathers at ~4x the time of their bytes.
    /// </summary>
    public static void RowsVec(Index1D c, ArrayView<float> table, ArrayView<int> index, ArrayView<float> output, int width4)
    {
        int r = c / width4;
        output.Cast<Vec4>().AsAligned(16)[c] = table.Cast<Vec4>().AsAligned(16)[(long)index[r] * width4 + (c - r * width4)];
    }

    /// <summary><see cref="RowsByTensor"/> by 16-byte chunks, as <see cref="RowsVec"/>.</summary>
    public static void RowsByTensorVec(Index1D c, ArrayView<float> table, ArrayView<float> index, ArrayView<float> output, int width4)
    {
        int r = c / width4;
        output.Cast<Vec4>().AsAligned(16)[c] = table.Cast<Vec4>().AsAligned(16)[(long)(int)index[r] * width4 + (c - r * width4)];
    }
}
