"""The tensor-core compute core shared by tensorcore_gemm.py and tensorcore_conv.py: the accumulator names
and one k group of a warp's 4x4 mma tiles (64x32), as inline PTX on CUDA and as the simulator emulation
that gathers every lane's fragments once per k group (Regs16 / Regs8 in Mma.cs)."""

MT, NT = 4, 4  # mma tiles per warp: 4 (M, 16 rows each) x 4 (N, 8 columns each)


def acc(mi, ni, r):
    """Accumulator register r (0..3) of mma tile (mi, ni)."""
    return f"c{mi}{ni}{r}"


def mma_k_group(w, cls, gi, stride):
    """Emits k group `gi` of a K-step: fragment loads from the shared tiles sa / sb (ulong rows of `stride`,
    thread offsets af / bf), then the 16 mma of class `cls` (Bf16 or Tf32) into the accumulators."""
    w(f"            // k group {gi}")
    w("            {")
    for mi in range(MT):
        w(f"                ulong u{mi} = sa[af + {mi * 16 * stride + gi * 4}], v{mi} = sa[af + {(mi * 16 + 8) * stride + gi * 4}];")
    for ni in range(NT):
        w(f"                ulong q{ni} = sb[bf + {ni * 8 * stride + gi * 4}];")
    for mi in range(MT):
        w(f"                uint a{mi}0 = (uint)u{mi}, a{mi}1 = (uint)v{mi}, a{mi}2 = (uint)(u{mi} >> 32), a{mi}3 = (uint)(v{mi} >> 32);")
    for ni in range(NT):
        w(f"                uint b{ni}0 = (uint)q{ni}, b{ni}1 = (uint)(q{ni} >> 32);")
    mma_tiles(w, cls)
    w("            }")


def mma_tiles(w, cls, mt=MT, nt=NT):
    """Emits the mt x nt mma of class `cls` on the fragment registers a{mi}{r} / b{ni}{r} already in scope: inline PTX
    on CUDA, else the emulation with one gather of each operand's fragments per k group (B in a Regs8 for 4 column
    tiles, a Regs16 for 8)."""
    w("                if (CudaAsm.IsSupported)")
    w("                {")
    for mi in range(mt):
        for ni in range(nt):
            w(f"                    {cls}.Mma(ref {acc(mi,ni,0)}, ref {acc(mi,ni,1)}, ref {acc(mi,ni,2)}, ref {acc(mi,ni,3)}, a{mi}0, a{mi}1, a{mi}2, a{mi}3, b{ni}0, b{ni}1);")
    w("                }")
    w("                else")
    w("                {")
    w(f"                    // The {mt * nt} mma of {cls}.Mma's emulation, with one gather per k group (simulator shuffles are slow):")
    w("                    // rows g / g+8 of A from lanes 4g+j, columns 2t / 2t+1 of B from lanes 8t+j / 8t+4+j.")
    assert mt == 4 and nt in (4, 8)
    w("                    var fa = new Regs16 { " + ", ".join(f"R{4*mi+r} = a{mi}{r}" for mi in range(mt) for r in range(4)) + " };")
    w(f"                    var fb = new {'Regs8' if nt == 4 else 'Regs16'} {{ " + ", ".join(f"R{2*ni+r} = b{ni}{r}" for ni in range(nt) for r in range(2)) + " };")
    for j in range(4):
        w(f"                    var ra{j} = Warp.Shuffle(fa, 4 * g + {j}); var rp{j} = Warp.Shuffle(fb, 8 * t + {j}); var rq{j} = Warp.Shuffle(fb, 8 * t + {4 + j});")
    for mi in range(mt):
        for ni in range(nt):
            for r in range(4):
                ia, ia2 = 4 * mi + (r >> 1), 4 * mi + 2 + (r >> 1)
                src = "rp" if r % 2 == 0 else "rq"
                terms = " + ".join(f"{cls}.Dot(ra{j}.R{ia}, {src}{j}.R{2*ni}) + {cls}.Dot(ra{j}.R{ia2}, {src}{j}.R{2*ni+1})" for j in range(4))
                w(f"                    {acc(mi,ni,r)} = (float)({acc(mi,ni,r)} + {terms});")
    w("                }")
