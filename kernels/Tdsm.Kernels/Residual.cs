using ILGPU;

namespace Tdsm.Kernels;

/// <summary>Shapes of the (B, N, H) residual ops; the gate lives at chunk G of mod (B, Chunks·H).</summary>
public struct ResidualArgs
{
    public int B, N, H, Chunks, Chunk;
}

/// <summary>
/// Additions and the adaLN gated residual. Add: y = a + b. AddBroadcastRows: y (R, W) += bias (W).
/// SumRows: db (W) += Σ_r dy (R, W), one thread per column (deterministic order).
/// Gated residual: out = x + gate[b]·y; its backward writes dy = gate·dout and accumulates
/// Σ_tokens dout·y into the gate chunk of dmod, one thread per (b, channel) looping the tokens.
/// </summary>
public static class Residual
{
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] + b[i];

    public static void AddBroadcastRows(Index1D i, ArrayView<float> y, ArrayView<float> bias, int width) => y[i] += bias[i % width];

    public static void SumRows(Index1D col, ArrayView<float> dy, ArrayView<float> db, int rows, int width)
    {
        double s = db[col];
        for (int r = 0; r < rows; r++) s += dy[(long)r * width + col];
        db[col] = (float)s;
    }

    public static void GatedForward(Index1D idx, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> output, ResidualArgs p)
    {
        int i = idx % p.H;
        int bi = idx / (p.N * p.H);
        output[idx] = x[idx] + mod[(long)bi * p.Chunks * p.H + p.Chunk * p.H + i] * y[idx];
    }

    public static void GatedBackward(Index1D idx, ArrayView<float> dout, ArrayView<float> mod, ArrayView<float> y, ArrayView<float> dy,
        ArrayView<float> dmod, ResidualArgs p)
    {
        int i = idx % p.H, bi = idx / p.H;
        long gi = (long)bi * p.Chunks * p.H + p.Chunk * p.H + i;
        float g = mod[gi];
        double acc = 0;
        for (int t = 0; t < p.N; t++)
        {
            long k = ((long)bi * p.N + t) * p.H + i;
            acc += (double)dout[k] * y[k];
            dy[k] = g * dout[k];
        }
        dmod[gi] = (float)(dmod[gi] + acc);
    }
}
