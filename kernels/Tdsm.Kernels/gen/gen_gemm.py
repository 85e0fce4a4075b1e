#!/usr/bin/env python3
"""Writes ../Gemm.Kernel.g.cs: the body of the fp32 SIMT GEMM (see Gemm.cs for the design), and
../StGcn/ConvGemm.Kernel.g.cs: the ST-GCN convolutions on the same compute core (see ConvGemm.cs).

ILGPU 1.5.3 does not unroll loops, and a loop-indexed local array lands in local memory, so the
8x8 register tile is 64 scalar accumulators, and one k of the K-step (the 8x8 outer product of
two float4 pairs) is written out in full here.
Run from anywhere: python3 kernels/Tdsm.Kernels/gen/gen_gemm.py
"""
import os

COMP = "XYZW"


def acc(r, c):
    return f"c{r}{c}"


def frag(name, idx):
    """Fragment register holding row/column idx (0..7) of the thread's 8x8 tile: quadrant idx // 4, lane idx % 4."""
    return f"{name}{idx // 4}.{COMP[idx % 4]}"


def frag2(name, idx):
    """The second k's fragment register of a two-k trip: quadrants 2 and 3."""
    return f"{name}{2 + idx // 4}.{COMP[idx % 4]}"


def k_loop(w, pitch, qa, qb, vec="Vec4", rebase=False, per_trip=1):
    """One K-step from the stage views fa, fb (float4 units, rows `pitch` floats apart): a loop of 8 one-k
    bodies, each 4 float4 fragment loads (quadrants qa / qb float4s apart) and the 8x8 outer product."""
    if rebase and per_trip == 2:
        w(f"            for (int kk = 0; kk < KStep * ({pitch} / 4); kk += 2 * ({pitch} / 4))")
        w("            {")
        w("                var ak = fa.SubView(kk);")
        w("                var bk = fb.SubView(kk);")
        w(f"                {vec} a0 = ak[0], a1 = ak[{qa}], b0 = bk[0], b1 = bk[{qb}];")
        w(f"                {vec} a2 = ak[{pitch} / 4], a3 = ak[{pitch} / 4 + {qa}], b2 = bk[{pitch} / 4], b3 = bk[{pitch} / 4 + {qb}];")
        for r in range(8):
            w("                " + " ".join(f"{acc(r, cc)} += {frag('a', r)} * {frag('b', cc)};" for cc in range(8)))
        for r in range(8):
            w("                " + " ".join(f"{acc(r, cc)} += {frag2('a', r)} * {frag2('b', cc)};" for cc in range(8)))
        w("            }")
        return
    w(f"            for (int kk = 0; kk < KStep * ({pitch} / 4); kk += {pitch} / 4)")
    w("            {")
    if rebase:
        # One base per operand and k, the quadrant as a constant offset (immediate in ld.shared).
        w("                var ak = fa.SubView(kk);")
        w("                var bk = fb.SubView(kk);")
        w(f"                {vec} a0 = ak[0], a1 = ak[{qa}], b0 = bk[0], b1 = bk[{qb}];")
    else:
        w(f"                {vec} a0 = fa[kk], a1 = fa[kk + {qa}], b0 = fb[kk], b1 = fb[kk + {qb}];")
    for r in range(8):
        w("                " + " ".join(f"{acc(r, cc)} += {frag('a', r)} * {frag('b', cc)};" for cc in range(8)))
    w("            }")


