using Tdsm.Cpu;
using Seg = System.ArraySegment<float>;

namespace Tdsm.StGcn;

// Temporal conv (kt x 1, stride s, pad p = (kt-1)/2) as GEMMs over chunks of samples, the output positions of a chunk's
// samples stacked into the rows (M = samples·Tout·V, so the small channel counts of the first layers still make tall
// GEMMs), with K = Cin*kt, Lo = Tout*V and colT[(b,to,v),(ci,j)] = x[b, ci, to*s + j - p, v] (0 outside):
//   forward  yT (Lo·n, Cout)  = colT (Lo·n, K) · Wᵀ (+ bias), W packed once per call; then y_b = yT_bᵀ;
//   dW      (Cout, K)       += dyTᵀ (Cout, Lo·n) · colT (Lo·n, K),        dyT_b = dy_bᵀ;
//   dcolT    (Lo·n, K)       = dyT (Lo·n, Cout) · W (Cout, K), W packed once per call; then col2im (dx overwritten).
// The im2col/transpose copies cost 1/Cout of the GEMMs. dBias accumulates row sums of dy.
public sealed partial class StGcnCpuOps
{
    // Floats per chunk buffer (colT, dcolT): samples are taken while their columns fit (at least one).
    private const int ChunkFloats = 1 << 21;

    private static int ChunkSamples(int b, int lo, int rows, int cout) => Math.Clamp(ChunkFloats / Math.Max(1, lo * Math.Max(rows, cout)), 1, Math.Max(1, b));

    /// <inheritdoc/>
    protected override void TemporalConvForward(Seg x, Seg w, Seg bias, Seg y, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(x, (long)b * cin * t * v, "x"); Need(w, (long)cout * rows, "w"); Need(bias, cout, "bias"); Need(y, (long)b * cout * lo, "y");
        if (b == 0 || lo == 0 || cout == 0) return;
        int per = ChunkSamples(b, lo, rows, cout);
        var colT = Scratch(2, (long)per * lo * rows);
        var yT = Scratch(1, (long)per * lo * cout);
        var packedW = PackedMatrix.Rent(w.Array!, w.Offset, cout, rows);
        try
        {
            for (int b0 = 0; b0 < b; b0 += per)
            {
                int n = Math.Min(per, b - b0);
                Im2ColT(x.Array!, x.Offset + b0 * cin * t * v, colT, n, cin, t, v, kt, stride, tout);
                Gemm.MatMulPacked(colT, 0, packedW, yT, 0, n * lo, accumulate: false, bias.Array, bias.Offset);
                Parallel.For(0, n, i => TransposeInto(yT, i * lo * cout, y.Array!, y.Offset + (b0 + i) * cout * lo, lo, cout));
            }
        }
        finally { packedW.Return(); }
    }

    /// <inheritdoc/>
    protected override void TemporalConvBackward(Seg dy, Seg x, Seg w, Seg dx, Seg dW, Seg dBias, int b, int cin, int cout, int t, int v, int kt, int stride)
    {
        int tout = Reference.Ref.TemporalOut(t, kt, stride), lo = tout * v, rows = cin * kt;
        Need(dy, (long)b * cout * lo, "dy"); Need(x, (long)b * cin * t * v, "x"); Need(dx, (long)b * cin * t * v, "dx");
        Need(dW, (long)cout * rows, "dW"); Need(dBias, cout, "dBias");
        if (b == 0) return;
        if (lo == 0 || cout == 0) { dx.AsSpan(0, b * cin * t * v).Clear(); return; }
        int per = ChunkSamples(b, lo, rows, cout);
        var colT = Scratch(2, (long)per * lo * rows);
        var dcolT = Scratch(3, (long)per * lo * rows);
        var dyT = Scratch(1, (long)per * lo * cout);
        var packedW = PackedMatrix.RentFromKN(w.Array!, w.Offset, cout, rows); // W (Cout, K) as the B of dyT·W
        var db = new double[cout];
        try
        {
            for (int b0 = 0; b0 < b; b0 += per)
            {
                int n = Math.Min(per, b - b0);
                Parallel.For(0, n, i =>
                {
                    int dyo = dy.Offset + (b0 + i) * cout * lo;
                    TransposeInto(dy.Array!, dyo, dyT, i * lo * cout, cout, lo);
                });
                for (int i = 0; i < n; i++)
                    for (int co = 0; co < cout; co++) db[co] += SumD(dy.Array.AsSpan(dy.Offset + ((b0 + i) * cout + co) * lo, lo));
                Im2ColT(x.Array!, x.Offset + b0 * cin * t * v, colT, n, cin, t, v, kt, stride, tout);
                Gemm.MatMulAtB(dyT, 0, colT, 0, dW.Array!, dW.Offset, cout, rows, n * lo, accumulate: true);
                Gemm.MatMulPacked(dyT, 0, packedW, dcolT, 0, n * lo, accumulate: false);
                Col2ImT(dcolT, dx.Array!, dx.Offset + b0 * cin * t * v, n, cin, t, v, kt, stride, tout);
            }
        }
        finally { packedW.Return(); }
        for (int co = 0; co < cout; co++) dBias[co] += (float)db[co];
    }

