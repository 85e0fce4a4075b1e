using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>
/// Zero-shot scoring (TDSM_SPEC.md section 5): for each sample n, candidate class k and fixed
/// noise j, score[n,k] += mean_c (DiT(q_sample(z_n, eps_j, t_test), t_test, z_g_k, z_l_k) - eps_j)²;
/// the prediction is argmin_k. Rows (sample × candidate) go through the DiT in chunks.
/// </summary>
public sealed class ZeroShotScorer
{
    private readonly DiT _model;
    private readonly int _chunkRows;
    private readonly DiTActivations _acts;
    private readonly Tensor _z0, _eps, _t, _noisy, _zg, _zl, _pred, _score, _epsRow;
    private readonly float[] _alphas;

    /// <param name="model">The trained DiT.</param>
    /// <param name="chunkRows">How many (sample, candidate) rows go through the network at once.</param>
    public ZeroShotScorer(DiT model, int chunkRows = 256)
    {
        _model = model;
        _chunkRows = chunkRows;
        var c = model.Config;
        var o = model.Ops;
        _acts = model.CreateActivations(chunkRows);
        _z0 = o.Allocate(chunkRows, c.InChannels); _eps = o.Allocate(chunkRows, c.InChannels); _t = o.Allocate(chunkRows);
        _noisy = o.Allocate(chunkRows, c.InChannels); _zg = o.Allocate(chunkRows, c.CondSize);
        _zl = o.Allocate(chunkRows, c.LocalTokens, c.CondSize); _pred = o.Allocate(chunkRows, c.InChannels);
        _score = o.Allocate(chunkRows); _epsRow = o.Allocate(c.InChannels);
        _alphas = NoiseSchedule.AlphasCumprod(c.Steps, c.BetaStart, c.BetaEnd);
        var tt = new float[chunkRows];
        Array.Fill(tt, c.TTest);
        o.Upload(tt, _t);
    }

    /// <summary>
    /// Scores (N, K): features (N, C_in), candidates = the text table's classes (all of them),
    /// noises (J, C_in). Optional progress receives the fraction of rows done.
    /// </summary>
    public double[,] Score(ReadOnlySpan<float> features, int n, TextTable candidates, ReadOnlySpan<float> noises, IProgress<double>? progress = null,
        CancellationToken cancel = default)
    {
        var c = _model.Config;
        var o = _model.Ops;
        int cin = c.InChannels, k = candidates.Classes, j = noises.Length / cin;
        if (features.Length != n * cin) throw new ArgumentException($"features: expected {n}x{cin} values, got {features.Length}");
        if (noises.Length != j * cin || j == 0) throw new ArgumentException($"noises: expected J x {cin} values, got {noises.Length}");
        var scores = new double[n, k];
        long total = (long)n * k, done = 0;
        var rowSample = new int[_chunkRows];
        var rowClass = new int[_chunkRows];
        var hostZ = new float[_chunkRows * cin];
        var hostScore = new float[_chunkRows];
        var tile = new float[_chunkRows * cin];
        for (long start = 0; start < total; start += _chunkRows)
        {
            cancel.ThrowIfCancellationRequested();
            int rows = (int)Math.Min(_chunkRows, total - start);
            for (int r = 0; r < rows; r++)
            {
                long idx = start + r;
                rowSample[r] = (int)(idx / k);
                rowClass[r] = (int)(idx % k);
                features.Slice(rowSample[r] * cin, cin).CopyTo(hostZ.AsSpan(r * cin, cin));
            }
            // Unused tail rows keep the previous chunk's values: harmless, their scores are ignored.
            o.Upload(hostZ, _z0);
            o.GatherRows(candidates.Global, rowClass.AsSpan(0, rows), o.View(_zg, 0, rows, c.CondSize), c.CondSize);
            o.GatherRows(candidates.Local, rowClass.AsSpan(0, rows), o.View(_zl, 0, rows, c.LocalTokens * c.CondSize), c.LocalTokens * c.CondSize);
            for (int jj = 0; jj < j; jj++)
            {
                var e = noises.Slice(jj * cin, cin);
                for (int r = 0; r < _chunkRows; r++) e.CopyTo(tile.AsSpan(r * cin, cin));
                o.Upload(tile, _eps);
                o.Upload(e, _epsRow);
                o.QSample(_z0, _eps, _t, _alphas, _noisy, _chunkRows, cin);
                _model.Forward(_acts, _noisy, _t, _zg, _zl, _pred);
                o.RowMse(_pred, _epsRow, _score, _chunkRows, cin);
                o.Download(_score, hostScore);
                for (int r = 0; r < rows; r++) scores[rowSample[r], rowClass[r]] += hostScore[r];
            }
            done += rows;
            progress?.Report((double)done / total);
        }
        return scores;
    }

    /// <summary>argmin over candidates for each sample.</summary>
    public static int[] Predict(double[,] scores)
    {
        int n = scores.GetLength(0), k = scores.GetLength(1);
        var pred = new int[n];
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int c = 1; c < k; c++) if (scores[i, c] < scores[i, best]) best = c;
            pred[i] = best;
        }
        return pred;
    }
}
