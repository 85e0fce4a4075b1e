using ILGPU;
using ILGPU.Runtime;

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
/// (Cin forward, Cout backward) must be a multiple of 32 (each K-step of 32 stays inside one tap).
/// <para>
/// The weight gradient dW[co, ci, j] = Σ_{b,t,v} dy[b, co, t, v]·x[b, ci, t + j − pad, v] sums over positions, so its operands
/// are packed channel-first (<see cref="PackChannelFirst"/>): a row per channel holding every sample's frames one after
/// the other, each frame V rounded up to 8 slots (so that one frame is a whole number of 16-byte chunks). dy's row holds Tp = T + kt − 1 frames per sample, the last kt − 1 zero; x's row
/// the same Tp frames with x's frame t at t + pad (zeros around it). Then tap j is x's row read j frames further, for
/// every k where dy is not zero within the same sample, and <see cref="TensorCoreGemm.KernelLdMatrixTapRows"/> computes
/// dW (Cout, Cin·kt) = dY · X_tapsᵀ with split K, reduced in order into dW. Temporal convolutions of stride 1 only
/// (<see cref="SupportsWeightGrad"/>); any channel counts.
/// </para>
/// Strided convolutions stay on <see cref="TensorCoreConv"/>.
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
    public static bool Supports(int channels, ConvArgs p) => StrideOneSame(p) && channels >= 32 && channels % 32 == 0;

    // Stride 1 with "same" padding: T frames out, as odd kt and pad (kt − 1) / 2 give.
    private static bool StrideOneSame(ConvArgs p) => p.Stride == 1 && p.Tout == p.T && 2 * p.Pad == p.Kt - 1;

    /// <summary>Whether the weight gradient of <paramref name="p"/> runs here: a temporal convolution (kt &gt; 1) of stride 1
    /// with "same" padding. Not the 1x1 convolutions: their gathering kernel reads contiguous rows already, and packing
    /// both operands of the graph conv's (3·C + C channels per position for 2·3·C·C multiply-adds) would move more bytes
    /// per FLOP than the product takes (~16 FLOP per packed byte against ~1.4·C for a kt = 9 convolution).</summary>
    public static bool SupportsWeightGrad(ConvArgs p) => p.Kt > 1 && StrideOneSame(p);

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
    /// Kernel, thread e over C·RowWords/4 16-byte chunks: dst (C, RowWords) bf16 pairs, chunk q of row c holding elements
    /// 8q..8q+7 of channel c's packed row, element k = (b, frame f, slot s) with k = (b·Frames + f)·Joints + s being
    /// src[b, c, f − FrameOffset, s] when that frame exists and s &lt; V, else 0 (also past the last sample: the row's tail).
    /// Joints and RowWords/4 are whole chunks, so a chunk is 8 slots of one frame: the thread finds (b, f) once and stores
    /// its 8 values as one 128-bit word. src is (B, C, T, V).
    /// </summary>
    public static void PackChannelFirst(Index1D e, ArrayView<float> src, ArrayView<uint> dst, ChannelFirstRows l)
    {
        int rowChunks = l.RowWords >> 2, frameChunks = l.Joints >> 3;
        int c = e / rowChunks, q = e - c * rowChunks;
        int perSample = l.Frames * frameChunks;
        int b = q / perSample, r = q - b * perSample, f = r / frameChunks, s0 = (r - f * frameChunks) << 3, t = f - l.FrameOffset;
        bool frame = b < l.B && t >= 0 && t < l.T;
        long at = ((long)(b * l.C + c) * l.T + t) * l.V + s0;
        var chunk = new Chunk16
        {
            X = Bf16.Pack(Slot(src, at, frame, s0, l.V), Slot(src, at + 1, frame, s0 + 1, l.V)),
            Y = Bf16.Pack(Slot(src, at + 2, frame, s0 + 2, l.V), Slot(src, at + 3, frame, s0 + 3, l.V)),
            Z = Bf16.Pack(Slot(src, at + 4, frame, s0 + 4, l.V), Slot(src, at + 5, frame, s0 + 5, l.V)),
            W = Bf16.Pack(Slot(src, at + 6, frame, s0 + 6, l.V), Slot(src, at + 7, frame, s0 + 7, l.V)),
        };
        dst.Cast<Chunk16>().AsAligned(16)[e] = chunk;
    }

    // Slot s of a packed frame: src[at] when the frame exists and s < V, else 0.
    private static float Slot(ArrayView<float> src, long at, bool frame, int s, int v) => frame && s < v ? src[at] : 0f;

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

    /// <summary>The packed operands and launch of the weight gradient of a stride-1 convolution <paramref name="p"/>.</summary>
    public static WeightGradLayout WeightGrad(ConvArgs p)
    {
        if (!SupportsWeightGrad(p)) throw new ArgumentException($"PackedConv: weight gradient of stride {p.Stride}, kt {p.Kt}, pad {p.Pad}, T {p.T} -> {p.Tout}: stride 1 with same padding only");
        int joints = (p.V + 7) & ~7, frames = p.T + p.Kt - 1;   // a frame is whole 16-byte chunks, so every tap starts on one
        long data = (long)p.B * frames * joints, k = (data + TensorCoreGemm.KStep - 1) / TensorCoreGemm.KStep * TensorCoreGemm.KStep;
        long xRow = (k + (long)(p.Kt - 1) * joints + 7) & ~7L;   // tap kt − 1 reads (kt − 1) frames past k
        if (xRow / 8 * Math.Max(p.Cin, p.Cout) >= int.MaxValue || k >= int.MaxValue)
            throw new NotSupportedException($"PackedConv: weight-gradient rows of {xRow} elements x {Math.Max(p.Cin, p.Cout)} channels exceed the kernel's 32-bit chunk indexes");
        var dy = new ChannelFirstRows { B = p.B, C = p.Cout, T = p.Tout, V = p.V, Frames = frames, Joints = joints, FrameOffset = 0, RowWords = (int)(k / 2) };
        var x = new ChannelFirstRows { B = p.B, C = p.Cin, T = p.T, V = p.V, Frames = frames, Joints = joints, FrameOffset = p.Pad, RowWords = (int)(xRow / 2) };
        var taps = new TensorCoreGemm.TapRowsB { Taps = p.Kt, RowChunks = (int)(xRow / 8), TapChunks = joints / 8 };
        long n = (long)p.Cin * p.Kt;
        var plan = TensorCoreConv.PlanSplits(p.Cout, n, k);   // TensorCoreGemm and TensorCoreConv share the 128x128 blocks and K-step
        var args = new GemmArgs { M = p.Cout, N = checked((int)n), K = (int)k, KSplit = plan.Splits > 1 ? plan.KSplit : 0 };
        return new WeightGradLayout(dy, x, taps, args, plan.Splits, plan.GridX, plan.GridY);
    }
}

/// <summary>The packed rows of one operand of a weight gradient (<see cref="PackedConv.PackChannelFirst"/>): source (B, C, T, V),
/// each channel's row Frames frames per sample of Joints slots, source frame t at frame t + FrameOffset, RowWords words.</summary>
public struct ChannelFirstRows
{
    public int B, C, T, V, Frames, Joints, FrameOffset, RowWords;
}

/// <summary>A packed weight gradient: dy's rows (A, Cout x K), x's rows (B's channels, longer by the last tap's reach), how
/// the kernel reads the taps, the GEMM (M = Cout, N = Cin·kt, K, split K) and its grid (x, y, splits).</summary>
public readonly record struct WeightGradLayout(ChannelFirstRows Dy, ChannelFirstRows X, TensorCoreGemm.TapRowsB Taps, GemmArgs Args,
    int Splits, int GridX, int GridY);