def trip_loop(w, pitch, stage, tile_floats, qa, qb, vec, stage_body, ind="        "):
    """The K loop as one loop over trips of two k, four per K-step, the K-step's staging (stage_body(w, ind), given the
    stage's float offset in `stage`) in the first trip of each. Two nested loops (K-steps, then trips) carried the 64
    accumulators through both, and ptxas 11.8 moved 24 of them out of and back into the registers the inner loop's
    fragment loads use at every K-step (Gemm.Kernel on sm_90: 49 MOV and 692 instructions per K-step of 512 FFMA; as
    one loop 21 MOV and 661, the same FMAs in the same order)."""
    w(ind + "int trips = steps * (KStep / 2);   // trips of two k")
    w(ind + "int fo = 0;   // float4 offset in shared memory of the trip's first k row (stage base + k·pitch/4)")
    w(ind + "for (int q = 0; q < trips; q++)")
    w(ind + "{")
    w(ind + "    if ((q & (KStep / 2 - 1)) == 0)")
    w(ind + "    {")
    w(ind + "        // Stage (q / 4) & 1 <- the staged K-step. Its last readers (two K-steps back) are past the previous barrier.")
    w(ind + f"        int stage = (q & (KStep / 2)) * ({stage} / (KStep / 2));")
    stage_body(w, ind + "        ")
    w(ind + "        fo = stage / 4;")
    w(ind + "    }")
    w(ind + "    var ak = smem4.SubView(fo + ty);")
    w(ind + f"    var bk = smem4.SubView(fo + {tile_floats} / 4 + tx);")
    w(ind + f"    {vec} a0 = ak[0], a1 = ak[{qa}], b0 = bk[0], b1 = bk[{qb}];")
    w(ind + f"    {vec} a2 = ak[{pitch} / 4], a3 = ak[{pitch} / 4 + {qa}], b2 = bk[{pitch} / 4], b3 = bk[{pitch} / 4 + {qb}];")
    for r in range(8):
        w(ind + "    " + " ".join(f"{acc(r, cc)} += {frag('a', r)} * {frag('b', cc)};" for cc in range(8)))
    for r in range(8):
        w(ind + "    " + " ".join(f"{acc(r, cc)} += {frag2('a', r)} * {frag2('b', cc)};" for cc in range(8)))
    w(ind + f"    fo += 2 * ({pitch} / 4);")
    w(ind + "}")


