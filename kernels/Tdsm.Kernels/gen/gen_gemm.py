#!/usr/bin/env python3
"""Writes ../Gemm.Kernel.g.cs: the body of the fp32 SIMT GEMM (see Gemm.cs for the design).

ILGPU 1.5.3 does not unroll loops, and a loop-indexed local array lands in local memory, so the
8x8 register tile is 64 scalar accumulators and the K-step of 8 is written out in full here.
Run from anywhere: python3 kernels/Tdsm.Kernels/gen/gen_gemm.py
"""
import os

KSTEP = 8
PITCH4 = (128 + 4) // 4      # shared row pitch in float4s (Gemm.Pitch / 4)
TILE4 = KSTEP * PITCH4       # one staged tile in float4s (Gemm.TileFloats / 4)
COMP = "XYZW"


def acc(r, c):
    return f"c{r}{c}"


def frag(name, idx):
    """Fragment register holding row/column idx (0..7) of the thread's 8x8 tile: quadrant idx // 4, lane idx % 4."""
    return f"{name}{idx // 4}.{COMP[idx % 4]}"


def kernel():
    o = []
    w = o.append
    w("    /// <summary>")
    w("    /// Kernel: C (M,N) (= or +=) op(A)·op(B) (+ bias). Launch with grid (ceil(N/128), ceil(M/128), splits), group 256,")
    w("    /// loaded with <see cref=\"Specialization\"/>. a, b, c are row-major views of the shapes <see cref=\"GemmLayout\"/> names.")
    w("    /// With <see cref=\"GemmArgs.KSplit\"/> &gt; 0, group z multiplies K range [z·KSplit, (z+1)·KSplit) into c[z·M·N ..].")
    w("    /// </summary>")
    w("    public static void Kernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias, GemmArgs p)")
    w("    {")
    w("        var smem = SharedMemory.Allocate<float>(2 * Stage);   // two stages of [A tile [k][m] | B tile [k][n]]")
    w("        var smem4 = smem.Cast<Vec4>();")
    w("        int tid = Group.IdxX;")
    w("        int warp = tid / 32, lane = tid % 32;")
    w("        int ty = warp / 2 * 4 + lane / 8, tx = warp % 2 * 8 + lane % 8;   // a warp: 4 ty x 8 tx")
    w("        int row0 = Grid.IdxY * Tile, col0 = Grid.IdxX * Tile;")
    w("        bool fullMN = row0 + Tile <= p.M && col0 + Tile <= p.N;")
    w("        int kBegin = Grid.IdxZ * p.KSplit;")
    w("        int k = p.KSplit == 0 ? p.K : p.K - kBegin < p.KSplit ? p.K - kBegin : p.KSplit;   // this group's K")
    w("        long cBase = (long)Grid.IdxZ * p.M * p.N;")
    w("        var sa = MakeStager(p.Layout != (int)GemmLayout.AtB, tid, row0, p.M, p.K, kBegin);")
    w("        var sb = MakeStager(p.Layout == (int)GemmLayout.ABt, tid, col0, p.N, p.K, kBegin);")
    w("        int steps = (k + KStep - 1) / KStep;")
    w("")
    rows = []
    for r in range(8):
        rows.append(", ".join(f"{acc(r, cc)} = 0" for cc in range(8)))
    for line in rows:
        w(f"        float {line};")
    w("")
    w("        // Stage 0 <- K-step 0.")
    w("        bool full0 = fullMN && KStep <= k;")
    w("        StoreTile(smem, 0, sa, LoadTile(a, sa, 0, k, full0));")
    w("        StoreTile(smem, TileFloats, sb, LoadTile(b, sb, 0, k, full0));")
    w("        Group.Barrier();")
    w("        for (int t = 0; t < steps; t++)")
    w("        {")
    w("            // Fetch K-step t+1 into registers now; its loads complete while this step multiplies.")
    w("            bool more = t + 1 < steps;")
    w("            int k1 = (t + 1) * KStep;")
    w("            Vec4 na = default, nb = default;")
    w("            if (more)")
    w("            {")
    w("                bool full = fullMN && k1 + KStep <= k;")
    w("                na = LoadTile(a, sa, k1, k, full);")
    w("                nb = LoadTile(b, sb, k1, k, full);")
    w("            }")
    w("            int ia = (t & 1) * (Stage / 4) + ty, ib = (t & 1) * (Stage / 4) + TileFloats / 4 + tx;   // float4 indices")
    for kk in range(KSTEP):
        off = kk * PITCH4
        plus = lambda extra: f" + {off + extra}" if off + extra else ""
        decl = "Vec4 " if kk == 0 else ""
        w(f"            // k = {kk}")
        w(f"            {decl}a0 = smem4[ia{plus(0)}]; {decl}a1 = smem4[ia{plus(16)}];")
        w(f"            {decl}b0 = smem4[ib{plus(0)}]; {decl}b1 = smem4[ib{plus(16)}];")
        for r in range(8):
            w("            " + " ".join(f"{acc(r, cc)} += {frag('a', r)} * {frag('b', cc)};" for cc in range(8)))
    w("            if (more)")
    w("            {")
    w("                int next = ((t + 1) & 1) * Stage;")
    w("                StoreTile(smem, next, sa, na);")
    w("                StoreTile(smem, next + TileFloats, sb, nb);")
    w("            }")
    w("            Group.Barrier();")
    w("        }")
    w("")
    w("        // Epilogue: rows ty·4+i and 64+ty·4+i, columns tx·4 .. +3 and 64+tx·4 .. +3.")
    w("        int colA = col0 + tx * 4, colB = colA + 64;")
    w("        Vec4 biasA = LoadBias(bias, p, colA), biasB = LoadBias(bias, p, colB);")
    for r in range(8):
        row = f"row0 + ty * 4 + {r}" if r < 4 else f"row0 + 64 + ty * 4 + {r - 4}"
        for q, (col, bq) in enumerate((("colA", "biasA"), ("colB", "biasB"))):
            vals = ", ".join(acc(r, q * 4 + j) for j in range(4))
            w(f"        StoreQuad(c, cBase, p, {row}, {col}, fullMN, {bq}, {vals});")
    w("    }")
    return o


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "Gemm.Kernel.g.cs")
    lines = [
        "// <auto-generated>",
        "// Written by kernels/Tdsm.Kernels/gen/gen_gemm.py: edit the script, not this file.",
        "// </auto-generated>",
        "using ILGPU;",
        "",
        "namespace Tdsm.Kernels;",
        "",
        "public static partial class Gemm",
        "{",
    ] + kernel() + ["}", ""]
    with open(out, "w", newline="\n") as f:
        f.write("\n".join(lines))
    print(f"wrote {os.path.normpath(out)} ({len(lines)} lines)")


if __name__ == "__main__":
    main()
