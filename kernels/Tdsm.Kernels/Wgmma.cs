using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Kernels;

// Hopper's warpgroup matrix multiply (wgmma.mma_async, PTX ISA 8.0, target sm_90a) for TensorCoreGemm.KernelWgmma:
// four consecutive warps (a warpgroup, starting at a warp index divisible by 4) multiply a 64×16 bf16 tile of A by a
// 16×128 tile of B, both read by the tensor cores straight from shared memory through 64-bit matrix descriptors, and
// accumulate into fp32 registers spread over the warpgroup's 128 lanes. It runs asynchronously: Fence before a batch,
// Commit after it, WaitAll before the accumulators or the shared tiles are touched again.
// The 64 accumulators are PTX registers of their own (%tdsm_wgacc0..63; "%%" in ILGPU's asm text), named in the asm
// text rather than passed as operands: ILGPU copies every asm operand in and out through registers of its own, and
// ptxas serializes a wgmma pipeline whose accumulators other instructions define between a wgmma and its wait (warning
// C7515: each wgmma then waits for the one before; seen with ptxas 12.4 when they were EmitRef operands). An EmitRef
// also carries at most 44 operands, so an m64n128 (64 accumulators) could not be one. On CUDA the Acc64 values the
// kernel carries therefore stay unused until Accumulators reads the registers after the last wait.
// ILGPU cannot name the sm_90a target: kernels using wgmma load through the GPU tier's LiftedKernels, which retargets
// them and declares the registers (PtxTarget). On the simulator each MMA is emulated at once on the Acc64 values by
// decoding the descriptors the same way (PTX ISA, "Matrix Descriptor Format", K-major, 64-byte swizzle), so simulator
// tests check the kernel's staging layout, descriptors and accumulator layout against the mma.sync kernels; that this
// reading of the descriptor format is the hardware's only a GPU can check.

/// <summary>
/// A lane's 32 fp32 accumulators of a 64×64 tile. Warp w (0..3) of the warpgroup, lane l, g = l/4, t = l%4:
/// D{4j + 2h + e} = D[16w + g + 8h][8j + 2t + e] (j = 0..7, h and e 0 or 1), the mma.sync m16n8 accumulator layout repeated
/// over 8 column tiles.
/// </summary>
public struct Acc32
{
    public float D0, D1, D2, D3, D4, D5, D6, D7, D8, D9, D10, D11, D12, D13, D14, D15, D16, D17, D18, D19, D20, D21, D22, D23, D24, D25, D26, D27, D28, D29, D30, D31;
}

/// <summary>
/// A lane's 64 accumulators of an m64n128 wgmma: columns 0..63 in <see cref="Left"/>, 64..127 in <see cref="Right"/>
/// (the instruction's registers 0..31 and 32..63).
/// </summary>
public struct Acc64
{
    public Acc32 Left, Right;
}

/// <summary>
/// wgmma.mma_async m64n128k16 (bf16 operands from shared memory, fp32 accumulators) on a warpgroup's 64×128 tile, with
/// its descriptors, fences and waits; exact emulations on the simulator.
/// </summary>
public static class Wgmma
{
    /// <summary>Bytes per staged operand row: 32 bf16 (a K-step of TensorCoreGemm), the row of the 64-byte swizzle.</summary>
    public const int RowBytes = 64;

    /// <summary>Bytes between 8-row groups of core matrices (the descriptor's stride byte offset): 8 rows.</summary>
    public const int GroupBytes = 8 * RowBytes;

    /// <summary>Alignment a staged tile needs in the shared window: the 64-byte swizzle repeats every 8 rows.</summary>
    public const int TileAlignment = GroupBytes;

    /// <summary>The accumulator registers' name: <see cref="AccumulatorRegister"/>0 .. 63, fp32.</summary>
    public const string AccumulatorRegister = "%tdsm_wgacc";

    // Layout type 2 (bits 62-63): 64-byte swizzle. Leading byte offset 1 (unused by swizzled K-major layouts).
    private const long SwizzleBits = 2L << 62;

    /// <summary>
    /// The descriptor of a K-major bf16 tile whose rows of <see cref="RowBytes"/> start at shared window address
    /// <paramref name="sharedAddress"/> (plus 32 for the second 16 k of the row), stored with the 64-byte swizzle: 16-byte
    /// chunk c of row r at r·64 + 16·(c ^ ((r/2) % 4)) from a <see cref="TileAlignment"/>-aligned start, as
    /// TensorCoreGemm's ldmatrix kernels stage it. Offsetting the address by x bytes adds x/16 to the descriptor.
    /// </summary>
    public static long Descriptor(uint sharedAddress) =>
        (long)((sharedAddress & 0x3FFFFu) >> 4) | (1L << 16) | ((long)(GroupBytes >> 4) << 32) | SwizzleBits;

