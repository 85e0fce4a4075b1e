using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>
/// The stride-1 ST-GCN convolutions (temporal kt×1 with pad (kt−1)/2, and 1×1) on the packed-operand tensor-core GEMM
/// <see cref="TensorCoreGemm.KernelLdMatrixShifted"/>, forward and input gradient. A stride-1 conv is a sum over taps j of
/// plain products: with the input stored channels-last and padded in time, tap j reads the rows (t, v) shifted down by
/// j·V. So per sample z:
/// <list type="bullet">
/// <item>forward: y_z (Cout, T·V) = W' (Cout, kt·Cin) · X'_zᵀ, W'[co, j·Cin + ci] = W[co, ci, j], and B row n = (t, v),
/// k = (j, ci) is x_z[ci, t + j − pad, v] = row n + j·V of x_z channels-last padded by pad frames
/// (<see cref="PackChannelsLast"/>);</item>
/// <item>input gradient: dx_z (Cin, T·V) = W'' (Cin, kt·Cout) · D'_zᵀ, W''[ci, j'·Cout + co] = W[co, ci, kt − 1 − j'], and
/// B row n, k = (j', co) is dy_z[co, t − j + pad, v] with j = kt − 1 − j': row n + j'·V of dy_z channels-last padded by pad.</item>
/// </list>
/// Operands are bf16 (nearest even, as the other tensor-core convolutions round them), accumulation fp32, so the
/// results differ from <see cref="TensorCoreConv"/>'s only in the order of the fp32 sums. The channels summed over
/// (Cin forward, Cout backward) must be a multiple of 32 (each K-step of 32 stays inside one tap); strided convolutions and the
/// weight gradient stay on <see cref="TensorCoreConv"/>.
/// </summary>
public static class PackedConv
{
    /// <summary>Positions (rows of the channels-last output) per <see cref="PackChannelsLast"/> group.</summary>
    public const int PackRows = 32;
    /// <summary>Channels per <see cref="PackChannelsLast"/> group.</summary>
    public const int PackChannels = 64;
    /// <summary>Threads per <see cref="PackChannelsLast"/> group.</summary>
    public const int PackThreads = 256;

    /// <summary>Whether the product of convolution <paramref name="p"/> that sums over <paramref name="channels"/> channels
    /// (Cin forward, Cout input gradient) runs here: stride 1 with "same" padding (T frames out, as odd kt and pad (kt−1)/2
    /// give; the products' column count assumes it) and a multiple of 32 channels.</summary>
    public static bool Supports(int channels, ConvArgs p) =>
        p.Stride == 1 && p.Tout == p.T && 2 * p.Pad == p.Kt - 1 && channels >= 32 && channels % 32 == 0;

    /// <summary>Words of the packed channels-last copy of a (b, c, t, v) tensor padded by <paramref name="pad"/> frames.</summary>
    public static long PackedWords(int b, int c, int t, int v, int pad) => (long)b * (t + 2 * pad) * v * (c / 2);

    /// <summary>The B-operand description of the packed copy (c channels, t frames, v joints, pad frames each side).</summary>
    public static TensorCoreGemm.ShiftedB Shift(int c, int kt, int t, int v, int pad, bool rowBias)
    {
        int d = c / 32, steps = kt * d;   // K-steps per tap, K-steps
        // Segment of K-step s: (s·⌈2^20/d⌉) >> 20 = ⌊s/d⌋ while s·d < 2^20 (the rounding error of the magic is below d).
        if ((long)steps * d >= 1 << 20) throw new NotSupportedException($"PackedConv: {steps} K-steps of {d} per tap exceed the segment arithmetic");
        return new()
        {
            BatchChunks = checked((t + 2 * pad) * v * (c / 8)),
            RowChunks = c / 8,
            SegMagic = ((1 << 20) + d - 1) / d,
            SegShift = (v - 1) * (c / 8),
            RowBias = rowBias ? 1 : 0,
        };
    }

    /// <summary>
    /// Kernel: dst (B, (T + 2·pad)·V, C/2) bf16 pairs (channels 2i, 2i+1 in word i) = x (B, C, T, V) channels-last, zero
    /// in the pad frames before and after. Grid (⌈(T + 2·pad)·V / 32⌉, ⌈C / 64⌉, B), group 256: a tile of 32 positions
    /// × 64 channels goes through shared memory so that both the reads (32 positions of a channel) and the writes (32
    /// channel pairs of a position) are coalesced. C even.
    /// </summary>
    public static void PackChannelsLast(ArrayView<float> x, ArrayView<uint> dst, int c, int t, int v, int pad)
    {
        var tile = SharedMemory.Allocate<float>(PackChannels * (PackRows + 1));   // [channel][position], pitch 33
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5;
        int rows = (t + 2 * pad) * v, tv = t * v;
        int r0 = Grid.IdxX * PackRows, c0 = Grid.IdxY * PackChannels, z = Grid.IdxZ;
        // Read: warp w takes channels w, w + 8, ...; lane = position.
        int q = r0 + lane - pad * v;                       // flat (t, v) of the unpadded input
        bool inside = q >= 0 && q < tv && r0 + lane < rows;
        long src = ((long)z * c + c0) * tv + q;
        for (int ch = warp; ch < PackChannels; ch += 8)
        {
            bool ok = inside && c0 + ch < c;
            float value = x[ok ? src + (long)ch * tv : 0];   // index 0 where outside: the load never leaves x
            tile[ch * (PackRows + 1) + lane] = ok ? value : 0f;
        }
        Group.Barrier();
        // Write: warp w takes positions w, w + 8, ...; lane = channel pair.
        int words = c >> 1;
        long dz = (long)z * rows * words;
        if (c0 / 2 + lane < words)
        {
            for (int pos = warp; pos < PackRows; pos += 8)
            {
                if (r0 + pos >= rows) break;
                float lo = tile[2 * lane * (PackRows + 1) + pos], hi = tile[(2 * lane + 1) * (PackRows + 1) + pos];
                dst[dz + (long)(r0 + pos) * words + c0 / 2 + lane] = Bf16.Pack(lo, hi);
            }
        }
    }

    /// <summary>
    /// Kernel, thread e over (Cout·kt·Cin/2) words: the forward weight dst (Cout, kt·Cin) bf16 pairs,
    /// dst[co, j·Cin + ci] = w[co, ci, j] (w (Cout, Cin, kt)). Cin even.
    /// </summary>
    public static void PackWeight(Index1D e, ArrayView<float> w, ArrayView<uint> dst, int cin, int kt)
    {
        int half = cin >> 1, perRow = kt * half;
        int co = e / perRow, rem = e - co * perRow, j = rem / half, ci = 2 * (rem - j * half);
        int at = (co * cin + ci) * kt + j;
        dst[e] = Bf16.Pack(w[at], w[at + kt]);
    }

    /// <summary>
    /// Kernel, thread e over (Cin·kt·Cout/2) words: the input-gradient weight dst (Cin, kt·Cout) bf16 pairs,
    /// dst[ci, j'·Cout + co] = w[co, ci, kt − 1 − j'] (w (Cout, Cin, kt)). Cout even.
    /// </summary>
    public static void PackWeightTransposed(Index1D e, ArrayView<float> w, ArrayView<uint> dst, int cin, int cout, int kt)
    {
        int half = cout >> 1, perRow = kt * half;
        int ci = e / perRow, rem = e - ci * perRow, jr = rem / half, co = 2 * (rem - jr * half);
        int j = kt - 1 - jr;
        int at = (co * cin + ci) * kt + j;
        dst[e] = Bf16.Pack(w[at], w[at + cin * kt]);
    }
}