def kernel(name="Kernel", vec=False):
    """The SIMT GEMM: any layout with scalar staging, or (vec) C = A·Bᵀ with both operands staged in 16-byte chunks."""
    o = []
    w = o.append
    w("    /// <summary>")
    if vec:
        w(f"    /// {name}: <see cref=\"Kernel\"/> for C = A·Bᵀ (GemmLayout.ABt, the Linear forward; p.Layout is not read) with A and B staged in")
        w("    /// 16-byte chunks: both start on a 16-byte boundary and K is a multiple of 4 (the host checks). Per thread, operand and")
        w("    /// K-step one 128-bit load of four k of one row instead of four scalar loads; the same shared tile, so the same bits.")
    else:
        w(f"    /// {name}: C (M,N) (= or +=) op(A)·op(B) (+ bias, then GELU with GemmArgs.Gelu). Launch with grid (ceil(N/128), ceil(M/128), splits), group 256,")
        w("    /// loaded with <see cref=\"Specialization\"/>. a, b, c are row-major views of the shapes <see cref=\"GemmLayout\"/> names.")
        w("    /// With <see cref=\"GemmArgs.KSplit\"/> &gt; 0, group z multiplies K range [z·KSplit, (z+1)·KSplit) into c[z·M·N ..].")
    w("    /// </summary>")
    w(f"    public static void {name}(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p)")
    w("    {")
    w("        var smem = SharedMemory.Allocate<float>(2 * Stage);   // two stages of [A tile [k][m] | B tile [k][n]]")
    w("        var smem4 = smem.Cast<Vec4>();")
    w("        int tid = Group.IdxX;")
    # Shifts and masks, not / and %: ILGPU places the signed divisions inside the K-step loop (ptxas: MUFU-based).
    w("        int warp = tid >> 5, lane = tid & 31;")
    w("        int ty = (warp >> 1) * 4 + (lane >> 3), tx = (warp & 1) * 8 + (lane & 7);   // a warp: 4 ty x 8 tx")
    w("        int row0 = Grid.IdxY * Tile, col0 = Grid.IdxX * Tile;")
    w("        bool fullMN = row0 + Tile <= p.M && col0 + Tile <= p.N;")
    w("        int kBegin = Grid.IdxZ * p.KSplit;")
    w("        int k = p.KSplit == 0 ? p.K : p.K - kBegin < p.KSplit ? p.K - kBegin : p.KSplit;   // this group's K")
    w("        long cBase = (long)Grid.IdxZ * p.M * p.N;")
    if vec:
        w("        var sa = MakeStagerVecK(tid, row0, p.M, p.K, kBegin);")
        w("        var sb = MakeStagerVecK(tid, col0, p.N, p.K, kBegin);")
        w("        var a4 = a.Cast<Vec4>().AsAligned(16);")
        w("        var b4 = b.Cast<Vec4>().AsAligned(16);")
        load = lambda x, st, k0, full: f"LoadTileVecK({x}4, {st}, {k0}, k, {full})"
        store = lambda off, st, v: f"StoreTileVecK(smem, {off}, {st}, {v})"
    else:
        w("        var sa = MakeStager(p.Layout != (int)GemmLayout.AtB, tid, row0, p.M, p.K, kBegin);")
        w("        var sb = MakeStager(p.Layout == (int)GemmLayout.ABt, tid, col0, p.N, p.K, kBegin);")
        load = lambda x, st, k0, full: f"LoadTile({x}, {st}, {k0}, k, {full})"
        store = lambda off, st, v: f"StoreTile(smem, {off}, {st}, {v})"
    w("        int steps = (k + KStep - 1) >> 3;   // K-steps of 8")
    w("")
    rows = []
    for r in range(8):
        rows.append(", ".join(f"{acc(r, cc)} = 0" for cc in range(8)))
    for line in rows:
        w(f"        float {line};")
    w("")
    # Loop order: store the staged registers, barrier, fetch the next K-step into registers, multiply.
    # The K-step is a loop over k of 4 float4 fragment loads and 64 multiply-adds, not unrolled further:
    # ILGPU's code placement moves arithmetic into the block of its use and orders it by use chain, so an
    # unrolled K-step became 64 accumulator chains over all 8 k, with every fragment of the K-step (128
    # floats) live at once. One k per block keeps 16 fragment floats live (ptxas may unroll the 8 trips).
    w("        // Registers <- K-step 0.")
    w("        bool full0 = fullMN && KStep <= k;")
    w(f"        Vec4 na = {load('a', 'sa', 0, 'full0')}, nb = {load('b', 'sb', 0, 'full0')};")
    def stage_body(w, ind):
        w(ind + store("stage", "sa", "na") + ";")
        w(ind + store("stage + TileFloats", "sb", "nb") + ";")
        w(ind + "Group.Barrier();")
        w(ind + "// Registers <- the next K-step (zeros past K): the loads complete while this one multiplies.")
        w(ind + "k1 += KStep;")
        w(ind + "bool full = fullMN && k1 + KStep <= k;")
        w(ind + f"na = {load('a', 'sa', 'k1', 'full')};")
        w(ind + f"nb = {load('b', 'sb', 'k1', 'full')};")
    w("        int k1 = 0;   // the staged K-step's first k")
    trip_loop(w, "Pitch", "Stage", "TileFloats", "16", "16", "Vec4", stage_body)
    w("")
    w("        // Epilogue: rows ty·4+i and 64+ty·4+i, columns tx·4 .. +3 and 64+tx·4 .. +3.")
    w("        int colA = col0 + tx * 4, colB = colA + 64;")
    w("        Vec4 biasA = LoadBias(bias, p, colA), biasB = LoadBias(bias, p, colB);")
    for r in range(8):
        row = f"row0 + ty * 4 + {r}" if r < 4 else f"row0 + 64 + ty * 4 + {r - 4}"
        for q, (col, bq) in enumerate((("colA", "biasA"), ("colB", "biasB"))):
            vals = ", ".join(acc(r, q * 4 + j) for j in range(4))
            w(f"        StoreQuad(c, bias, cBase, p, {row}, {col}, fullMN, {bq}, {vals});")
    w("    }")
    return o


# ---------------------------------------------------------------------------------------------- convolutions
# ConvGemm.Kernel.g.cs: the ST-GCN convolutions as implicit GEMMs on the same compute core (see ConvGemm.cs).
# Two block shapes share the 8x8 register tile of 256 threads: 128x128 (16 ty x 16 tx) and 64x256 (8 ty x 32 tx,
# for M = 64). A warp always spans 4 ty x 8 tx, so its float4 fragment loads stay conflict-free.
# Each mode names how its two operands are staged: "lin" = element (row, k) at idx(k) + row·stride (rows of a
# plain matrix), "gather" = element (k, col) of the (B, C, T, V) activation, 0 where the frame is padding.

TILES = [(128, 128, ""), (64, 256, "Wide")]

# One K-step per thread: its k index kk within the step and its rows. "kc": 8 threads per row, k-contiguous
# (tid % 8, rows tid / 8 + 32e); "rc": 32 consecutive rows of one k (tid / 32, rows tid % 32 + 32e).
# Shifts and masks: ILGPU's code placement sinks index arithmetic used only in the loop into it, and ptxas
# turns its signed divisions by constants into reciprocal sequences.
MAP = {"kc": ("tid & (KStep - 1)", "tid >> 3"), "rc": ("tid >> 5", "tid & 31")}

