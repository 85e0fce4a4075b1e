#!/usr/bin/env python3
"""Writes ../TensorCoreGemm.cs: the tensor-core GEMMs (bf16 m16n8k16, tf32 m16n8k8), unrolled by hand.

ILGPU 1.5 does not unroll loops and puts a loop-indexed local array in local memory, so the
64 accumulators, 24 fragment registers and 32 staging registers per thread are spelled out as
scalars here. Run: python3 kernels/Tdsm.Kernels/gen/tensorcore_gemm.py
"""
import os

from tensorcore_core import MT, NT, acc, mma_k_group, mma_tiles

TILE_M, TILE_N, KSTEP, THREADS = 128, 128, 32, 256
WARP_M, WARP_N = 64, 32             # each of the 8 warps: 2 (M) x 4 (N) layout
assert (MT, NT) == (WARP_M // 16, WARP_N // 8)  # the shared compute core's mma tiles per warp
assert TILE_M == TILE_N

# Per precision: what one staged 32-bit shared word holds, and the mma that consumes it.
#   unit:   k values per shared word (bf16: a pair, tf32: one)
#   kgroup: k per mma (16 / 8); a k group is 8 shared words either way, so the swizzle
#           (word j of a group at 2(j%4) + j/4) puts the words t and t+4 a lane needs side by side.
#   stride: ulongs per shared row (data + 4 of padding: conflict-free 64-bit fragment loads)
VARIANTS = {
    "bf16": dict(name="Kernel", unit=2, kgroup=16, stride=12, cls="Bf16",
                 mma="mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"),
    "tf32": dict(name="KernelTf32", unit=1, kgroup=8, stride=20, cls="Tf32",
                 mma="mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32"),
}

out = []
def w(line=""):
    out.append(line)

def staging(v):
    """Item i of a thread: (row offset, word offset) from the thread's base, for both source layouts."""
    words = KSTEP // v["unit"]          # shared words per row per K-step: 16 (bf16) or 32 (tf32)
    items = TILE_M * words // THREADS   # words each thread stages per operand: 8 or 16
    lanes_per_row = words               # K-contiguous: consecutive lanes take consecutive words of one row
    kc = [(i * THREADS // lanes_per_row, 0) for i in range(items)]
    # K-major source: 8 lanes read 8 consecutive rows (32 bytes), 4 lane groups take 4 consecutive words;
    # item i adds 64 rows for odd i and 4(i/2) words.
    mn = [(64 * (i % 2), 4 * (i // 2)) for i in range(items)]
    return words, items, kc, mn

def swz(word):
    """Shared position of word `word` (0..words-1) of a row: 8-word groups, word j at 2(j%4) + j/4."""
    return (word & ~7) + 2 * (word & 3) + ((word >> 2) & 1)

def load_block(v, op, k0, items, kc, mn):
    """Global fp32 -> staging registers x{op}{n} for the K-step starting at k0."""
    src, rows, tile0 = ("a", "p.M", "row0") if op == "a" else ("b", "p.N", "col0")
    u = v["unit"]
    w(f"            if ({op}K)")
    w("            {")
    w(f"                // {op.upper()} (rows, K) row-major.")
    w(f"                if ({tile0} + {TILE_M} <= {rows} && {k0} + {KSTEP} <= kEnd)")
    w("                {")
    for i in range(items):
        dr, dw = kc[i]
        regs = "; ".join(f"x{op}{u*i+e} = {src}[o + {e}]" for e in range(u))
        w(f"                    {{ long o = (long)({op}r + {dr}) * p.K + {k0} + {op}k; {regs}; }}")
    w("                }")
    w("                else")
    w("                {")
    for i in range(items):
        dr, dw = kc[i]
        regs = " ".join(f"x{op}{u*i+e} = ok && k + {e} < kEnd ? {src}[o + {e}] : 0f;" for e in range(u))
        w(f"                    {{ int r = {op}r + {dr}, k = {k0} + {op}k; long o = (long)r * p.K + k; bool ok = r < {rows}; {regs} }}")
    w("                }")
    w("            }")
    w("            else")
    w("            {")
    w(f"                // {op.upper()} (K, rows) row-major.")
    w(f"                if ({tile0} + {TILE_M} <= {rows} && {k0} + {KSTEP} <= kEnd)")
    w("                {")
    for i in range(items):
        dr, dw = mn[i]
        regs = "; ".join(f"x{op}{u*i+e} = {src}[o + {e} * (long){rows}]" if e else f"x{op}{u*i} = {src}[o]" for e in range(u))
        w(f"                    {{ long o = (long)({k0} + {op}k + {u * dw}) * {rows} + {op}r + {dr}; {regs}; }}")
    w("                }")
    w("                else")
    w("                {")
    for i in range(items):
        dr, dw = mn[i]
        regs = " ".join(f"x{op}{u*i+e} = ok && k + {e} < kEnd ? {src}[o + {e} * (long){rows}] : 0f;" for e in range(u))
        w(f"                    {{ int r = {op}r + {dr}, k = {k0} + {op}k + {u * dw}; long o = (long)k * {rows} + r; bool ok = r < {rows}; {regs} }}")
    w("                }")
    w("            }")

def store_block(v, op, items, kc, mn):
    """Staging registers -> shared words (rounded), at swizzled positions."""
    s = "sa32" if op == "a" else "sb32"
    base = "sA" if op == "a" else "sB"
    row_words = 2 * v["stride"]
    conv = (lambda i: f"Bf16.Pack(x{op}{2*i}, x{op}{2*i+1})") if v["unit"] == 2 else (lambda i: f"Tf32.Bits(x{op}{i})")
    w(f"            if ({op}K)")
    w("            {")
    for i in range(items):
        dr, _ = kc[i]
        w(f"                {s}[{base} + {dr * row_words}] = {conv(i)};")
    w("            }")
    w("            else")
    w("            {")
    for i in range(items):
        dr, dw = mn[i]
        # the thread's word is kb + dw with kb in 0..3, so its position is swz(kb) + swz(dw) - swz(0)
        w(f"                {s}[{base} + {dr * row_words + swz(dw)}] = {conv(i)};")
    w("            }")

def thread_indices(warp_n=WARP_N, stripes=False):
    """The thread's lane, warp, mma group g / thread-in-group t, its warp's sub-tile (64 rows, warp_n columns; warps
    in a 2 (M) x TILE_N / warp_n (N) grid; with stripes, 16 rows x TILE_N, warp w the w-th stripe) and the block's
    tile origin."""
    w("        int tid = Group.IdxX;")
    w("        int lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;")
    if stripes:
        w("        int wm = warp * 16, wn = 0; // warpgroup warp / 4 computes rows 64(warp / 4).., its warp w % 4 holds 16 of them")
    else:
        w(f"        int wm = (warp & 1) * 64, wn = (warp >> 1) * {warp_n};")
    w("        int row0 = Grid.IdxY * TileM, col0 = Grid.IdxX * TileN;")
    w("        // Split-K (GemmArgs.KSplit > 0): group z multiplies the K range [kBegin, kEnd) into its own (M, N) slice of c.")
    w("        int kBegin = Grid.IdxZ * p.KSplit, kEnd = p.KSplit == 0 || p.K - kBegin < p.KSplit ? p.K : kBegin + p.KSplit;")


def kernel(v):
    words, items, kc, mn = staging(v)
    u, stride, cls = v["unit"], v["stride"], v["cls"]
    groups = KSTEP // v["kgroup"]
    nx = items * u
    lanes_per_row = words
    w(f"    /// <summary>{cls} kernel: launch with grid (ceil(N/{TILE_N}), ceil(M/{TILE_M})) and group {THREADS}.</summary>")
    w(f"    public static void {v['name']}(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p)")
    w("    {")
    w(f"        var sa = SharedMemory.Allocate<ulong>(TileM * {stride});")
    w(f"        var sb = SharedMemory.Allocate<ulong>(TileN * {stride});")
    w("        var sa32 = sa.Cast<uint>();")
    w("        var sb32 = sb.Cast<uint>();")
    thread_indices()
    w("        // An operand is \"K-contiguous\" when stored (rows, K); else (K, rows).")
    w("        bool aK = p.Layout != 2, bK = p.Layout == 0;")
    w(f"        // Staging, K-contiguous: thread = (row tid/{lanes_per_row}, word tid%{lanes_per_row}), item i adds {THREADS // lanes_per_row}i rows;")
    w("        // else thread = (row tid%8 + 8(tid/32), word (tid/8)%4), item i adds 64(i%2) rows and 4(i/2) words.")
    for op in "ab":
        w(f"        int {op}m = {op}K ? tid / {lanes_per_row} : (tid & 7) + 8 * (tid >> 5), {op}w = {op}K ? tid % {lanes_per_row} : (tid >> 3) & 3;")
    w(f"        int ar = row0 + am, ak = {u} * aw, br = col0 + bm, bk = {u} * bw;")
    w("        // Shared uint index of the thread's item 0 (word j of each 8-word group at 2(j%4) + j/4).")
    w(f"        int sA = am * {2 * stride} + (aw & ~7) + ((aw & 3) << 1) + ((aw >> 2) & 1);")
    w(f"        int sB = bm * {2 * stride} + (bw & ~7) + ((bw & 3) << 1) + ((bw >> 2) & 1);")
    w("        // Fragment loads (ulong index): row g of the warp's sub-tile, words t and t+4 of a k group.")
    w(f"        int af = (wm + g) * {stride} + t, bf = (wn + g) * {stride} + t;")
    for mi in range(MT):
        w("        float " + ", ".join(f"{acc(mi, ni, r)} = 0f" for ni in range(NT) for r in range(4)) + ";")
    w("        float " + ", ".join(f"xa{i} = 0f" for i in range(nx)) + ";")
    w("        float " + ", ".join(f"xb{i} = 0f" for i in range(nx)) + ";")
    w("")
    w("        if (kBegin < kEnd)")
    w("        {")
    load_block(v, "a", "kBegin", items, kc, mn)
    load_block(v, "b", "kBegin", items, kc, mn)
    w("        }")
    w("        for (int k0 = kBegin; k0 < kEnd; k0 += KStep)")
    w("        {")
    w("            Group.Barrier(); // every warp is done reading the previous K-step")
    store_block(v, "a", items, kc, mn)
    store_block(v, "b", items, kc, mn)
    w("            Group.Barrier();")
    w("            int kn = k0 + KStep;")
    w("            if (kn < kEnd)")
    w("            {")
    load_block(v, "a", "kn", items, kc, mn)
    load_block(v, "b", "kn", items, kc, mn)
    w("            }")
    for s in range(groups):
        mma_k_group(w, cls, s, stride)
    w("        }")
    w("")
    epilogue()
    w("    }")
    w("")

def kernel_packed():
    """Bf16 with operands already packed in global memory (two bf16 per uint, K-contiguous): no conversion
    while staging and half the bytes of the fp32-operand kernel. Layout ABt only: A (M, K), B (N, K)."""
    v = VARIANTS["bf16"]
    words, items, kc, mn = staging(v)
    stride = v["stride"]
    lanes_per_row = words
    w(f"    /// <summary>")
    w(f"    /// Bf16 kernel on packed operands: <paramref name=\"a\"/> (M, K) and <paramref name=\"b\"/> (N, K) hold bf16 pairs")
    w(f"    /// (<see cref=\"Bf16.PackRows\"/>; element k of a row in the low half of word k/2 when k is even), so a K-step")
    w(f"    /// is staged with plain 32-bit copies: half the global bytes of <see cref=\"Kernel\"/> and no conversion.")
    w(f"    /// C = A·Bᵀ only (<c>p.Layout</c> 0; other products pack transposed copies), K even. Same tiles, mma order and")
    w(f"    /// epilogue as <see cref=\"Kernel\"/>, so on operands that <see cref=\"Kernel\"/> would round the same way the")
    w(f"    /// results are the same. Launch with grid (ceil(N/{TILE_N}), ceil(M/{TILE_M})) and group {THREADS}.")
    w(f"    /// </summary>")
    w(f"    public static void KernelPacked(ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p)")
    w("    {")
    w(f"        var sa = SharedMemory.Allocate<ulong>(TileM * {stride});")
    w(f"        var sb = SharedMemory.Allocate<ulong>(TileN * {stride});")
    w("        var sa32 = sa.Cast<uint>();")
    w("        var sb32 = sb.Cast<uint>();")
    thread_indices()
    w("        int kw = p.K >> 1; // words per row")
    w(f"        // Staging: thread = (row tid/{lanes_per_row}, word tid%{lanes_per_row}), item i adds {THREADS // lanes_per_row}i rows.")
    w(f"        int am = tid / {lanes_per_row}, aw = tid % {lanes_per_row};")
    w(f"        int ar = row0 + am, br = col0 + am;")
    w("        // Shared uint index of the thread's item 0 (word j of each 8-word group at 2(j%4) + j/4).")
    w(f"        int sA = am * {2 * stride} + (aw & ~7) + ((aw & 3) << 1) + ((aw >> 2) & 1);")
    w("        // Fragment loads (ulong index): row g of the warp's sub-tile, words t and t+4 of a k group.")
    w(f"        int af = (wm + g) * {stride} + t, bf = (wn + g) * {stride} + t;")
    for mi in range(MT):
        w("        float " + ", ".join(f"{acc(mi, ni, r)} = 0f" for ni in range(NT) for r in range(4)) + ";")
    w("        uint " + ", ".join(f"xa{i} = 0u" for i in range(items)) + ";")
    w("        uint " + ", ".join(f"xb{i} = 0u" for i in range(items)) + ";")
    def load(k0):
        for op, src, rows, tile0 in (("a", "a", "p.M", "row0"), ("b", "b", "p.N", "col0")):
            w(f"            if ({tile0} + {TILE_M} <= {rows} && {k0} + {KSTEP} <= kEnd)")
            w("            {")
            for i in range(items):
                dr, _ = kc[i]
                w(f"                x{op}{i} = {src}[(long)({op}r + {dr}) * kw + ({k0} >> 1) + aw];")
            w("            }")
            w("            else")
            w("            {")
            for i in range(items):
                dr, _ = kc[i]
                w(f"                {{ int r = {op}r + {dr}, j = ({k0} >> 1) + aw; x{op}{i} = r < {rows} && j < (kEnd >> 1) ? {src}[(long)r * kw + j] : 0u; }}")
            w("            }")
    w("")
    w("        if (kBegin < kEnd)")
    w("        {")
    load("kBegin")
    w("        }")
    w("        for (int k0 = kBegin; k0 < kEnd; k0 += KStep)")
    w("        {")
    w("            Group.Barrier(); // every warp is done reading the previous K-step")
    for op, s32 in (("a", "sa32"), ("b", "sb32")):
        for i in range(items):
            dr, _ = kc[i]
            w(f"            {s32}[sA + {dr * 2 * stride}] = x{op}{i};")
    w("            Group.Barrier();")
    w("            int kn = k0 + KStep;")
    w("            if (kn < kEnd)")
    w("            {")
    load("kn")
    w("            }")
    for s_ in range(KSTEP // v["kgroup"]):
        mma_k_group(w, v["cls"], s_, stride)
    w("        }")
    w("")
    epilogue("StorePackable")
    w("    }")
    w("")

ROW_WORDS = KSTEP // 2  # a staged row of a K-step: 32 bf16 = 16 words = 4 chunks of 16 bytes
OP_WORDS = TILE_M * ROW_WORDS
STAGE_WORDS = 2 * OP_WORDS
assert 2 * STAGE_WORDS * 4 <= 48 * 1024  # KernelLdMatrix's two stages; ILGPU allocates shared memory statically: 48 KB at most


def epilogue(store="Store", mt=MT, nt=NT, packed_fast=True):
    """The C stores of a warp's mt x nt mma tiles; the packed-operand kernels use StorePackable, which also writes
    packed C (GemmArgs.PackedOut)."""
    epilogue_start("// Epilogue: d0,d1 = (row g, columns 2t, 2t+1), d2,d3 = row g+8.", " // split-K: this group's slice of the partial products")
    w("        if (p.PairStores != 0 && p.PackedOut == 0 && p.Gelu == 0 && p.GeluGrad == 0 && p.Accumulate == 0 && (p.N & 1) == 0")
    w("            && row0 + TileM <= p.M && col0 + TileN <= p.N)")
    w("        {")
    w("            // The common case, a block inside C with plain stores: the thread's column biases read once and each pair of")
    w("            // columns stored as one 64-bit word (the general path below tests every flag and bound per element: about")
    w("            // 20 instructions per value, a third of what a K = 768 product issues). Same sums, so the same bits.")
    w("            " + "float " + ", ".join(f"bias{ni}{e} = 0f" for ni in range(nt) for e in range(2)) + ";")
    w("            if (p.HasBias != 0)")
    w("            {")
    for ni in range(nt):
        w(f"                bias{ni}0 = bias[ec + {ni * 8}]; bias{ni}1 = bias[ec + {ni * 8 + 1}];")
    w("            }")
    pair_stores(mt, nt, lambda mi, ni, h: (f"bias{ni}0", f"bias{ni}1"))
    if store == "StorePackable" and packed_fast:
        packed_stores(mt, nt)
        gelu_grad_stores(mt, nt)
    for mi in range(mt):
        for ni in range(nt):
            w(f"        {store}(cs, bias, p, er + {mi * 16}, ec + {ni * 8}, {acc(mi,ni,0)}, {acc(mi,ni,1)});")
            w(f"        {store}(cs, bias, p, er + {mi * 16 + 8}, ec + {ni * 8}, {acc(mi,ni,2)}, {acc(mi,ni,3)});")


def fast_path_rows(unit):
    """The start of a fast epilogue path over 64-bit-or-smaller units of C (rows of p.N / 2 of them): r0, the unit of
    (er, ec), and r8, eight rows further; fast_row(k) then names the unit of row er + 8k, column ec."""
    w("            int halfN = p.N >> 1;")
    w(f"            long r0 = (long)er * halfN + (ec >> 1), r8 = 8L * halfN; // the {unit} of (er, ec); 8 rows further")


def fast_row(k):
    return "r0" if k == 0 else ("r0 + r8" if k == 1 else f"r0 + {k} * r8")


def packed_stores(mt, nt):
    """The packed-C fast path (GemmArgs.PackedOut, a block inside C, with bias: the forward-only MLP's fc1, GELU and all):
    each column tile's bias pair read once and each pair stored as its bf16 word, with or without the GELU, at the general
    path's values (bias, GELU, Bf16.Pack in its order: the same bits) without its per-pair flag and bound tests. Column tile
    by column tile, so that two biases are live at a time next to the accumulators (all of them at once cost registers)."""
    w("        if (p.PairStores != 0 && p.PackedOut != 0 && p.HasBias != 0 && p.GeluGrad == 0 && p.Accumulate == 0")
    w("            && row0 + TileM <= p.M && col0 + TileN <= p.N)")
    w("        {")
    w("            var cp = cs.Cast<uint>();")
    fast_path_rows("word")
    for gelu in (True, False):
        w("            if (p.Gelu != 0)" if gelu else "            else")
        w("            {")
        for ni in range(nt):
            w(f"                {{ float b0 = bias[ec + {ni * 8}], b1 = bias[ec + {ni * 8 + 1}];")
            for mi in range(mt):
                for h in range(2):
                    v0, v1 = f"{acc(mi,ni,2*h)} + b0", f"{acc(mi,ni,2*h+1)} + b1"
                    if gelu: v0, v1 = f"Activations.GeluFast({v0})", f"Activations.GeluFast({v1})"
                    w(f"                  cp[{fast_row(2 * mi + h)} + {ni * 4}] = Bf16.Pack({v0}, {v1});")
            w("                }")
        w("            }")
    w("            return;")
    w("        }")


def gelu_grad_stores(mt, nt):
    """The GELU' fast path (GemmArgs.GeluGrad: the training MLP's dx product, C = (dy·W) ⊙ GELU'(pre) with pre in the bias
    slot, a block inside C and C and pre on 8-byte boundaries: GemmArgs.PairStores): pre read and C written as 64-bit column
    pairs, the general path's product (the same bits) without its per-element tests and scalar loads."""
    w("        if (p.PairStores != 0 && p.GeluGrad != 0 && p.PackedOut == 0 && p.Accumulate == 0 && (p.N & 1) == 0")
    w("            && row0 + TileM <= p.M && col0 + TileN <= p.N)")
    w("        {")
    w("            var c2 = cs.Cast<FloatPair>().AsAligned(8);")
    w("            var pre2 = bias.Cast<FloatPair>().AsAligned(8);")
    fast_path_rows("pair")
    for mi in range(mt):
        for h in range(2):
            w(f"            {{ long r = {fast_row(2 * mi + h)};")
            for ni in range(nt):
                w(f"              {{ var q = pre2[r + {ni * 4}]; c2[r + {ni * 4}] = new FloatPair({acc(mi,ni,2*h)} * Activations.GeluDerivativeFast(q.X), "
                  f"{acc(mi,ni,2*h+1)} * Activations.GeluDerivativeFast(q.Y)); }}")
            w("            }")
    w("            return;")
    w("        }")


def epilogue_start(comment, cz_comment=""):
    """The lane's first row and column of its tiles (er, ec) and its grid z's slice cs of c (split-K partials, or a sample)."""
    w(f"        {comment}")
    w("        int er = row0 + wm + g, ec = col0 + wn + 2 * t;")
    w(f"        long cz = (long)Grid.IdxZ * p.M * p.N;{cz_comment}")
    w("        var cs = c.SubView(cz, c.Length - cz);")


def pair_stores(mt, nt, biases):
    """The body of an epilogue's fast path, after its condition and the biases: a thread's mt x nt tiles stored as 64-bit
    column pairs into cs (rows of p.N floats), biases(mi, ni, h) naming what each pair adds; closes the block."""
    w("            var c2 = cs.Cast<FloatPair>().AsAligned(8);")
    w("            int halfN = p.N >> 1, ec2 = ec >> 1;")
    for mi in range(mt):
        for h in range(2):
            w(f"            {{ long r = (long)(er + {mi * 16 + 8 * h}) * halfN + ec2;")
            for ni in range(nt):
                b0, b1 = biases(mi, ni, h)
                w(f"              c2[r + {ni * 4}] = new FloatPair({acc(mi,ni,2*h)} + {b0}, {acc(mi,ni,2*h+1)} + {b1});")
            w("            }")
    w("            return;")
    w("        }")


def fragment_addressing():
    w("        // ldmatrix row addresses: A rows wm + 16mi + (lane%8) + 8((lane/8)%2), chunk (lane/16); B rows wn + 16np + (lane%8)")
    w("        // + 8(lane/16), chunk (lane/8)%2. The swizzle term (row/2)%4 does not change with the 16-row tile.")
    w("        int ar = wm + (lane & 7) + ((lane >> 3) & 1) * 8, ac = lane >> 4, aSw = (ar >> 1) & 3;")
    w("        int br = wn + (lane & 7) + (lane >> 4) * 8, bc = (lane >> 3) & 1, bSw = (br >> 1) & 3;")


LDMATRIX_KERNELS = {
    # name: (threads, mma tiles per warp along N); warps of 64 rows in a 2 (M) x N grid
    "KernelLdMatrix": (THREADS, NT),
    "KernelLdMatrixWide": (128, 8),
    # KernelLdMatrix whose B rows shift by a fixed step at each K segment: the stride-1 convolutions (ShiftedB)
    "KernelLdMatrixShifted": (THREADS, NT),
    # KernelLdMatrix whose B row n starts at (n / taps)·RowChunks + (n % taps)·TapChunks: the convolutions' weight gradients
    "KernelLdMatrixTapRows": (THREADS, NT),
    # KernelLdMatrix staged by cp.async into ASYNC_STAGES shared stages (no staging registers)
    "KernelLdMatrixAsync": (THREADS, NT),
    # KernelLdMatrixWide staged by cp.async likewise
    "KernelLdMatrixWideAsync": (128, 8),
    # the two convolution layouts staged by cp.async
    "KernelLdMatrixShiftedAsync": (THREADS, NT),
    "KernelLdMatrixTapRowsAsync": (THREADS, NT),
    # KernelLdMatrixAsync's staging multiplied by Hopper's wgmma (2 warpgroups of 64x128) instead of ldmatrix + mma.sync
    "KernelWgmma": (THREADS, NT),
    # the two convolution layouts so (their cp.async staging, KernelWgmma's MMA)
    "KernelWgmmaShifted": (THREADS, NT),
    "KernelWgmmaTapRows": (THREADS, NT),
    # KernelWgmma with DEEP_STAGES stages in dynamic shared memory, one wgmma batch per warpgroup left in flight
    "KernelWgmmaDeep": (THREADS, NT),
}
# KernelWgmmaDeep: copies still ASYNC_STAGES - 1 = 2 K-steps ahead, and a fourth stage so that the batch of K-step kt may run
# on while K-step kt + 1 is issued: the stage refilled at kt is (kt + 2) % 4, last read by the batch of kt - 2, which every
# warpgroup's wait at the end of kt - 1 (wgmma.wait_group 1) completed. 64 KB: dynamic shared memory above ILGPU's 48 KB.
DEEP_STAGES = 4
# wgmma: each warpgroup's 64 rows x the block's 128 columns as one m64n128k16 per k group (Wgmma.MmaM64N128K16).
assert TILE_N == 128 and TILE_M == 128
ASYNC_STAGES = 3                         # 3 x 16 KB: the 48 KB of static shared memory a block may have
# AsyncCopy.WaitGroups waits with cp.async.wait_group 1, i.e. ASYNC_STAGES - 2 groups left in flight: change both together.
assert ASYNC_STAGES == 3


def kernel_ldmatrix(name):
    """Bf16 on packed operands (as KernelPacked) staged through registers with 128-bit loads into two swizzled
    shared stages, fragments by ldmatrix.x4; the K loop unrolled by the two stages, so that every shared address is a
    loop-invariant register plus a constant. `name` picks the warp layout: 8 warps of 64x32 or 4 of 64x64."""
    threads, nt = LDMATRIX_KERNELS[name]
    warp_n = 8 * nt
    wg = name.startswith("KernelWgmma")
    deep = name == "KernelWgmmaDeep"
    ahead = ASYNC_STAGES - 1             # K-steps the cp.async copies run ahead
    per = threads // 4                   # rows between a thread's staged chunks: 64 or 32
    chunks = TILE_M // per               # chunks per thread and operand: 2 or 4
    w("    /// <summary>")
    if name == "KernelLdMatrix":
        w("    /// The bf16 GEMM of <see cref=\"KernelPacked\"/> (packed operands, C = A·Bᵀ; same tiles, warps, mma order and epilogue,")
        w("    /// so the same bits) with fewer instructions: each thread stages two 16-byte chunks (8 bf16) per operand and")
        w("    /// K-step with one 128-bit global load and one 128-bit shared store each (KernelPacked: eight 32-bit of each), and")
        w("    /// the mma fragments come out of shared memory with <c>ldmatrix.x4</c> (<see cref=\"AsyncCopy.LoadMatrixX4At\"/>;")
        w("    /// A: one per 16×16 tile, B: one per two 8-column tiles; KernelPacked: 12 64-bit loads per k group, here 6). A")
        w("    /// staged row is 4 chunks stored at chunk c ^ ((row/2) % 4), so the 8 rows of every ldmatrix matrix fall in 8")
        w("    /// different 16-byte bank groups. Two shared stages (32 KB): one barrier per K-step, the next K-step's loads in")
        w("    /// flight while this one is multiplied. The K loop is unrolled by the two stages and the addresses it uses are")
        w("    /// computed once (shared ones as a register plus a constant, global ones as 32-bit chunk indexes plus 4 per")
        w("    /// K-step): ILGPU derives indexes afresh at each use, and that arithmetic was most of the loop's issue slots.")
    elif name == "KernelLdMatrixShifted":
        w("    /// <see cref=\"KernelLdMatrix\"/> (same tiles, staging, ldmatrix and mma order) for a convolution of stride 1 as one")
        w("    /// GEMM: C_z (M, N) = A (M, K) · B_zᵀ, where B_z's rows move down <see cref=\"ShiftedB.SegShift\"/> chunks at every")
        w("    /// K segment of d K-steps (<see cref=\"ShiftedB.SegMagic\"/>). A is the packed weight (M, K), K = taps · channels with")
        w("    /// k = tap · channels + channel; B_z is sample z's packed channels-last input, padded in time (rows (t, v), a row of")
        w("    /// <see cref=\"ShiftedB.RowChunks\"/> chunks of 8 channels), so tap j reads rows n + j·V, the segment shift being")
        w("    /// (V − 1)·RowChunks chunks past the 4 per K-step. Grid z is the sample: B_z starts at z·BatchChunks, C_z at z·M·N;")
        w("    /// no split K. The epilogue adds bias[row] when <see cref=\"ShiftedB.RowBias\"/> is 1 (a conv's bias per output")
        w("    /// channel) and writes fp32.")
    elif name == "KernelLdMatrixTapRows":
        w("    /// <see cref=\"KernelLdMatrix\"/> (same tiles, staging, ldmatrix, mma order, split K and epilogue) for a convolution's")
        w("    /// weight gradient: C (M, N) = A (M, K) · Bᵀ where B's row n = (channel n / <see cref=\"TapRowsB.Taps\"/>, tap n % Taps) is")
        w("    /// the packed row of that channel read <see cref=\"TapRowsB.TapChunks\"/> chunks further per tap (rows of")
        w("    /// <see cref=\"TapRowsB.RowChunks\"/> chunks). So the taps of a temporal convolution, each the input shifted by a whole")
        w("    /// number of frames, are read from one packed copy of the input (<see cref=\"StGcn.PackedConv.PackChannelFirst\"/>)")
        w("    /// instead of one copy per tap. Only the B row addresses differ from KernelLdMatrix, and they are computed once.")
    elif name in ("KernelLdMatrixShiftedAsync", "KernelLdMatrixTapRowsAsync"):
        base = name[:-len("Async")]
        w(f"    /// <see cref=\"{base}\"/> (same tiles, B layout, ldmatrix, mma order and epilogue, so the same bits) staged by")
        w(f"    /// <c>cp.async</c> through {ASYNC_STAGES} shared stages as <see cref=\"KernelLdMatrixAsync\"/> is. Operands' device addresses as")
        w("    /// <paramref name=\"aAddress\"/> and <paramref name=\"bAddress\"/>.")
    elif name == "KernelLdMatrixWideAsync":
        w("    /// <see cref=\"KernelLdMatrixWide\"/> (4 warps of 64×64 on KernelLdMatrix's tiles, so the same bits) staged by")
        w(f"    /// <c>cp.async</c> through {ASYNC_STAGES} shared stages as <see cref=\"KernelLdMatrixAsync\"/> is: four 16-byte chunks per thread,")
        w("    /// operand and K-step, copied two K-steps ahead, no staging registers (KernelLdMatrixWide's 32 of them were what")
        w("    /// brought it to 252 of its 256). Operands' device addresses as <paramref name=\"aAddress\"/> and <paramref name=\"bAddress\"/>.")
    elif name in ("KernelWgmmaShifted", "KernelWgmmaTapRows"):
        base = name.replace("Wgmma", "LdMatrix") + "Async"
        w(f"    /// <see cref=\"{base}\"/> (the same tiles, B layout, cp.async staging and epilogue) multiplied by Hopper's warpgroup")
        w("    /// MMA as <see cref=\"KernelWgmma\"/> is (one m64n128k16 per warpgroup and k group, operands read from the stage through")
        w(f"    /// descriptors): the simulator's emulation gives {base}'s bits. Needs an sm_90 GPU and the GPU tier's LiftedKernels;")
        w("    /// the shared tile must start 512-byte aligned (else C is NaN). Operands' device addresses as")
        w("    /// <paramref name=\"aAddress\"/> and <paramref name=\"bAddress\"/>.")
    elif deep:
        w(f"    /// <see cref=\"KernelWgmma\"/> (the same tiles, warpgroups, copies {ahead} K-steps ahead and epilogue; the simulator's")
        w(f"    /// emulation gives its bits) with {DEEP_STAGES} shared stages instead of {ASYNC_STAGES}, so that each warpgroup's batch of a K-step")
        w("    /// runs on while the next K-step's wait, barrier and copies are issued (wgmma.wait_group 1): the stage refilled at")
        w(f"    /// K-step kt is (kt + {ahead}) % {DEEP_STAGES}, last read by the batch of kt - 2, which the wait at the end of kt - 1 completed.")
        w(f"    /// The {DEEP_STAGES * STAGE_WORDS * 4 // 1024} KB are dynamic shared memory (<see cref=\"DeepShared\"/>): above the 48 KB a block has without")
        w("    /// opting in, which the GPU tier does for this kernel. Needs an sm_90 GPU and LiftedKernels, as KernelWgmma.")
    elif wg:
        w("    /// The GEMM of <see cref=\"KernelLdMatrixAsync\"/> (packed operands, C = A·Bᵀ; the same 128×128 block tile, cp.async staging")
        w(f"    /// through {ASYNC_STAGES} shared stages and 64-byte-swizzled rows, split K and epilogue) multiplied by Hopper's warpgroup MMA")
        w("    /// (<see cref=\"Wgmma\"/>, sm_90a) instead of ldmatrix + mma.sync: warpgroup h (warps 4h..4h+3) computes rows 64h..64h+63")
        w("    /// of the block as one m64n128k16 per k group, the tensor cores reading A and B from the stage through descriptors")
        w("    /// (the staged layout is the 64-byte swizzle's, so the staging is KernelLdMatrixAsync's unchanged). No fragment")
        w("    /// registers and no ldmatrix: per K-step a warpgroup issues 2 wgmma where a warp issued 8 ldmatrix and 32 mma. Each K-step's batch")
        w("    /// is waited for before the next barrier (wgmma.wait_group 0), so the stage it read can be refilled two K-steps")
        w("    /// ahead as in KernelLdMatrixAsync. Same k-group order, so the simulator's emulation gives KernelLdMatrixAsync's bits;")
        w("    /// the hardware's accumulation order inside a wgmma is its own. Needs an sm_90 GPU and the GPU tier's LiftedKernels")
        w("    /// (target sm_90a); the shared tile must start 512-byte aligned (else C is NaN). Operands' device addresses as")
        w("    /// <paramref name=\"aAddress\"/> and <paramref name=\"bAddress\"/>.")
    elif name == "KernelLdMatrixAsync":
        w("    /// <see cref=\"KernelLdMatrix\"/> (packed operands, C = A·Bᵀ; same tiles, warps, shared layout, swizzle, ldmatrix, mma")
        w(f"    /// order and epilogue, so the same bits) staged with <c>cp.async</c> instead of through registers: {ASYNC_STAGES} shared stages")
        w(f"    /// ({ASYNC_STAGES * STAGE_WORDS * 4 // 1024} KB), each K-step's 16-byte chunks copied global→shared two K-steps ahead of their use")
        w("    /// (<see cref=\"AsyncCopy.Copy16\"/>; chunks outside A, B or the K range copy zeros), one wait and one barrier per K-step,")
        w("    /// and no staging registers, so a thread waits on no load of its own before the mma. Its operands' device addresses")
        w("    /// come as <paramref name=\"aAddress\"/> and <paramref name=\"bAddress\"/> (ILGPU has no address-of in a kernel). With")
        w("    /// cp.async in a kernel ptxas 11.8 keeps ILGPU's inline-asm operand slots in local memory, as the driver did at the first")
        w("    /// visit (0.08x): the GPU tier loads it through <c>LiftedKernels</c>, whose PTX has no such slots.")
    else:
        w("    /// <see cref=\"KernelLdMatrix\"/> (packed operands, C = A·Bᵀ; the same 128×128 block tile, shared layout, swizzle,")
        w("    /// two stages and K loop unrolled by stage, so the same bits) computed by 4 warps of 64×64 instead of 8 of 64×32:")
        w("    /// each warp's A fragments feed 8 column tiles instead of 4, so a K-step issues 64 mma per warp against 16 ldmatrix,")
        w("    /// 8 128-bit loads and 8 128-bit stores (KernelLdMatrix: 32 against 12, 4 and 4) and about a quarter fewer")
        w("    /// instructions per mma. 128 accumulators per lane (about 250 registers): two blocks of 128 threads per SM.")
    w(f"    /// Needs K a multiple of 8 and 16-byte aligned operands. Launch with grid (ceil(N/128), ceil(M/128)) and group {threads}.")
    w("    /// </summary>")
    shifted = "Shifted" in name
    taprows = "TapRows" in name
    asyn = name.endswith("Async") or wg
    stages = DEEP_STAGES if deep else ASYNC_STAGES if asyn else 2
    extra = (", ShiftedB sh" if shifted else ", TapRowsB tr" if taprows else "") + (", long aAddress, long bAddress" if asyn else "")
    w(f"    public static void {name}(ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p{extra})")
    w("    {")
    if deep:
        w(f"        var s = SharedMemory.GetDynamic<Chunk16>(); // {stages * STAGE_WORDS // 4} chunks (DeepShared); stage i: A rows at word {STAGE_WORDS}i, B rows at {STAGE_WORDS}i + {OP_WORDS}")
    else:
        w(f"        var s = SharedMemory.Allocate<Chunk16>({stages * STAGE_WORDS // 4}); // stage i: A rows at word {STAGE_WORDS}i, B rows at {STAGE_WORDS}i + {OP_WORDS}")
    w("        var s32 = s.Cast<uint>();")
    w("        var a16 = a.Cast<Chunk16>().AsAligned(16);")
    w("        var b16 = b.Cast<Chunk16>().AsAligned(16);")
    thread_indices(warp_n, stripes=wg)
    w("        int steps = (kEnd - kBegin + KStep - 1) / KStep;")
    w("        uint sb = 0;")
    w("        if (CudaAsm.IsSupported)")
    w("        {")
    if deep:
        w("            // The shared window address of s (ILGPU names a kernel's dynamic shared memory __dyn_shared_alloca).")
        w("            CudaAsm.Emit(\"{ .reg .u64 t; mov.u64 t, __dyn_shared_alloca; cvt.u32.u64 %0, t; }\", out uint window);")
    else:
        w("            // The shared window address of s (ILGPU names a kernel's first shared allocation __shared_alloca0).")
        w("            CudaAsm.Emit(\"{ .reg .u64 t; mov.u64 t, __shared_alloca0; cvt.u32.u64 %0, t; }\", out uint window);")
    w("            sb = window; // a plain copy: the asm's output slot is a local-memory variable, sb stays in a register")
    if wg:
        w("            if ((sb & (Wgmma.TileAlignment - 1)) != 0)")
        w("            {")
        w("                // The descriptors' swizzle works on address bits 4-8: the stages must start 512-byte aligned, or C would be")
        w("                // silently wrong. Fail loudly (NaN).")
    else:
        w("            if ((sb & 15u) != 0)")
        w("            {")
        w("                // ldmatrix needs 16-byte aligned shared rows: fail loudly (NaN) rather than fault.")
    w(f"                for (int i = tid; i < TileM * TileN; i += {'Threads' if threads == THREADS else threads}) {{ int r = row0 + i / TileN, q = col0 + i % TileN; if (r < p.M && q < p.N) c[(long)r * p.N + q] = float.NaN; }}")
    w("                return;")
    w("            }")
    w("        }")
    downs = ", ".join(str(per * i) for i in range(1, chunks))
    w(f"        // Staging: thread = (row tid/4, chunk tid%4) and {downs} rows down (same swizzle: (row/2) % 4 repeats), one chunk each.")
    w("        int cr = tid >> 2, cc = tid & 3;")
    w("        int cw = cr * 16 + ((cc ^ ((cr >> 1) & 3)) << 2);")
    if wg:
        w("        // The warpgroup's accumulators: its 64 rows x 128 columns (Acc64's layout; on CUDA they are Wgmma's registers and h")
        w("        // stays zero until read after the loop).")
        w("        Wgmma.ZeroAccumulators();")
        w("        var h = new Acc64();")
    else:
        fragment_addressing()
        for mi in range(MT):
            w("        float " + ", ".join(f"{acc(mi, ni, r)} = 0f" for ni in range(nt) for r in range(4)) + ";")
    if not asyn:
        w("        Chunk16 " + ", ".join(f"x{op}{i} = default" for op in "ab" for i in range(chunks)) + ";")
    w("        // Loop invariants. The thread's staging slot (chunk index in a stage's A tile; B, its other row blocks and the")
    w(f"        // other stage are constants away); its global chunk indexes at kBegin (rows r + {per}i of A and B: chunk")
    w("        // r·K/8 + k/8, K a multiple of 8 and kBegin of 32), 4 chunks further per K-step (32-bit: rows·K/8 < 2^31,")
    if wg:
        w("        // which the host checks); the K-steps whose loads need no bounds checks; and the descriptors of stage 0's tiles.")
    else:
        w("        // which the host checks); the K-steps whose loads need no bounds checks; and the ldmatrix row offsets (bytes")
        w("        // from the shared window) of k group 0 in stage 0's A and B tiles.")
    w("        long cu = cw >> 2;")
    w("        int rowChunks = p.K >> 3, k8 = kBegin >> 3;")
    # Two chunks per operand (8 warps): an index and an in-bounds flag per chunk. Four (4 warps): one index per operand
    # plus i rows of chunks, the bounds tested where loaded. ptxas 11.8 (sm_90): the second form spills 44 bytes in
    # the 8-warp kernel at its 128 registers; the first would cost the 4-warp kernel 12 of the 256 it nearly fills.
    per_chunk = chunks == 2
    if shifted:
        w(f"        int ga0 = (row0 + cr) * rowChunks + k8 + cc, ga1 = ga0 + {per} * rowChunks;")
        w("        // B: sample z's rows of sh.RowChunks chunks; k8 is 0 (no split K).")
        w(f"        int gb0 = Grid.IdxZ * sh.BatchChunks + (col0 + cr) * sh.RowChunks + cc, gb1 = gb0 + {per} * sh.RowChunks;")
    elif taprows:
        w(f"        int ga0 = (row0 + cr) * rowChunks + k8 + cc, ga1 = ga0 + {per} * rowChunks;")
        w("        // B: row n is channel n / Taps read (n % Taps)·TapChunks chunks further (rows of tr.RowChunks chunks).")
        w(f"        int gb0 = TapRow(tr, col0 + cr) + k8 + cc, gb1 = TapRow(tr, col0 + cr + {per}) + k8 + cc;")
    elif per_chunk:
        w(f"        int ga0 = (row0 + cr) * rowChunks + k8 + cc, ga1 = ga0 + {per} * rowChunks;")
        w(f"        int gb0 = (col0 + cr) * rowChunks + k8 + cc, gb1 = gb0 + {per} * rowChunks;")
    else:
        w("        int ga0 = (row0 + cr) * rowChunks + k8 + cc, gb0 = (col0 + cr) * rowChunks + k8 + cc;")
        w(f"        int gRows = {per} * rowChunks;")
    w(f"        int fullSteps = row0 + {TILE_M} <= p.M && col0 + {TILE_N} <= p.N ? (kEnd - kBegin) / KStep : 0;")
    if per_chunk:
        w("        bool " + ", ".join(f"{op}In{i} = {tile0} + cr{f' + {per * i}' if i else ''} < {rows}" for op, tile0, rows in (("a", "row0", "p.M"), ("b", "col0", "p.N")) for i in range(chunks)) + ";")
    if wg:
        w("        // Descriptors of stage 0, k group 0: the warpgroup's 64 A rows and B's 128 rows. Another stage or k group (32 bytes")
        w("        // along the row) is a constant added (bytes / 16).")
        w(f"        long dA = Wgmma.Descriptor(sb + (uint)(warp >> 2) * {64 * 4 * ROW_WORDS}u), dB = Wgmma.Descriptor(sb + {4 * OP_WORDS}u);")
    else:
        w("        // k group 1 reads chunk (2 + c) ^ sw = (c ^ sw) ^ 2 (c is 0 or 1): the same offset with bit 5 flipped.")
        w("        uint ao = 4u * (uint)(ar * 16 + ((ac ^ aSw) << 2)), bo = 4u * (uint)(br * 16 + ((bc ^ bSw) << 2));")
    if asyn:
        w("        uint dsa = sb + 16u * (uint)cu; // the thread's copy slot in stage 0's A tile, as a shared window address")
    def chunk_index(op, i):
        # The index of the thread's chunk i of operand op in the K-step at go (chunks of 16 bytes).
        if shifted and op == "b": return f"gb{i} + gob"
        if per_chunk: return f"g{op}{i} + go"
        return f"g{op}0 + go" if i == 0 else f"g{op}0 + {i} * gRows + go"
    def chunk(op, i):
        return f"{op}16[{chunk_index(op, i)}]"
    def in_bounds(op, i):
        tile0, rows = ("row0", "p.M") if op == "a" else ("col0", "p.N")
        return f"{op}In{i}" if per_chunk else f"{tile0} + cr + {per * i} < {rows}"
    def load(step, ind):
        w(f"{ind}int go = 4 * {step};")
        if shifted:
            w(f"{ind}int gob = go + (({step} * sh.SegMagic) >> 20) * sh.SegShift; // tap j = K-step / steps per tap, j·SegShift chunks further")
        w(f"{ind}if ({step} < fullSteps)")
        w(f"{ind}{{")
        for op in "ab":
            w(f"{ind}    " + " ".join(f"x{op}{i} = {chunk(op, i)};" for i in range(chunks)))
        w(f"{ind}}}")
        w(f"{ind}else")
        w(f"{ind}{{")
        w(f"{ind}    bool kOk = kBegin + {step} * KStep + 8 * cc < kEnd;")
        for op in "ab":
            for i in range(chunks):
                w(f"{ind}    x{op}{i} = kOk && {in_bounds(op, i)} ? {chunk(op, i)} : default;")
        w(f"{ind}}}")
    def issue(step, stage, ind):
        # cp.async of K-step `step` into shared stage `stage`: the thread's chunks of A and B (zeros outside). Inside
        # A, B and the K range (every K-step of a full tile but a short last one) the copies need no tests.
        w(f"{ind}int go = 4 * {step};")
        if shifted:
            w(f"{ind}int gob = go + (({step} * sh.SegMagic) >> 20) * sh.SegShift; // tap j = K-step / steps per tap, j·SegShift chunks further")
        copies = [(op, i, 4 * (stage * STAGE_WORDS + off + per * ROW_WORDS * i), addr)
                  for op, off, addr in (("a", 0, "aAddress"), ("b", OP_WORDS, "bAddress")) for i in range(chunks)]
        w(f"{ind}if ({step} < fullSteps)")
        w(f"{ind}{{")
        for op, i, o, addr in copies:
            w(f"{ind}    AsyncCopy.Copy16(s, dsa + {o}u, sb, {op}16, (uint)({chunk_index(op, i)}), {addr}, true);")
        w(f"{ind}}}")
        w(f"{ind}else")
        w(f"{ind}{{")
        w(f"{ind}    bool kOk = kBegin + {step} * KStep + 8 * cc < kEnd;")
        for op, i, o, addr in copies:
            w(f"{ind}    AsyncCopy.Copy16(s, dsa + {o}u, sb, {op}16, (uint)({chunk_index(op, i)}), {addr}, kOk && {in_bounds(op, i)});")
        w(f"{ind}}}")
        w(f"{ind}AsyncCopy.Commit();")
    def wgmma_k_groups(stage):
        # The K-step from stage `stage` as one wgmma batch: one m64n128k16 per k group.
        w("            Wgmma.Fence();")
        for gi in range(KSTEP // 16):
            d = (4 * stage * STAGE_WORDS + 32 * gi) // 16
            w(f"            h = Wgmma.MmaM64N128K16(h, dA + {d}, dB + {d}, s32, sb); // k group {gi}")
        w("            Wgmma.Commit();")
        if deep:
            w("            Wgmma.WaitAllButOne(); // the batch before this one is done: its stage is free for the copies after the next barrier")
        else:
            w("            Wgmma.WaitAll(); // the stage is free for the copies issued after the next barrier")
    def k_groups(stage):
        # The two k groups of a K-step from stage `stage`: A and B fragments with ldmatrix.x4 at the thread's offsets
        # plus a constant, then the mma of the warp's tiles.
        if wg:
            wgmma_k_groups(stage)
            return
        for gi in range(KSTEP // 16):
            w(f"            // k group {gi}: chunks {2 * gi} and {2 * gi + 1}")
            w("            {")
            for mi in range(MT):
                w(f"                var fa{mi} = AsyncCopy.LoadMatrixX4At(s32, sb + {'ao' if gi == 0 else '(ao ^ 32u)'} + {4 * (stage * STAGE_WORDS + 16 * mi * ROW_WORDS)}u, sb);")
                w(f"                uint a{mi}0 = fa{mi}.R0, a{mi}1 = fa{mi}.R1, a{mi}2 = fa{mi}.R2, a{mi}3 = fa{mi}.R3;")
            for np_ in range(nt // 2):
                w(f"                var fb{np_} = AsyncCopy.LoadMatrixX4At(s32, sb + {'bo' if gi == 0 else '(bo ^ 32u)'} + {4 * (stage * STAGE_WORDS + OP_WORDS + 16 * np_ * ROW_WORDS)}u, sb);")
                w(f"                uint b{2*np_}0 = fb{np_}.R0, b{2*np_}1 = fb{np_}.R1, b{2*np_+1}0 = fb{np_}.R2, b{2*np_+1}1 = fb{np_}.R3;")
            mma_tiles(w, "Bf16", MT, nt)
            w("            }")
    def async_stage_body(stage, ind):
        w(f"{ind}AsyncCopy.WaitGroups(); // this thread's copies of K-step kt + {stage} have landed (only the newer group may be in flight)")
        if wg:
            w(f"{ind}Wgmma.FenceSharedWrites(); // ... visible to the tensor cores' (async proxy) reads")
        w(f"{ind}Group.Barrier();        // ... and everyone's; everyone is done with the K-step before it, whose stage is refilled next")
        nxt = f"kt + {stage + ahead}"
        w(f"{ind}if ({nxt} < steps)")
        w(f"{ind}{{")
        issue(f"({nxt})", (stage + ahead) % stages, ind + "    ")
        w(f"{ind}}}")
        w(f"{ind}else AsyncCopy.Commit(); // an empty group keeps the count the wait relies on")
        k_groups(stage)
    def stage_body(stage, ind):
        for op, off in (("a", 0), ("b", OP_WORDS)):
            for i in range(chunks):
                o = (stage * STAGE_WORDS + off + per * ROW_WORDS * i) // 4
                w(f"{ind}s[cu + {o}] = x{op}{i};")
        w(f"{ind}Group.Barrier();")
        nxt = "kt + 1" if stage == 0 else "kt + 2"
        w(f"{ind}if ({nxt} < steps)")
        w(f"{ind}{{")
        load(f"({nxt})", ind + "    ")
        w(f"{ind}}}")
        k_groups(stage)
    w("")
    if asyn:
        w(f"        // Prologue: K-steps 0..{ahead - 1} in flight, one commit group each (empty ones keep the count uniform).")
        for st in range(ahead):
            w(f"        if ({st} < steps)")
            w("        {")
            issue(str(st), st, " " * 12)
            w("        }")
            w("        else AsyncCopy.Commit();")
        w(f"        // {stages} K-steps per trip, one per shared stage; the last trip leaves after the last K-step.")
        w(f"        for (int kt = 0; kt < steps; kt += {stages})")
        w("        {")
        for st in range(stages):
            if st: w(f"            if (kt + {st} >= steps) break;")
            w(f"            // K-step kt + {st}, stage {st}")
            async_stage_body(st, " " * 12)
        w("        }")
        w("        AsyncCopy.WaitAll(); // no copy may still be writing shared memory when the block ends")
        if deep:
            w("        Wgmma.WaitAll(); // the last batch")
        w("")
    else:
        w("        if (steps > 0)")
        w("        {")
        load("0", " " * 12)
        w("        }")
        w("        // Two K-steps per trip, one per shared stage; an odd last K-step leaves after the first.")
        w("        for (int kt = 0; kt < steps; kt += 2)")
        w("        {")
        w("            // K-step kt, stage 0 (last read in K-step kt - 2, before every thread passed the barrier of kt - 1)")
        stage_body(0, " " * 12)
        w("            if (kt + 1 >= steps) break;")
        w("            // K-step kt + 1, stage 1")
        stage_body(1, " " * 12)
        w("        }")
        w("")
    # The warp's tiles for the epilogue: MT x nt mma tiles, or with wgmma its 16 rows as 1 x 16.
    emt, ent = (1, TILE_N // 8) if wg else (MT, nt)
    if wg:
        w("        // The warp's 16 rows as 16 mma-layout column tiles: tile j is registers 4j..4j + 3 (Left: j < 8, Right: j >= 8).")
        w("        h = Wgmma.Accumulators(h);")
        for ni in range(ent):
            w(f"        float " + ", ".join(f"{acc(0, ni, r)} = h.{'Left' if ni < 8 else 'Right'}.D{4 * (ni % 8) + r}" for r in range(4)) + ";")
    if shifted:
        epilogue_start("// Epilogue: d0,d1 = (row g, columns 2t, 2t+1), d2,d3 = row g+8; C_z = c[z·M·N ..].")
        for mi in range(emt):
            for h in range(2):
                w(f"        float rb{mi}{h} = RowBias(bias, sh, p, er + {mi * 16 + 8 * h});")
        w("        if (p.PairStores != 0 && (p.N & 1) == 0 && row0 + TileM <= p.M && col0 + TileN <= p.N)")
        w("        {")
        w("            // A block inside C_z: pairs of columns as 64-bit words (as the other ldmatrix kernels' epilogue).")
        pair_stores(emt, ent, lambda mi, ni, h: (f"rb{mi}{h}", f"rb{mi}{h}"))
        for mi in range(emt):
            for ni in range(ent):
                w(f"        StoreRow(cs, p, er + {mi * 16}, ec + {ni * 8}, {acc(mi,ni,0)} + rb{mi}0, {acc(mi,ni,1)} + rb{mi}0);")
                w(f"        StoreRow(cs, p, er + {mi * 16 + 8}, ec + {ni * 8}, {acc(mi,ni,2)} + rb{mi}1, {acc(mi,ni,3)} + rb{mi}1);")
    else:
        # The convolutions' weight gradients (TapRows) never write packed C: no packed fast path for them.
        epilogue("StorePackable", emt, ent, packed_fast="TapRows" not in name)
    w("    }")
    w("")


w("// <auto-generated>")
w("// Written by kernels/Tdsm.Kernels/gen/tensorcore_gemm.py; edit the script and rerun it, not this file.")
w("// </auto-generated>")
w("using ILGPU;")
w("using ILGPU.Runtime;")
w("using ILGPU.Runtime.Cuda;")
w("")
w("namespace Tdsm.Kernels;")
w("")
w("/// <summary>")
w("/// Tensor-core GEMMs with the contract of <see cref=\"Gemm.Kernel\"/> (fp32 row-major operands,")
w("/// any M, N, K, the three layouts, bias and accumulate). Operands are rounded while they are")
w("/// staged into shared memory (bf16: nearest even; tf32: nearest, ties away), products accumulate")
w("/// in fp32 through <c>mma.sync</c> (<see cref=\"Bf16.Mma\"/> m16n8k16, <see cref=\"Tf32.Mma\"/> m16n8k8),")
w("/// and the epilogue adds the bias, applies GELU or multiplies by GELU' of the bias slot when asked (GemmArgs.Gelu,")
w("/// GemmArgs.GeluGrad; the approximate-sigmoid Activations.GeluFast / GeluDerivativeFast, as befits bf16 / tf32 products)")
w("/// and writes or accumulates C in fp32.")
w(f"/// Block tile {TILE_M}×{TILE_N}, K-steps of {KSTEP}, {THREADS} threads = 8 warps in a 2 (M) × 4 (N) grid, each warp")
w(f"/// a {WARP_M}×{WARP_N} sub-tile = {MT}×{NT} mma tiles ({MT*NT*4} fp32 accumulators per lane). The next K-step is read")
w("/// from global memory into registers while the current one is multiplied.")
w("/// Shared layout: one row per M row of A / N row of B, 32-bit words (a bf16 pair or one tf32) in")
w("/// groups of 8 per mma k group, word j of a group stored at 2(j%4) + j/4, so the words t and t+4")
w("/// a lane needs (a0/a2, a1/a3, b0/b1) are one 64-bit load; 4 ulongs of padding per row keep")
w("/// those loads free of bank conflicts. The permutation is the same for A and B, so the sum over")
w("/// k is unchanged.")
w("/// Split-K as <see cref=\"Gemm.Kernel\"/>: with GemmArgs.KSplit > 0 group z of a third grid dimension multiplies the K")
w("/// range [z·KSplit, min(K, (z+1)·KSplit)) into c[z·M·N ..] (partial products: launched without bias, accumulate or")
w("/// activation; <see cref=\"Gemm.ReduceSplits\"/> finishes C), so a product with few C blocks still fills the GPU.")
w("/// The bf16 kernels on operands already packed as bf16 pairs (C = A·Bᵀ, <see cref=\"Bf16.PackRows\"/>) give the same")
w("/// bits as <see cref=\"Kernel\"/> with half the global bytes: <see cref=\"KernelPacked\"/> (the same staging)")
w("/// and <see cref=\"KernelLdMatrix\"/> (128-bit staging, swizzled rows, ldmatrix), with variants: 4 warps of 64×64")
w("/// (<see cref=\"KernelLdMatrixWide\"/>), cp.async staging (<see cref=\"KernelLdMatrixAsync\"/>; a first cp.async kernel ran at")
w("/// 0.08x at the first H100 visit because the JIT kept ILGPU's inline-asm operand slots in local memory, which the GPU")
w("/// tier's LiftedKernels now rewrites into registers), and the two convolution layouts.")
w("/// </summary>")
w("public static class TensorCoreGemm")
w("{")
w("    /// <summary>Rows of C per block.</summary>")
w(f"    public const int TileM = {TILE_M};")
w("    /// <summary>Columns of C per block.</summary>")
w(f"    public const int TileN = {TILE_N};")
w("    /// <summary>K per shared-memory stage.</summary>")
w(f"    public const int KStep = {KSTEP};")
w("    /// <summary>Threads per block.</summary>")
w(f"    public const int Threads = {THREADS};")
w("    /// <summary>Blocks per SM the kernels are compiled for by default: ptxas caps registers at 65536 / (2·256) = 128 per")
w("    /// thread (the fp32-operand kernels need 154-160 unbounded, so one block per SM; bounded they spill a few words).</summary>")
w("    public const int MinGroupsPerSM = 2;")
w("")
w("    /// <summary>The launch bounds to load the kernels with for <paramref name=\"groupsPerSM\"/> blocks per SM.</summary>")
w("    public static ILGPU.Runtime.KernelSpecialization Specialization(int groupsPerSM = MinGroupsPerSM) => new(Threads, groupsPerSM);")
w("")
w("    /// <summary>Threads per block of <see cref=\"KernelLdMatrixWide\"/> (4 warps of 64×64).</summary>")
w(f"    public const int WideThreads = {LDMATRIX_KERNELS['KernelLdMatrixWide'][0]};")
w("")
w("    /// <summary>The launch bounds of <see cref=\"KernelLdMatrixWide\"/>: two blocks of 128 threads per SM (at most 256 registers).</summary>")
w("    public static ILGPU.Runtime.KernelSpecialization WideSpecialization => new(WideThreads, MinGroupsPerSM);")
w("")
w(f"    /// <summary>Dynamic shared memory of <see cref=\"KernelWgmmaDeep\"/> in bytes: {DEEP_STAGES} stages of {STAGE_WORDS * 4 // 1024} KB.</summary>")
w(f"    public const int DeepSharedBytes = {DEEP_STAGES * STAGE_WORDS * 4};")
w("")
w("    /// <summary>The dynamic shared memory to launch <see cref=\"KernelWgmmaDeep\"/> with.</summary>")
w(f"    public static SharedMemoryConfig DeepShared => SharedMemoryConfig.RequestDynamic<Chunk16>(DeepSharedBytes / 16);")
w("")
for key in ("bf16", "tf32"):
    kernel(VARIANTS[key])
kernel_packed()
for name in LDMATRIX_KERNELS:
    kernel_ldmatrix(name)
w("    /// <summary>How <see cref=\"KernelLdMatrixShifted\"/> reads B (units of 16-byte chunks, 8 bf16).</summary>")
w("    public struct ShiftedB")
w("    {")
w("        /// <summary>Chunks between the B operands of consecutive grid z (samples).</summary>")
w("        public int BatchChunks;")
w("        /// <summary>Chunks per B row (channels / 8).</summary>")
w("        public int RowChunks;")
w("        /// <summary>⌈2^20 / d⌉ for d K-steps per K segment (per tap: channels / 32): K-step s is in segment (s·SegMagic) >> 20,")
w("        /// exact while s·d &lt; 2^20 (<see cref=\"StGcn.PackedConv.Shift\"/> checks).</summary>")
w("        public int SegMagic;")
w("        /// <summary>Chunks B's rows move at each K segment besides the segment's own 4 per K-step: (V − 1)·RowChunks.</summary>")
w("        public int SegShift;")
w("        /// <summary>1: add bias[row] (length M) in the epilogue.</summary>")
w("        public int RowBias;")
w("    }")
w("")
w("    private static float RowBias(ArrayView<float> bias, ShiftedB q, GemmArgs p, int row) => q.RowBias != 0 && row < p.M ? bias[row] : 0f;")
w("")
w("    /// <summary>How <see cref=\"KernelLdMatrixTapRows\"/> reads B (units of 16-byte chunks, 8 bf16).</summary>")
w("    public struct TapRowsB")
w("    {")
w("        /// <summary>Taps per channel: B row n is channel n / Taps, tap n % Taps.</summary>")
w("        public int Taps;")
w("        /// <summary>Chunks per packed channel row.</summary>")
w("        public int RowChunks;")
w("        /// <summary>Chunks a tap reads further along its channel's row than the previous tap (one frame).</summary>")
w("        public int TapChunks;")
w("    }")
w("")
w("    // The chunk where B row n starts.")
w("    private static int TapRow(TapRowsB q, int n)")
w("    {")
w("        int channel = n / q.Taps;")
w("        return channel * q.RowChunks + (n - channel * q.Taps) * q.TapChunks;")
w("    }")
w("")
w("    private static void StoreRow(ArrayView<float> c, GemmArgs p, int row, int col, float v0, float v1)")
w("    {")
w("        if (row >= p.M) return;")
w("        long i = (long)row * p.N + col;")
w("        if (col < p.N) c[i] = v0;")
w("        if (col + 1 < p.N) c[i + 1] = v1;")
w("    }")
w("")
w("    // Store, or with GemmArgs.PackedOut the pair as one bf16 word: the packed-operand kernels' epilogue.")
w("    private static void StorePackable(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int row, int col, float v0, float v1)")
w("    {")
w("        if (p.PackedOut == 0)")
w("        {")
w("            Store(c, bias, p, row, col, v0, v1);")
w("            return;")
w("        }")
w("        // col is even and N even, so col + 1 < N whenever col < N: the pair is one word.")
w("        if (row >= p.M || col >= p.N) return;")
w("        if (p.HasBias != 0) { v0 += bias[col]; v1 += bias[col + 1]; }")
w("        if (p.Gelu != 0) { v0 = Activations.GeluFast(v0); v1 = Activations.GeluFast(v1); }")
w("        c.Cast<uint>()[(long)row * (p.N >> 1) + (col >> 1)] = Bf16.Pack(v0, v1);")
w("    }")
w("")
w("    private static void Store(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int row, int col, float v0, float v1)")
w("    {")
w("        if (row >= p.M) return;")
w("        StoreOne(c, bias, p, row, col, v0);")
w("        StoreOne(c, bias, p, row, col + 1, v1);")
w("    }")
w("")
w("    private static void StoreOne(ArrayView<float> c, ArrayView<float> bias, GemmArgs p, int row, int col, float v)")
w("    {")
w("        if (col >= p.N) return;")
w("        long i = (long)row * p.N + col;")
w("        if (p.HasBias != 0) v += bias[col];")
w("        if (p.Gelu != 0) v = Activations.GeluFast(v);")
w("        if (p.GeluGrad != 0) v *= Activations.GeluDerivativeFast(bias[i]);")
w("        c[i] = p.Accumulate != 0 ? c[i] + v : v;")
w("    }")
w("}")

text = "\n".join(out) + "\n"
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "TensorCoreGemm.cs")
with open(path, "w", newline="\n") as f:
    f.write(text)
print(f"wrote {os.path.normpath(path)} ({len(out)} lines)")