    // colT (n·Tout·V, Cin*kt) for n samples of x from xo: row (b, to, v) holds, for each (ci, j), input frame to*s + j - p.
    // Per (sample, output frame) each tap's frame of a channel is read as one contiguous run of V and written down a column.
    private static unsafe void Im2ColT(float[] x, int xo, float[] colT, int n, int cin, int t, int v, int kt, int stride, int tout)
    {
        int p = (kt - 1) / 2, rows = cin * kt;
        Parallel.For(0, n * tout, q =>
        {
            int bi = q / tout, to = q % tout;
            fixed (float* px = x, pc = colT)
            {
                float* xb = px + xo + (long)bi * cin * t * v, block = pc + (long)q * v * rows;
                for (int ci = 0; ci < cin; ci++)
                    for (int j = 0; j < kt; j++)
                    {
                        int ti = to * stride + j - p;
                        float* dst = block + ci * kt + j;
                        if (ti < 0 || ti >= t) { for (int vi = 0; vi < v; vi++) dst[(long)vi * rows] = 0f; continue; }
                        float* src = xb + (long)(ci * t + ti) * v;
                        for (int vi = 0; vi < v; vi++) dst[(long)vi * rows] = src[vi];
                    }
            }
        });
    }

    // dst (cols, rows) = src (rows, cols)ᵀ, column blocks in parallel.
    private static void Transpose(float[] src, int so, float[] dst, int rows, int cols)
    {
        const int Block = 32;
        Parallel.For(0, (cols + Block - 1) / Block, cb =>
        {
            int c0 = cb * Block, c1 = Math.Min(cols, c0 + Block);
            for (int r = 0; r < rows; r++)
                for (int c = c0; c < c1; c++) dst[c * rows + r] = src[so + r * cols + c];
        });
    }

    // dst (cols, rows) at dstOff = src (rows, cols) at srcOff, in 32x32 blocks on the calling thread.
    private static void TransposeInto(float[] src, int srcOff, float[] dst, int dstOff, int rows, int cols)
    {
        const int Block = 32;
        for (int r0 = 0; r0 < rows; r0 += Block)
            for (int c0 = 0; c0 < cols; c0 += Block)
            {
                int r1 = Math.Min(rows, r0 + Block), c1 = Math.Min(cols, c0 + Block);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++) dst[dstOff + c * rows + r] = src[srcOff + r * cols + c];
            }
    }

    // dx (n, Cin, T, V) from dxo = for each input frame, the sum over kernel taps of the dcolT entries that read it (overwrites
    // dx); per (sample, channel), output frames in order and taps in order within each.
    private static unsafe void Col2ImT(float[] dcolT, float[] dx, int dxo, int n, int cin, int t, int v, int kt, int stride, int tout)
    {
        int p = (kt - 1) / 2, rows = cin * kt;
        Parallel.For(0, n * cin, q =>
        {
            int bi = q / cin, ci = q % cin;
            fixed (float* pd = dx, pc = dcolT)
            {
                float* d = pd + dxo + (long)q * t * v;
                new Span<float>(d, t * v).Clear();
                for (int to = 0; to < tout; to++)
                    for (int j = 0; j < kt; j++)
                    {
                        int ti = to * stride + j - p;
                        if (ti < 0 || ti >= t) continue;
                        float* src = pc + (long)(bi * tout + to) * v * rows + ci * kt + j, dd = d + ti * v;
                        for (int vi = 0; vi < v; vi++) dd[vi] += src[(long)vi * rows];
                    }
            }
        });
    }
}