MODES = {
    "Forward": dict(
        params="ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y",
        doc="y_b (Cout, Tout·V) = W (Cout, Cin·kt) · X_b[(ci,j), (to,v)] + bias; grid (⌈Tout·V / {TN}⌉, ⌈Cout / {TM}⌉, B).",
        prologue=[
            "int tv = p.T * p.V;",
            "int m = p.Cout, n = p.Tout * p.V, kEnd = p.Cin * p.Kt;",
            "var src = x.SubView((long)z * p.Cin * tv, (long)p.Cin * tv);      // sample z",
            "var dst = y.SubView((long)z * m * n, (long)m * n);",
            "// A = w (Cout, Cin·kt), k-contiguous: k = kA.",
            "int kA = kkA;",
            "int aIdx = (row0 + rA) * kEnd + kA, aStep = 32 * kEnd, aLeft = m - row0 - rA;",
            "// B = x gathered: k = kB = (ci, j), column (to, v).",
            "int kB = kkB;",
            "var dB = KDiv.Start(kB, p.Kt);",
        ],
        a=dict(map="kc", kind="lin", view="w", idx="aIdx", step="aStep", left="aLeft", kv="kA < kEnd"),
        b=dict(map="rc", kind="gather", setup="ForwardColumn(col0 + rB + {o}, n, p)", view="src",
               pre=["bool kvB = kB < kEnd;", "int kOffB = dB.Q * tv + dB.R * p.V;"],
               kv="kvB", koff="kOffB", tk="dB.R", lim="p.T"),
        advance=["kA += KStep; aIdx += KStep;", "kB += KStep; dB = KDiv.Advance(dB, p.Kt);"],
        store="bias", m="m", n="n"),
    "InputGrad": dict(
        params="ArrayView<float> dy, ArrayView<float> w, ArrayView<float> unused, ArrayView<float> dx",
        doc="dx_b (Cin, T·V) = Wᵀ[ci, (co,j)] · dY_b[(co,j), (t,v)], dx overwritten, by output phase r = t mod stride: "
            "grid (⌈⌈T / stride⌉·V / {TN}⌉, ⌈Cin / {TM}⌉, B·stride), z = b·stride + r.",
        prologue=[
            "// Frames t = s·t' + r of phase r take only the taps j = j0 + s·i (j0 = (r + pad) mod s, i < ktr), from dY",
            "// frames t' + cr − i: a stride-1 conv with ktr taps, so a strided conv multiplies no zeros.",
            "int b = z / p.Stride, r = z - b * p.Stride;",
            "int j0 = (r + p.Pad) % p.Stride, ktr = j0 < p.Kt ? (p.Kt - j0 + p.Stride - 1) / p.Stride : 0, cr = (r + p.Pad - j0) / p.Stride;",
            "int tr = (p.T - r + p.Stride - 1) / p.Stride;   // frames of phase r",
            "int lout = p.Tout * p.V, ckt = p.Cin * p.Kt, tv = p.T * p.V;",
            "int m = p.Cin, n = tr * p.V, kEnd = p.Cout * ktr;",
            "var src = dy.SubView((long)b * p.Cout * lout, (long)p.Cout * lout);      // sample b",
            "var dst = dx.SubView((long)b * m * tv, (long)m * tv);",
            "// Both operands: k = (co, i), one tracker (same k mapping).",
            "int kc = kkA, kd = ktr > 0 ? ktr : 1;",
            "var d = KDiv.Start(kc, kd);",
            "// A = w[co, ci, j0 + s·i] as (Cin, (co, i)).",
            "int aIdx0 = (row0 + rA) * p.Kt + j0, aStep = 32 * p.Kt, aLeft = m - row0 - rA;",
        ],
        a=dict(map="rc", kind="lin", view="w", idx="aIdx", step="aStep", left="aLeft", kv="kv",
               pre=["bool kv = kc < kEnd;", "int aIdx = d.Q * ckt + d.R * p.Stride + aIdx0;"]),
        b=dict(map="rc", kind="gather", setup="InputGradColumn(col0 + rB + {o}, n, cr, p)", view="src",
               pre=["int kOffB = d.Q * lout - d.R * p.V;"], kv="kv", koff="kOffB", tk="-d.R", lim="p.Tout"),
        advance=["kc += KStep; d = KDiv.Advance(d, kd);"],
        store="phase", m="m", n="n"),
    "WeightGrad": dict(
        params="ArrayView<float> x, ArrayView<float> dy, ArrayView<float> unused, ArrayView<float> part",
        doc="part[z] (Cout, Cin·kt) = Σ over k = (b, to, v) in split z of dY · Xᵀ; grid (⌈Cin·kt / {TN}⌉, ⌈Cout / {TM}⌉, splits).",
        prologue=[
            "int lout = p.Tout * p.V, tv = p.T * p.V;",
            "int m = p.Cout, n = p.Cin * p.Kt;",
            "int kBegin = z * p.KSplit, kEnd = p.B * lout - kBegin < p.KSplit ? p.B * lout : kBegin + p.KSplit;",
            "var dst = part.SubView((long)z * m * n, (long)m * n);",
            "// Both operands k-contiguous: k = (b, to, v), one tracker.",
            "int kc = kBegin + kkA;",
            "var s = KSample.Start(kc, p);",
            "// A = dy (Cout rows of sample b).",
            "int aIdx0 = (row0 + rA) * lout, aStep = 32 * lout, aLeft = m - row0 - rA;",
        ],
        a=dict(map="kc", kind="lin", view="dy", idx="aIdx", step="aStep", left="aLeft", kv="kv",
               pre=["bool kv = kc < kEnd;", "int aIdx = s.B * p.Cout * lout + s.To * p.V + s.Vi + aIdx0;"]),
        b=dict(map="kc", kind="gather", setup="WeightGradColumn(col0 + rB + {o}, n, p)", view="x",
               pre=["int tk = s.To * p.Stride;", "int kOffB = s.B * p.Cin * tv + tk * p.V + s.Vi;"],
               kv="kv", koff="kOffB", tk="tk", lim="p.T"),
        advance=["kc += KStep; s = KSample.Advance(s, p);"],
        store="plain", m="m", n="n"),
    "WeightGradT": dict(
        params="ArrayView<float> x, ArrayView<float> dy, ArrayView<float> unused, ArrayView<float> part",
        doc="<see cref=\"WeightGrad\"/> with the operands swapped, for few output channels: C (Cin·kt, Cout) = X · dYᵀ, stored transposed into part[z] (Cout, Cin·kt); grid (⌈Cout / {TN}⌉, ⌈Cin·kt / {TM}⌉, splits).",
        prologue=[
            "int lout = p.Tout * p.V, tv = p.T * p.V;",
            "int m = p.Cin * p.Kt, n = p.Cout;",
            "int kBegin = z * p.KSplit, kEnd = p.B * lout - kBegin < p.KSplit ? p.B * lout : kBegin + p.KSplit;",
            "var dst = part.SubView((long)z * m * n, (long)m * n);",
            "// Both operands k-contiguous: k = (b, to, v), one tracker.",
            "int kc = kBegin + kkA;",
            "var s = KSample.Start(kc, p);",
            "// B = dy (Cout rows of sample b).",
            "int bIdx0 = (col0 + rB) * lout, bStep = 32 * lout, bLeft = n - col0 - rB;",
        ],
        a=dict(map="kc", kind="gather", setup="WeightGradColumn(row0 + rA + {o}, m, p)", view="x",
               pre=["bool kv = kc < kEnd;", "int tk = s.To * p.Stride;", "int kOffA = s.B * p.Cin * tv + tk * p.V + s.Vi;"],
               kv="kv", koff="kOffA", tk="tk", lim="p.T"),
        b=dict(map="kc", kind="lin", view="dy", idx="bIdx", step="bStep", left="bLeft", kv="kv",
               pre=["int bIdx = s.B * p.Cout * lout + s.To * p.V + s.Vi + bIdx0;"]),
        advance=["kc += KStep; s = KSample.Advance(s, p);"],
        store="transposed", m="m", n="n"),
}