    /// <summary>
    /// Zeroes the 64 accumulator registers (CUDA; nothing on the simulator). Call once, at the kernel's start, before any
    /// MMA. ILGPU does not write its blocks in program order, so the registers are declared at the top of the kernel by
    /// the loader's rewrite (PtxTarget in the GPU tier), not here.
    /// </summary>
    public static void ZeroAccumulators()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("mov.f32 %%tdsm_wgacc0, 0f00000000; mov.f32 %%tdsm_wgacc1, 0f00000000; mov.f32 %%tdsm_wgacc2, 0f00000000; mov.f32 %%tdsm_wgacc3, 0f00000000; mov.f32 %%tdsm_wgacc4, 0f00000000; mov.f32 %%tdsm_wgacc5, 0f00000000; mov.f32 %%tdsm_wgacc6, 0f00000000; mov.f32 %%tdsm_wgacc7, 0f00000000; mov.f32 %%tdsm_wgacc8, 0f00000000; mov.f32 %%tdsm_wgacc9, 0f00000000; mov.f32 %%tdsm_wgacc10, 0f00000000; mov.f32 %%tdsm_wgacc11, 0f00000000; mov.f32 %%tdsm_wgacc12, 0f00000000; mov.f32 %%tdsm_wgacc13, 0f00000000; mov.f32 %%tdsm_wgacc14, 0f00000000; mov.f32 %%tdsm_wgacc15, 0f00000000; mov.f32 %%tdsm_wgacc16, 0f00000000; mov.f32 %%tdsm_wgacc17, 0f00000000; mov.f32 %%tdsm_wgacc18, 0f00000000; mov.f32 %%tdsm_wgacc19, 0f00000000; mov.f32 %%tdsm_wgacc20, 0f00000000; mov.f32 %%tdsm_wgacc21, 0f00000000; mov.f32 %%tdsm_wgacc22, 0f00000000; mov.f32 %%tdsm_wgacc23, 0f00000000; mov.f32 %%tdsm_wgacc24, 0f00000000; mov.f32 %%tdsm_wgacc25, 0f00000000; mov.f32 %%tdsm_wgacc26, 0f00000000; mov.f32 %%tdsm_wgacc27, 0f00000000; mov.f32 %%tdsm_wgacc28, 0f00000000; mov.f32 %%tdsm_wgacc29, 0f00000000; mov.f32 %%tdsm_wgacc30, 0f00000000; mov.f32 %%tdsm_wgacc31, 0f00000000; mov.f32 %%tdsm_wgacc32, 0f00000000; mov.f32 %%tdsm_wgacc33, 0f00000000; mov.f32 %%tdsm_wgacc34, 0f00000000; mov.f32 %%tdsm_wgacc35, 0f00000000; mov.f32 %%tdsm_wgacc36, 0f00000000; mov.f32 %%tdsm_wgacc37, 0f00000000; mov.f32 %%tdsm_wgacc38, 0f00000000; mov.f32 %%tdsm_wgacc39, 0f00000000; mov.f32 %%tdsm_wgacc40, 0f00000000; mov.f32 %%tdsm_wgacc41, 0f00000000; mov.f32 %%tdsm_wgacc42, 0f00000000; mov.f32 %%tdsm_wgacc43, 0f00000000; mov.f32 %%tdsm_wgacc44, 0f00000000; mov.f32 %%tdsm_wgacc45, 0f00000000; mov.f32 %%tdsm_wgacc46, 0f00000000; mov.f32 %%tdsm_wgacc47, 0f00000000; mov.f32 %%tdsm_wgacc48, 0f00000000; mov.f32 %%tdsm_wgacc49, 0f00000000; mov.f32 %%tdsm_wgacc50, 0f00000000; mov.f32 %%tdsm_wgacc51, 0f00000000; mov.f32 %%tdsm_wgacc52, 0f00000000; mov.f32 %%tdsm_wgacc53, 0f00000000; mov.f32 %%tdsm_wgacc54, 0f00000000; mov.f32 %%tdsm_wgacc55, 0f00000000; mov.f32 %%tdsm_wgacc56, 0f00000000; mov.f32 %%tdsm_wgacc57, 0f00000000; mov.f32 %%tdsm_wgacc58, 0f00000000; mov.f32 %%tdsm_wgacc59, 0f00000000; mov.f32 %%tdsm_wgacc60, 0f00000000; mov.f32 %%tdsm_wgacc61, 0f00000000; mov.f32 %%tdsm_wgacc62, 0f00000000; mov.f32 %%tdsm_wgacc63, 0f00000000;");
    }

    /// <summary>Orders this thread's earlier register accesses before the wgmma that follow (<c>wgmma.fence</c>).</summary>
    public static void Fence()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("wgmma.fence.sync.aligned;");
    }

    /// <summary>
    /// Makes this thread's completed generic-proxy writes of shared memory (stores, cp.async) visible to the async
    /// proxy that wgmma reads through (<c>fence.proxy.async.shared::cta</c>); put it before the barrier that publishes them.
    /// </summary>
    public static void FenceSharedWrites()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("fence.proxy.async.shared::cta;");
    }

    /// <summary>Closes the batch of wgmma issued since the last commit (<c>wgmma.commit_group</c>).</summary>
    public static void Commit()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("wgmma.commit_group.sync.aligned;");
    }

    /// <summary>
    /// Waits until at most the last committed batch is still running (<c>wgmma.wait_group 1</c>): the shared tiles of every
    /// earlier batch are free; the accumulators are not (a later wgmma may chain on them, nothing else may touch them).
    /// </summary>
    public static void WaitAllButOne()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("wgmma.wait_group.sync.aligned 1;");
    }

    /// <summary>Waits until every committed batch has completed (<c>wgmma.wait_group 0</c>): accumulators and shared tiles free.</summary>
    public static void WaitAll()
    {
        if (CudaAsm.IsSupported) CudaAsm.Emit("wgmma.wait_group.sync.aligned 0;");
    }

    /// <summary>
    /// <c>wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16</c>: D (64×128) += A (64×16) · Bᵀ, where A's 64 rows and B's
    /// 128 rows (its columns) are K-major tiles described by <paramref name="descA"/> and <paramref name="descB"/>
    /// (<see cref="Descriptor"/>). Call from all 128 lanes of the warpgroup together with the same descriptors; final after
    /// <see cref="Commit"/> and <see cref="WaitAll"/>. On CUDA <paramref name="d"/> is returned untouched (the sums are in
    /// the registers); on the simulator the product is added to it (<see cref="Emulate"/>, 64 columns at a time: B's
    /// rows 64..127 are 8 groups of 8 rows, 4,096 bytes, further).
    /// </summary>
    public static Acc64 MmaM64N128K16(Acc64 d, long descA, long descB, ArrayView<uint> shared, uint sharedBase)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%%tdsm_wgacc0, %%tdsm_wgacc1, %%tdsm_wgacc2, %%tdsm_wgacc3, %%tdsm_wgacc4, %%tdsm_wgacc5, %%tdsm_wgacc6, %%tdsm_wgacc7, %%tdsm_wgacc8, %%tdsm_wgacc9, %%tdsm_wgacc10, %%tdsm_wgacc11, %%tdsm_wgacc12, %%tdsm_wgacc13, %%tdsm_wgacc14, %%tdsm_wgacc15, %%tdsm_wgacc16, %%tdsm_wgacc17, %%tdsm_wgacc18, %%tdsm_wgacc19, %%tdsm_wgacc20, %%tdsm_wgacc21, %%tdsm_wgacc22, %%tdsm_wgacc23, %%tdsm_wgacc24, %%tdsm_wgacc25, %%tdsm_wgacc26, %%tdsm_wgacc27, %%tdsm_wgacc28, %%tdsm_wgacc29, %%tdsm_wgacc30, %%tdsm_wgacc31, %%tdsm_wgacc32, %%tdsm_wgacc33, %%tdsm_wgacc34, %%tdsm_wgacc35, %%tdsm_wgacc36, %%tdsm_wgacc37, %%tdsm_wgacc38, %%tdsm_wgacc39, %%tdsm_wgacc40, %%tdsm_wgacc41, %%tdsm_wgacc42, %%tdsm_wgacc43, %%tdsm_wgacc44, %%tdsm_wgacc45, %%tdsm_wgacc46, %%tdsm_wgacc47, %%tdsm_wgacc48, %%tdsm_wgacc49, %%tdsm_wgacc50, %%tdsm_wgacc51, %%tdsm_wgacc52, %%tdsm_wgacc53, %%tdsm_wgacc54, %%tdsm_wgacc55, %%tdsm_wgacc56, %%tdsm_wgacc57, %%tdsm_wgacc58, %%tdsm_wgacc59, %%tdsm_wgacc60, %%tdsm_wgacc61, %%tdsm_wgacc62, %%tdsm_wgacc63}, %0, %1, 1, 1, 1, 0, 0;", descA, descB);
            return d;
        }
        return new Acc64
        {
            Left = Emulate(d.Left, descA, descB, shared, sharedBase),
            Right = Emulate(d.Right, descA, descB + 64 * RowBytes / 16, shared, sharedBase),
        };
    }

    /// <summary>The accumulators after the last <see cref="WaitAll"/>: the registers on CUDA, <paramref name="d"/> on the simulator.</summary>
    public static Acc64 Accumulators(Acc64 d)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc0;", out float l0);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc1;", out float l1);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc2;", out float l2);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc3;", out float l3);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc4;", out float l4);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc5;", out float l5);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc6;", out float l6);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc7;", out float l7);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc8;", out float l8);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc9;", out float l9);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc10;", out float l10);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc11;", out float l11);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc12;", out float l12);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc13;", out float l13);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc14;", out float l14);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc15;", out float l15);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc16;", out float l16);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc17;", out float l17);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc18;", out float l18);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc19;", out float l19);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc20;", out float l20);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc21;", out float l21);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc22;", out float l22);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc23;", out float l23);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc24;", out float l24);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc25;", out float l25);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc26;", out float l26);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc27;", out float l27);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc28;", out float l28);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc29;", out float l29);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc30;", out float l30);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc31;", out float l31);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc32;", out float r0);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc33;", out float r1);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc34;", out float r2);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc35;", out float r3);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc36;", out float r4);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc37;", out float r5);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc38;", out float r6);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc39;", out float r7);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc40;", out float r8);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc41;", out float r9);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc42;", out float r10);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc43;", out float r11);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc44;", out float r12);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc45;", out float r13);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc46;", out float r14);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc47;", out float r15);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc48;", out float r16);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc49;", out float r17);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc50;", out float r18);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc51;", out float r19);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc52;", out float r20);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc53;", out float r21);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc54;", out float r22);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc55;", out float r23);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc56;", out float r24);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc57;", out float r25);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc58;", out float r26);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc59;", out float r27);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc60;", out float r28);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc61;", out float r29);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc62;", out float r30);
            CudaAsm.Emit("mov.f32 %0, %%tdsm_wgacc63;", out float r31);
            return new Acc64 { Left = new Acc32 { D0 = l0, D1 = l1, D2 = l2, D3 = l3, D4 = l4, D5 = l5, D6 = l6, D7 = l7, D8 = l8, D9 = l9, D10 = l10, D11 = l11, D12 = l12, D13 = l13, D14 = l14, D15 = l15, D16 = l16, D17 = l17, D18 = l18, D19 = l19, D20 = l20, D21 = l21, D22 = l22, D23 = l23, D24 = l24, D25 = l25, D26 = l26, D27 = l27, D28 = l28, D29 = l29, D30 = l30, D31 = l31 }, Right = new Acc32 { D0 = r0, D1 = r1, D2 = r2, D3 = r3, D4 = r4, D5 = r5, D6 = r6, D7 = r7, D8 = r8, D9 = r9, D10 = r10, D11 = r11, D12 = r12, D13 = r13, D14 = r14, D15 = r15, D16 = r16, D17 = r17, D18 = r18, D19 = r19, D20 = r20, D21 = r21, D22 = r22, D23 = r23, D24 = r24, D25 = r25, D26 = r26, D27 = r27, D28 = r28, D29 = r29, D30 = r30, D31 = r31 } };
        }
        return d;
    }

    /// <summary>
    /// The simulator's m64n64k16: <paramref name="d"/> plus this lane's share of A·Bᵀ read from <paramref name="shared"/>
    /// (window address <paramref name="sharedBase"/>) as the descriptors say, each accumulator's 16 exact products summed
    /// in float64 with it and rounded once, as the mma.sync emulation sums a k group.
    /// </summary>
    private static Acc32 Emulate(Acc32 d, long descA, long descB, ArrayView<uint> shared, uint sharedBase)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        int m0 = 16 * (Warp.WarpIdx & 3) + g, m1 = m0 + 8, n0 = 2 * t, n1 = n0 + 1;
        d.D0 = (float)(d.D0 + Dot16(descA, descB, m0, 0 + n0, shared, sharedBase));
        d.D1 = (float)(d.D1 + Dot16(descA, descB, m0, 0 + n1, shared, sharedBase));
        d.D2 = (float)(d.D2 + Dot16(descA, descB, m1, 0 + n0, shared, sharedBase));
        d.D3 = (float)(d.D3 + Dot16(descA, descB, m1, 0 + n1, shared, sharedBase));
        d.D4 = (float)(d.D4 + Dot16(descA, descB, m0, 8 + n0, shared, sharedBase));
        d.D5 = (float)(d.D5 + Dot16(descA, descB, m0, 8 + n1, shared, sharedBase));
        d.D6 = (float)(d.D6 + Dot16(descA, descB, m1, 8 + n0, shared, sharedBase));
        d.D7 = (float)(d.D7 + Dot16(descA, descB, m1, 8 + n1, shared, sharedBase));
        d.D8 = (float)(d.D8 + Dot16(descA, descB, m0, 16 + n0, shared, sharedBase));
        d.D9 = (float)(d.D9 + Dot16(descA, descB, m0, 16 + n1, shared, sharedBase));
        d.D10 = (float)(d.D10 + Dot16(descA, descB, m1, 16 + n0, shared, sharedBase));
        d.D11 = (float)(d.D11 + Dot16(descA, descB, m1, 16 + n1, shared, sharedBase));
        d.D12 = (float)(d.D12 + Dot16(descA, descB, m0, 24 + n0, shared, sharedBase));
        d.D13 = (float)(d.D13 + Dot16(descA, descB, m0, 24 + n1, shared, sharedBase));
        d.D14 = (float)(d.D14 + Dot16(descA, descB, m1, 24 + n0, shared, sharedBase));
        d.D15 = (float)(d.D15 + Dot16(descA, descB, m1, 24 + n1, shared, sharedBase));
        d.D16 = (float)(d.D16 + Dot16(descA, descB, m0, 32 + n0, shared, sharedBase));
        d.D17 = (float)(d.D17 + Dot16(descA, descB, m0, 32 + n1, shared, sharedBase));
        d.D18 = (float)(d.D18 + Dot16(descA, descB, m1, 32 + n0, shared, sharedBase));
        d.D19 = (float)(d.D19 + Dot16(descA, descB, m1, 32 + n1, shared, sharedBase));
        d.D20 = (float)(d.D20 + Dot16(descA, descB, m0, 40 + n0, shared, sharedBase));
        d.D21 = (float)(d.D21 + Dot16(descA, descB, m0, 40 + n1, shared, sharedBase));
        d.D22 = (float)(d.D22 + Dot16(descA, descB, m1, 40 + n0, shared, sharedBase));
        d.D23 = (float)(d.D23 + Dot16(descA, descB, m1, 40 + n1, shared, sharedBase));
        d.D24 = (float)(d.D24 + Dot16(descA, descB, m0, 48 + n0, shared, sharedBase));
        d.D25 = (float)(d.D25 + Dot16(descA, descB, m0, 48 + n1, shared, sharedBase));
        d.D26 = (float)(d.D26 + Dot16(descA, descB, m1, 48 + n0, shared, sharedBase));
        d.D27 = (float)(d.D27 + Dot16(descA, descB, m1, 48 + n1, shared, sharedBase));
        d.D28 = (float)(d.D28 + Dot16(descA, descB, m0, 56 + n0, shared, sharedBase));
        d.D29 = (float)(d.D29 + Dot16(descA, descB, m0, 56 + n1, shared, sharedBase));
        d.D30 = (float)(d.D30 + Dot16(descA, descB, m1, 56 + n0, shared, sharedBase));
        d.D31 = (float)(d.D31 + Dot16(descA, descB, m1, 56 + n1, shared, sharedBase));
        return d;
    }

    // Σ over k < 16 of A[m][k]·B[n][k] from the shared tiles the descriptors describe, exact in float64.
    private static double Dot16(long descA, long descB, int m, int n, ArrayView<uint> shared, uint sharedBase)
    {
        double s = 0;
        for (int k = 0; k < 16; k += 2)
            s += Bf16.Dot(shared[(int)((ElementAddress(descA, m, k) - sharedBase) >> 2)], shared[(int)((ElementAddress(descB, n, k) - sharedBase) >> 2)]);
        return s;
    }

    /// <summary>
    /// The shared window address of element (<paramref name="row"/>, <paramref name="k"/>) of the K-major tile that
    /// <paramref name="desc"/> describes: start + (row/8)·stride + (row%8)·64 + 2k before the swizzle, whose 64-byte form
    /// XORs address bits 7-8 into bits 4-5 (PTX ISA, "Shared Memory Matrix Layout"; CUTLASS's Swizzle&lt;2,4,3&gt;).
    /// </summary>
    public static uint ElementAddress(long desc, int row, int k)
    {
        uint start = (uint)(desc & 0x3FFF) << 4, stride = (uint)((desc >> 32) & 0x3FFF) << 4;
        uint logical = start + (uint)(row >> 3) * stride + (uint)(row & 7) * RowBytes + (uint)k * 2u;
        return logical ^ (((logical >> 7) & 3u) << 4);
    }
}
