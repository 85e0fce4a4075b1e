#!/usr/bin/env python3
"""Writes ../StGcn/TensorCoreConv.Kernel.g.cs: the ST-GCN convolutions (forward, input gradient by output
phase, split-K weight gradient) as implicit GEMMs on the tensor-core compute core (bf16 and tf32) of
TensorCoreGemm (gen/tensorcore_gemm.py): 128x128 blocks, K-steps of 32, 8 warps of 64x32.

The operands are gathered from the (B, C, T, V) tensors while staging, with the index trackers of the
fp32 conv GEMM (gen/gen_gemm.py); see TensorCoreConv.cs for the design. ILGPU 1.5 does not unroll loops,
so registers and items are spelled out here. Run: python3 kernels/Tdsm.Kernels/gen/tensorcore_conv.py
"""
import os

from tensorcore_core import MT, NT, acc, mma_k_group

TILE, KSTEP, THREADS = 128, 32, 256
ITEMS = 8                   # rows each thread stages per operand: rows base + 16 i, i < 8

# Per precision. Each thread stages, per row, the 2 k of its word w (0..15): bf16 packs k = 2w, 2w+1 into one
# shared word; tf32 stores k = w and w+16 as two words (w and w+16: same place in their 8-word groups).
#   kw, ke: the thread's k are kw·w and kw·w + ke;  stride: ulongs per shared row (data + 4 of padding,
#   conflict-free 64-bit fragment loads, as in TensorCoreGemm);  groups: mma k groups per K-step.
VARIANTS = {
    "Bf16": dict(kw="2 * ", ke=1, stride=12, groups=2, mma="m16n8k16", mma_text="mma.sync.m16n8k16 (bf16)"),
    "Tf32": dict(kw="", ke=16, stride=20, groups=4, mma="m16n8k8", mma_text="mma.sync.m16n8k8 (tf32)"),
}

# Thread maps (both: one fixed word = k pair per thread, rows base + 16 i):
#   "k":  source contiguous along k: a warp covers 2 rows x 16 words (32 consecutive k of a row).
#   "mn": source contiguous along rows: a warp covers 16 consecutive rows x 2 words.
MAP = {"k": ("tid >> 4", "tid & 15"), "mn": ("tid & 15", "tid >> 4")}

