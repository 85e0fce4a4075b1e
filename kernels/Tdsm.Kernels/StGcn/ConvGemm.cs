using ILGPU;

namespace Tdsm.Kernels.StGcn;

/// <summary>Sizes of one temporal convolution (kt x 1 kernel, stride, zero padding on time); the 1x1 conv
/// (with temporal stride) is kt = 1, pad = 0, and the classifier is additionally T = V = 1.</summary>
public struct ConvArgs
{
    public int B, Cin, Cout, T, Tout, V, Kt, Stride, Pad;
    /// <summary>Weight gradient only: person-samples per split (grid Z = ceil(B / BatchPerSplit)).</summary>
    public int BatchPerSplit;
}

/// <summary>
/// The ST-GCN convolutions as implicit GEMMs on a 64×64 / 256-thread register tiling (4×4 per thread,
/// K-steps of 32), with the operands gathered from the (B, C, T, V) tensors instead of an im2col
/// buffer. x is (B,Cin,T,V), w (Cout,Cin,kt), y (B,Cout,Tout,V), Tout = (T + 2·pad − kt)/stride + 1.
/// <list type="bullet">
/// <item>Forward, grid z = b: y_b (Cout, Tout·V) = W (Cout, Cin·kt) · X_b[(ci,j), (to,v)] + bias, X_b = x[b,ci,to·s+j−pad,v].</item>
/// <item>Input gradient, grid z = b: dx_b (Cin, T·V) = Wᵀ[(ci), (co,j)] · dY_b[(co,j), (t,v)] with dY_b = dy[b,co,(t+pad−j)/s,v]
/// where the division is exact and in range, else 0 (skipped frames of a strided conv get 0).</item>
/// <item>Weight gradient, grid z = split: part[z] (Cout, Cin·kt) = Σ over the split's samples of dY_b · X_bᵀ;
/// <see cref="ReduceSplits"/> then adds the splits in order into dW (deterministic, no atomics).</item>
/// </list>
/// Every load is bounds-guarded, so any size works.
/// </summary>
public static class ConvGemm
{
    public const int Tile = 64;
    /// <summary>K per shared-memory stage: 32 (not the GEMM's 8), a quarter of the barriers per K, which also
    /// makes the 2-core simulator's barrier-bound runs 3-4x faster; about 16 KB of shared memory per group.</summary>
    public const int KStep = 32;
    public const int Threads = 256;

    // Row pitch of the A stage: consecutive threads store k-consecutive elements (rows kk, kk+1, ...), so a
    // pitch of 65 words puts them in different shared-memory banks (64 would be a 32-way conflict).
    private const int APitch = Tile + 1;

