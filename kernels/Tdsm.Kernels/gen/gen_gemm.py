#!/usr/bin/env python3
"""Writes ../Gemm.Kernel.g.cs: the body of the fp32 SIMT GEMM (see Gemm.cs for the design).

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
    # Loop order: store the staged registers, barrier, fetch the next K-step into registers, multiply.
    # The K-step is a loop over k of 4 float4 fragment loads and 64 multiply-adds, not unrolled further:
    # ILGPU's code placement moves arithmetic into the block of its use and orders it by use chain, so an
    # unrolled K-step became 64 accumulator chains over all 8 k, with every fragment of the K-step (128
    # floats) live at once. One k per block keeps 16 fragment floats live (ptxas may unroll the 8 trips).
    w("        // Registers <- K-step 0.")
    w("        bool full0 = fullMN && KStep <= k;")
    w("        Vec4 na = LoadTile(a, sa, 0, k, full0), nb = LoadTile(b, sb, 0, k, full0);")
    w("        for (int t = 0; t < steps; t++)")
    w("        {")
    w("            // Stage t&1 <- K-step t. Its last readers (step t-2) are past the previous barrier.")
    w("            int stage = (t & 1) * Stage;")
    w("            StoreTile(smem, stage, sa, na);")
    w("            StoreTile(smem, stage + TileFloats, sb, nb);")
    w("            Group.Barrier();")
    w("            // Registers <- K-step t+1 (zeros past K): the loads complete while this step multiplies.")
    w("            int k1 = (t + 1) * KStep;")
    w("            bool full = fullMN && k1 + KStep <= k;")
    w("            na = LoadTile(a, sa, k1, k, full);")
    w("            nb = LoadTile(b, sb, k1, k, full);")
    w("            // This thread's fragments of the stage as views: each read is the view's base plus an offset.")
    w("            var fa = smem4.SubView(stage / 4 + ty);")
    w("            var fb = smem4.SubView((stage + TileFloats) / 4 + tx);")
    w("            for (int kk = 0; kk < KStep * (Pitch / 4); kk += Pitch / 4)")
    w("            {")
    w("                Vec4 a0 = fa[kk], a1 = fa[kk + 16], b0 = fb[kk], b1 = fb[kk + 16];")
    for r in range(8):
        w("                " + " ".join(f"{acc(r, cc)} += {frag('a', r)} * {frag('b', cc)};" for cc in range(8)))
    w("            }")
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