MODES = {
    "Forward": dict(
        params="ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y",
        doc="y_b (Cout, Tout·V) = W (Cout, Cin·kt) · X_b[(ci,j), (to,v)] + bias; grid (⌈Tout·V / 128⌉, ⌈Cout / 128⌉, B).",
        amap="k", bmap="mn",
        prologue=[
            "int tv = p.T * p.V;",
            "int m = p.Cout, n = p.Tout * p.V, kBegin = 0, kEnd = p.Cin * p.Kt;",
            "var src = x.SubView((long)z * p.Cin * tv, (long)p.Cin * tv);      // sample z",
            "var dst = y.SubView((long)z * m * n, (long)m * n);",
            "// A = w (Cout, Cin·kt), k-contiguous: the thread's k pair starts at kA.",
            "int kA = @KW * wA;",
            "int aIdx = (row0 + rA) * kEnd + kA, aStep = 16 * kEnd, aLeft = m - row0 - rA;",
            "// B = x gathered: k = (ci, j), column (to, v); one tracker per k of the pair.",
            "int kB = @KW * wB;",
            "var d0 = ConvGemm.KDiv.Start(kB, p.Kt, KStep);",
            "var d1 = ConvGemm.KDiv.Start(kB + @KE, p.Kt, KStep);",
        ],
        columns=("B", "ConvGemm.ForwardColumn(col0 + rB + {o}, n, p)"),
        pre=["bool kvA0 = kA < kEnd, kvA1 = kA + @KE < kEnd;",
             "bool kvB0 = kB < kEnd, kvB1 = kB + @KE < kEnd;",
             "int kOff0 = d0.Q * tv + d0.R * p.V, kOff1 = d1.Q * tv + d1.R * p.V;"],
        a="ConvGemm.Load(w, aIdx + {eo}{istep}, kvA{e} && aLeft > {o})",
        b="ConvGemm.Gather(src, gB{i}, kvB{e}, kOff{e}, d{e}.R, p.T)",
        istep_a="aStep",
        advance=["kA += KStep; aIdx += KStep;", "kB += KStep; d0 = ConvGemm.KDiv.Advance(d0, p.Kt); d1 = ConvGemm.KDiv.Advance(d1, p.Kt);"],
        store="bias"),
    "InputGrad": dict(
        params="ArrayView<float> dy, ArrayView<float> w, ArrayView<float> unused, ArrayView<float> dx",
        doc="dx_b (Cin, T·V) = Wᵀ[ci, (co,j)] · dY_b[(co,j), (t,v)], dx overwritten, by output phase r = t mod stride "
            "(see <see cref=\"ConvGemm.InputGrad\"/>): grid (⌈⌈T / stride⌉·V / 128⌉, ⌈Cin / 128⌉, B·stride), z = b·stride + r.",
        amap="mn", bmap="mn",
        prologue=[
            "int b = z / p.Stride, r = z - b * p.Stride;",
            "int j0 = (r + p.Pad) % p.Stride, ktr = j0 < p.Kt ? (p.Kt - j0 + p.Stride - 1) / p.Stride : 0, cr = (r + p.Pad - j0) / p.Stride;",
            "int tr = (p.T - r + p.Stride - 1) / p.Stride;   // frames of phase r",
            "int lout = p.Tout * p.V, ckt = p.Cin * p.Kt, tv = p.T * p.V;",
            "int m = p.Cin, n = tr * p.V, kBegin = 0, kEnd = p.Cout * ktr;",
            "var src = dy.SubView((long)b * p.Cout * lout, (long)p.Cout * lout);      // sample b",
            "var dst = dx.SubView((long)b * m * tv, (long)m * tv);",
            "// Both operands: k = (co, i), the same k pair (same map), one tracker per k of the pair.",
            "int kc = @KW * wA, kd = ktr > 0 ? ktr : 1;",
            "var d0 = ConvGemm.KDiv.Start(kc, kd, KStep);",
            "var d1 = ConvGemm.KDiv.Start(kc + @KE, kd, KStep);",
            "// A = w[co, ci, j0 + s·i] as (Cin, (co, i)).",
            "int aIdx0 = (row0 + rA) * p.Kt + j0, aStep = 16 * p.Kt, aLeft = m - row0 - rA;",
        ],
        columns=("B", "ConvGemm.InputGradColumn(col0 + rB + {o}, n, cr, p)"),
        pre=["bool kv0 = kc < kEnd, kv1 = kc + @KE < kEnd;",
             "int aIdx0k = d0.Q * ckt + d0.R * p.Stride + aIdx0, aIdx1k = d1.Q * ckt + d1.R * p.Stride + aIdx0;",
             "int kOff0 = d0.Q * lout - d0.R * p.V, kOff1 = d1.Q * lout - d1.R * p.V;"],
        a="ConvGemm.Load(w, aIdx{e}k{istep}, kv{e} && aLeft > {o})",
        b="ConvGemm.Gather(src, gB{i}, kv{e}, kOff{e}, -d{e}.R, p.Tout)",
        istep_a="aStep",
        advance=["kc += KStep; d0 = ConvGemm.KDiv.Advance(d0, kd); d1 = ConvGemm.KDiv.Advance(d1, kd);"],
        store="phase"),
    "WeightGrad": dict(
        params="ArrayView<float> x, ArrayView<float> dy, ArrayView<float> unused, ArrayView<float> part",
        doc="part[z] (Cout, Cin·kt) = Σ over k = (b, to, v) in split z of dY · Xᵀ; grid (⌈Cin·kt / 128⌉, ⌈Cout / 128⌉, splits).",
        amap="k", bmap="k",
        prologue=[
            "int lout = p.Tout * p.V, tv = p.T * p.V;",
            "int m = p.Cout, n = p.Cin * p.Kt;",
            "int kBegin = z * p.KSplit, kEnd = p.B * lout - kBegin < p.KSplit ? p.B * lout : kBegin + p.KSplit;",
            "var dst = part.SubView((long)z * m * n, (long)m * n);",
            "// Both operands k-contiguous: k = (b, to, v), the same k pair, one tracker per k of the pair.",
            "int kc = kBegin + @KW * wA;",
            "var s0 = ConvGemm.KSample.Start(kc, p, KStep);",
            "var s1 = ConvGemm.KSample.Start(kc + @KE, p, KStep);",
            "// A = dy (Cout rows of sample b).",
            "int aIdx0 = (row0 + rA) * lout, aStep = 16 * lout, aLeft = m - row0 - rA;",
        ],
        columns=("B", "ConvGemm.WeightGradColumn(col0 + rB + {o}, n, p)"),
        pre=["bool kv0 = kc < kEnd, kv1 = kc + @KE < kEnd;",
             "int aIdx0k = s0.B * p.Cout * lout + s0.To * p.V + s0.Vi + aIdx0, aIdx1k = s1.B * p.Cout * lout + s1.To * p.V + s1.Vi + aIdx0;",
             "int tk0 = s0.To * p.Stride, tk1 = s1.To * p.Stride;",
             "int kOff0 = s0.B * p.Cin * tv + tk0 * p.V + s0.Vi, kOff1 = s1.B * p.Cin * tv + tk1 * p.V + s1.Vi;"],
        a="ConvGemm.Load(dy, aIdx{e}k{istep}, kv{e} && aLeft > {o})",
        b="ConvGemm.Gather(x, gB{i}, kv{e}, kOff{e}, tk{e}, p.T)",
        istep_a="aStep",
        advance=["kc += KStep; s0 = ConvGemm.KSample.Advance(s0, p); s1 = ConvGemm.KSample.Advance(s1, p);"],
        store="plain"),
}