    /// <summary>Kernel: grid (ceil(Tout·V/64), ceil(Cout/64), B), group 256.</summary>
    public static void Forward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y, ConvArgs p) =>
        Run(x, w, bias, y, p, 0);

    /// <summary>Kernel: grid (ceil(T·V/64), ceil(Cin/64), B), group 256. dx overwritten.</summary>
    public static void InputGrad(ArrayView<float> dy, ArrayView<float> w, ArrayView<float> unused, ArrayView<float> dx, ConvArgs p) =>
        Run(dy, w, unused, dx, p, 1);

    /// <summary>Kernel: grid (ceil(Cin·kt/64), ceil(Cout/64), splits), group 256: x and dy in, part (splits, Cout, Cin·kt) out.</summary>
    public static void WeightGrad(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> unused, ArrayView<float> part, ConvArgs p) =>
        Run(x, dy, unused, part, p, 2);

    /// <summary>Thread e: dW[e] += Σ_z part[z, e].</summary>
    public static void ReduceSplits(Index1D e, ArrayView<float> part, ArrayView<float> dW, int splits, int size)
    {
        double s = 0;
        for (int z = 0; z < splits; z++) s += part[(long)z * size + e];
        dW[e] = (float)(dW[e] + s);
    }

    // mode 0: src = x, wv = w;  mode 1: src = dy, wv = w;  mode 2: src = x, wv = dy.
    private static void Run(ArrayView<float> src, ArrayView<float> wv, ArrayView<float> bias, ArrayView<float> dst, ConvArgs p, int mode)
    {
        var sa = SharedMemory.Allocate<float>(APitch * KStep); // [k][m], padded rows
        var sb = SharedMemory.Allocate<float>(Tile * KStep); // [k][n]
        int tid = Group.IdxX;
        int tx = tid % 16, ty = tid / 16;
        int row0 = Grid.IdxY * Tile, col0 = Grid.IdxX * Tile, z = Grid.IdxZ;
        int kt = p.Kt, lin = p.T * p.V, lout = p.Tout * p.V;
        int m, n, kTotal, b0 = z, nb = 1;
        if (mode == 0) { m = p.Cout; n = lout; kTotal = p.Cin * kt; }
        else if (mode == 1) { m = p.Cin; n = lin; kTotal = p.Cout * kt; }
        else
        {
            m = p.Cout; n = p.Cin * kt;
            b0 = z * p.BatchPerSplit;
            nb = p.B - b0 < p.BatchPerSplit ? p.B - b0 : p.BatchPerSplit;
            kTotal = nb * lout;
        }
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;

        for (int k0 = 0; k0 < kTotal; k0 += KStep)
        {
            for (int e = tid; e < Tile * KStep; e += Threads)
            {
                int kk = e % KStep, mm = e / KStep;
                int gm = row0 + mm, gk = k0 + kk;
                float va = 0;
                if (gm < m && gk < kTotal)
                {
                    if (mode == 0) va = wv[(long)gm * kTotal + gk];                                  // w[co, (ci,j)]
                    else if (mode == 1) va = wv[((long)(gk / kt) * p.Cin + gm) * kt + gk % kt];      // w[co, ci, j], k = (co,j)
                    else va = wv[((long)(b0 + gk / lout) * p.Cout + gm) * lout + gk % lout];        // dy[b, co, (to,v)], k = (b,(to,v))
                }
                sa[kk * APitch + mm] = va;

                int nn = e % Tile;
                kk = e / Tile;
                int gn = col0 + nn;
                gk = k0 + kk;
                float vb = 0;
                if (gn < n && gk < kTotal)
                {
                    if (mode == 0) vb = Gather(src, z, gk / kt, gk % kt, gn / p.V, gn % p.V, p);
                    else if (mode == 1)
                    {
                        int co = gk / kt, j = gk % kt, ti = gn / p.V, vi = gn % p.V;
                        int num = ti + p.Pad - j;
                        if (num >= 0 && num % p.Stride == 0 && num / p.Stride < p.Tout)
                            vb = src[(((long)z * p.Cout + co) * p.Tout + num / p.Stride) * p.V + vi];
                    }
                    else
                    {
                        int q = gk % lout;
                        vb = Gather(src, b0 + gk / lout, gn / kt, gn % kt, q / p.V, q % p.V, p);
                    }
                }
                sb[kk * Tile + nn] = vb;
            }
            Group.Barrier();
            for (int kk = 0; kk < KStep; kk++)
            {
                int o = kk * Tile, oa = kk * APitch;
                float a0 = sa[oa + ty], a1 = sa[oa + ty + 16], a2 = sa[oa + ty + 32], a3 = sa[oa + ty + 48];
                float b0v = sb[o + tx], b1 = sb[o + tx + 16], b2 = sb[o + tx + 32], b3 = sb[o + tx + 48];
                c00 += a0 * b0v; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0v; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0v; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0v; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        long cbase = (long)z * m * n;
        int hasBias = mode == 0 ? 1 : 0;
        Store(dst, bias, cbase, m, n, hasBias, row0 + ty, col0 + tx, c00, c01, c02, c03);
        Store(dst, bias, cbase, m, n, hasBias, row0 + ty + 16, col0 + tx, c10, c11, c12, c13);
        Store(dst, bias, cbase, m, n, hasBias, row0 + ty + 32, col0 + tx, c20, c21, c22, c23);
        Store(dst, bias, cbase, m, n, hasBias, row0 + ty + 48, col0 + tx, c30, c31, c32, c33);
    }

    // x[b, ci, to*s + j - pad, v], 0 outside the frames (the zero padding).
    private static float Gather(ArrayView<float> x, int b, int ci, int j, int to, int vi, ConvArgs p)
    {
        int ti = to * p.Stride + j - p.Pad;
        if (ti < 0 || ti >= p.T) return 0;
        return x[(((long)b * p.Cin + ci) * p.T + ti) * p.V + vi];
    }

    private static void Store(ArrayView<float> c, ArrayView<float> bias, long cbase, int m, int n, int hasBias, int row, int col,
        float v0, float v1, float v2, float v3)
    {
        if (row >= m) return;
        float bv = hasBias != 0 ? bias[row] : 0;
        long r = cbase + (long)row * n;
        if (col < n) c[r + col] = v0 + bv;
        if (col + 16 < n) c[r + col + 16] = v1 + bv;
        if (col + 32 < n) c[r + col + 32] = v2 + bv;
        if (col + 48 < n) c[r + col + 48] = v3 + bv;
    }
}