def conv_load_ab(w, ind, mode, spec, ea, eb):
    """Loads this thread's elements of both operands of the next K-step into nA0.., nB0.. (in a block: its locals are per load)."""
    w(ind + "{")
    conv_load_body(w, ind + "    ", mode, "A", spec["a"], ea)
    conv_load_body(w, ind + "    ", mode, "B", spec["b"], eb)
    w(ind + "}")


def conv_load_body(w, ind, mode, name, spec, count):
    for line in spec.get("pre", []):
        w(ind + line)
    kind = spec["kind"]
    if kind == "lin":
        for e in range(count):
            off = "" if e == 0 else (f" + {spec['step']}" if e == 1 else f" + {e} * {spec['step']}")
            w(ind + f"n{name}{e} = Load({spec['view']}, {spec['idx']}{off}, {spec['kv']} && {spec['left']} > {32 * e});")
    elif kind == "gather":
        for e in range(count):
            w(ind + f"n{name}{e} = Gather({spec['view']}, g{name}{e}, {spec['kv']}, {spec['koff']}, {spec['tk']}, {spec['lim']});")


def conv_kernel(mode, tm, tn, suffix):
    spec = MODES[mode]
    ea, eb = tm // 32, tn // 32
    pitch = "Pitch" if suffix == "" else "PitchWide"
    stage = "Stage" if suffix == "" else "StageWide"
    tile_floats = "TileFloats" if suffix == "" else "TileFloatsWide"
    o = []
    w = o.append
    w("    /// <summary>")
    w(f"    /// Kernel ({tm}×{tn} block): " + spec["doc"].format(TM=tm, TN=tn))
    w(f"    /// Group {256}, loaded with <see cref=\"Specialization\"/>.")
    w("    /// </summary>")
    w(f"    public static void {mode}{suffix}({spec['params']}, ConvArgs p)")
    w("    {")
    w(f"        var smem = SharedMemory.Allocate<float>(2 * {stage});   // two stages of [A tile [k][m] | B tile [k][n]]")
    w("        var smem4 = smem.Cast<Gemm.Vec4>();")
    w("        int tid = Group.IdxX;")
    w("        int warp = tid >> 5, lane = tid & 31;")
    shift = {2: 1, 4: 2}[tn // 64]
    w(f"        int ty = (warp >> {shift}) * 4 + (lane >> 3), tx = (warp & {tn // 64 - 1}) * 8 + (lane & 7);   // a warp: 4 ty x 8 tx")
    w(f"        int row0 = Grid.IdxY * {tm}, col0 = Grid.IdxX * {tn}, z = Grid.IdxZ;")
    ka, ra = MAP[spec["a"]["map"]]
    kb, rb = MAP[spec["b"]["map"]]
    w(f"        int kkA = {ka}, rA = {ra}, kkB = {kb}, rB = {rb};   // this thread's k in a K-step and first row of A / B")
    w(f"        int sA = kkA * {pitch} + rA, sB = {tile_floats} + kkB * {pitch} + rB;   // its staged elements in a stage")
    for line in spec["prologue"]:
        w("        " + line)
    if "kBegin" not in "".join(spec["prologue"]):
        w("        int kBegin = 0;")
    for name, cnt in (("A", ea), ("B", eb)):
        sp = spec[name.lower()]
        if sp["kind"] != "lin":
            for e in range(cnt):
                w(f"        var g{name}{e} = {sp['setup'].format(o=32 * e)};")
    w("        int steps = (kEnd - kBegin + KStep - 1) / KStep;")
    w("")
    for r in range(8):
        w("        float " + ", ".join(f"{acc(r, cc)} = 0" for cc in range(8)) + ";")
    w("        float " + ", ".join(f"nA{e}" for e in range(ea)) + ", " + ", ".join(f"nB{e}" for e in range(eb)) + ";")
    w("")
    w("        // Registers <- K-step 0, then the trackers to K-step 1 (advanced here too, so the increments they carry")
    w("        // are computed before the loop instead of placed into it).")
    conv_load_ab(w, "        ", mode, spec, ea, eb)
    for line in spec["advance"]:
        w("        " + line)
    def stage_body(w, ind):
        w(ind + "var stA = smem.SubView(stage + sA);   // view bases: the element offsets become immediates")
        w(ind + "var stB = smem.SubView(stage + sB);")
        for e in range(ea):
            w(ind + f"stA[{32 * e}] = nA{e};")
        for e in range(eb):
            w(ind + f"stB[{32 * e}] = nB{e};")
        w(ind + "Group.Barrier();")
        w(ind + "// Registers <- the next K-step (zeros past the end): the loads complete while this one multiplies.")
        conv_load_ab(w, ind, mode, spec, ea, eb)
        for line in spec["advance"]:
            w(ind + line)
    # The same K loop as before Gemm.Kernel's single trip loop (see trip_loop): in these kernels the staging guards are
    # branch-free and ptxas 11.8 allocated the trip loop worse (sm_90, per K-step: Forward 745 instead of 702 instructions,
    # WeightGrad 752 instead of 724; InputGrad 680 instead of 699).
    w("        for (int t = 0; t < steps; t++)")
    w("        {")
    w("            // Stage t&1 <- K-step t. Its last readers (step t-2) are past the previous barrier.")
    w(f"            int stage = (t & 1) * {stage};")
    stage_body(w, "            ")
    w("            var fa = smem4.SubView(stage / 4 + ty);")
    w(f"            var fb = smem4.SubView((stage + {tile_floats}) / 4 + tx);")
    # Square blocks: one base per operand and k (3 fewer instructions per k), two k per trip as Gemm.Kernel had (ptxas 11.8,
    # sm_90: 143 instructions per 128 FMA instead of 2 x 75; per K-step 702 / 699 / 724 instead of 715 / 711 / 731 for
    # Forward / InputGrad / WeightGrad, no spills). Not on wide blocks: at the 128-register cap there, ptxas 11.8 spilled
    # 16 bytes of InputGradWide with the rebase.
    k_loop(w, pitch, str(tm // 8), str(tn // 8), "Gemm.Vec4", rebase=tm == tn, per_trip=2 if tm == tn else 1)
    w("        }")
    w("")
    w(f"        // Epilogue: rows ty·4+i and {tm // 2}+ty·4+i, columns tx·4 .. +3 and {tn // 2}+tx·4 .. +3.")
    w(f"        int colA = col0 + tx * 4, colB = colA + {tn // 2};")
    store = spec["store"]
    if store == "phase":
        w("        // Column (t', v) of phase r is frame s·t' + r of dx: the 8 columns' offsets (−1 past n).")
        for q, col in enumerate(("colA", "colB")):
            w("        int " + ", ".join(f"o{q}{j} = PhaseColumn({col}{f' + {j}' if j else ''}, n, r, p)" for j in range(4)) + ";")
    for r in range(8):
        row = f"row0 + ty * 4 + {r}" if r < 4 else f"row0 + {tm // 2} + ty * 4 + {r - 4}"
        if store == "bias":
            w(f"        float bias{r} = {row} < m ? bias[{row}] : 0;")
        for q, col in enumerate(("colA", "colB")):
            vals = ", ".join(acc(r, q * 4 + j) for j in range(4))
            if store == "transposed":
                w(f"        StoreQuadT(dst, m, n, {row}, {col}, {vals});")
            elif store == "phase":
                offs = ", ".join(f"o{q}{j}" for j in range(4))
                w(f"        StoreQuadAt(dst, m, tv, {row}, {offs}, {vals});")
            else:
                b = f"bias{r}" if store == "bias" else "0"
                w(f"        StoreQuad(dst, m, n, {row}, {col}, {b}, {vals});")
    w("    }")
    return o


def conv_kernels():
    o = []
    for tm, tn, suffix in TILES:
        for mode in MODES:
            if mode == "WeightGradT" and suffix == "":
                continue  # a swapped product is only the better fit on wide blocks (ConvGemm.PlanWeightGrad)
            if o:
                o.append("")
            o += conv_kernel(mode, tm, tn, suffix)
    return o


def write(path, namespace, cls, body, usings=("ILGPU",)):
    """Writes one generated partial class (the header says which script to edit)."""
    lines = [
        "// <auto-generated>",
        "// Written by kernels/Tdsm.Kernels/gen/gen_gemm.py: edit the script, not this file.",
        "// </auto-generated>",
    ] + [f"using {u};" for u in usings] + [
        "",
        f"namespace {namespace};",
        "",
        f"public static partial class {cls}",
        "{",
    ] + body + ["}", ""]
    with open(path, "w", newline="\n") as f:
        f.write("\n".join(lines))
    print(f"wrote {os.path.normpath(path)} ({len(lines)} lines)")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    write(os.path.join(here, "..", "Gemm.Kernel.g.cs"), "Tdsm.Kernels", "Gemm", kernel() + [""] + kernel("KernelVecABt", vec=True),
          ("ILGPU", "ILGPU.Runtime"))
    write(os.path.join(here, "..", "StGcn", "ConvGemm.Kernel.g.cs"), "Tdsm.Kernels.StGcn", "ConvGemm", conv_kernels())


if __name__ == "__main__":
    main()