def sub(v, line):
    return line.replace("@KW * ", v["kw"]).replace("@KE", str(v["ke"]))


def load(w, ind, spec, v):
    w(ind + "{")
    for line in spec["pre"]:
        w(ind + "    " + sub(v, line))
    for i in range(ITEMS):
        for e in range(2):
            istep = "" if i == 0 else (f" + {spec['istep_a']}" if i == 1 else f" + {i} * {spec['istep_a']}")
            w(ind + f"    xa{2 * i + e} = " + spec["a"].format(e=e, eo=e * v["ke"], istep=istep, o=16 * i, i=i) + ";")
    for i in range(ITEMS):
        for e in range(2):
            w(ind + f"    xb{2 * i + e} = " + spec["b"].format(e=e, i=i) + ";")
    w(ind + "}")


def kernel(mode, cls):
    spec, v = MODES[mode], VARIANTS[cls]
    STRIDE, ROW_WORDS, GROUPS = v["stride"], 2 * v["stride"], v["groups"]
    o = []
    w = o.append
    w("    /// <summary>")
    w(f"    /// {cls} tensor-core kernel ({v['mma_text']}): " + spec["doc"])
    w("    /// Group 256, loaded with <see cref=\"Specialization\"/>.")
    w("    /// </summary>")
    w(f"    public static void {mode}{cls}({spec['params']}, ConvArgs p)")
    w("    {")
    w(f"        var sa = SharedMemory.Allocate<ulong>(Tile * {STRIDE});")
    w(f"        var sb = SharedMemory.Allocate<ulong>(Tile * {STRIDE});")
    w("        var sa32 = sa.Cast<uint>();")
    w("        var sb32 = sb.Cast<uint>();")
    w("        int tid = Group.IdxX;")
    w("        int lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;")
    w("        int wm = (warp & 1) * 64, wn = (warp >> 1) * 32;")
    w("        int row0 = Grid.IdxY * Tile, col0 = Grid.IdxX * Tile, z = Grid.IdxZ;")
    ra, wa = MAP[spec["amap"]]
    rb, wb = MAP[spec["bmap"]]
    w(f"        // Staging: the thread's first row and its word w (k = {v['kw']}w and {v['kw']}w + {v['ke']}) of A / B; item i adds 16i rows.")
    w(f"        int rA = {ra}, wA = {wa}, rB = {rb}, wB = {wb};")
    w("        // Shared uint index of the thread's item 0 (word j of each 8-word group at 2(j%4) + j/4).")
    w(f"        int sA = rA * {ROW_WORDS} + (wA & ~7) + ((wA & 3) << 1) + ((wA >> 2) & 1);")
    w(f"        int sB = rB * {ROW_WORDS} + (wB & ~7) + ((wB & 3) << 1) + ((wB >> 2) & 1);")
    w("        // Fragment loads (ulong index): row g of the warp's sub-tile, words t and t+4 of a k group.")
    w(f"        int af = (wm + g) * {STRIDE} + t, bf = (wn + g) * {STRIDE} + t;")
    for line in spec["prologue"]:
        w("        " + sub(v, line))
    name, setup = spec["columns"]
    for i in range(ITEMS):
        w(f"        var g{name}{i} = {setup.format(o=16 * i)};")
    w("        int steps = (kEnd - kBegin + KStep - 1) / KStep;")
    for mi in range(MT):
        w("        float " + ", ".join(f"{acc(mi, ni, r)} = 0f" for ni in range(NT) for r in range(4)) + ";")
    w("        float " + ", ".join(f"xa{i}" for i in range(2 * ITEMS)) + ";")
    w("        float " + ", ".join(f"xb{i}" for i in range(2 * ITEMS)) + ";")
    w("")
    w("        // Registers <- K-step 0, then the trackers to K-step 1.")
    load(w, "        ", spec, v)
    for line in spec["advance"]:
        w("        " + line)
    w("        for (int s = 0; s < steps; s++)")
    w("        {")
    w("            Group.Barrier(); // every warp is done reading the previous K-step")
    for op, base in (("a", "sA"), ("b", "sB")):
        for i in range(ITEMS):
            if cls == "Bf16":
                w(f"            s{op}32[{base} + {16 * i * ROW_WORDS}] = Bf16.Pack(x{op}{2 * i}, x{op}{2 * i + 1});")
            else:
                w(f"            s{op}32[{base} + {16 * i * ROW_WORDS}] = Tf32.Bits(x{op}{2 * i}); s{op}32[{base} + {16 * i * ROW_WORDS + 16}] = Tf32.Bits(x{op}{2 * i + 1});")
    w("            Group.Barrier();")
    w("            // Registers <- K-step s+1 (zeros past the end): the loads complete while this step multiplies.")
    load(w, "            ", spec, v)
    for line in spec["advance"]:
        w("            " + line)
    for gi in range(GROUPS):
        mma_k_group(w, cls, gi, STRIDE)
    w("        }")
    w("")
    w("        // Epilogue: d0,d1 = (row g, columns 2t, 2t+1), d2,d3 = row g+8 of each mma tile.")
    w("        int er = row0 + wm + g, ec = col0 + wn + 2 * t;")
    store = spec["store"]
    row_len = "tv" if store == "phase" else "n"
    # The 8 columns of the thread: their offsets in a dst row (-1 outside).
    for ni in range(NT):
        for c in range(2):
            col = f"ec + {ni * 8 + c}"
            if store == "phase":
                w(f"        int o{ni}{c} = ConvGemm.PhaseColumn({col}, n, r, p);")
            else:
                w(f"        int o{ni}{c} = {col} < n ? {col} : -1;")
    for mi in range(MT):
        for h in range(2):
            row = f"er + {mi * 16 + 8 * h}"
            bias = f"bias{mi}{h}"
            if store == "bias":
                w(f"        float {bias} = {row} < m ? bias[{row}] : 0f;")
            else:
                bias = "0f"
            for ni in range(NT):
                w(f"        Store2(dst, m, {row_len}, {row}, o{ni}0, o{ni}1, {acc(mi, ni, 2 * h)} + {bias}, {acc(mi, ni, 2 * h + 1)} + {bias});")
    w("    }")
    return o


def main():
    lines = [
        "// <auto-generated>",
        "// Written by kernels/Tdsm.Kernels/gen/tensorcore_conv.py: edit the script and rerun it, not this file.",
        "// </auto-generated>",
        "using ILGPU;",
        "using ILGPU.Runtime.Cuda;",
        "",
        "namespace Tdsm.Kernels.StGcn;",
        "",
        "public static partial class TensorCoreConv",
        "{",
    ]
    for cls in VARIANTS:
        for mode in MODES:
            if len(lines) > 10:
                lines.append("")
            lines += kernel(mode, cls)
    lines += [
        "}",
        "",
    ]
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "StGcn", "TensorCoreConv.Kernel.g.cs")
    with open(out, "w", newline="\n") as f:
        f.write("\n".join(lines))
    print(f"wrote {os.path.normpath(out)} ({len(lines)} lines)")


if __name__ == "__main__":
    main()
