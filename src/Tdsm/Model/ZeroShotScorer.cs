using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>
/// Zero-shot scoring (TDSM_SPEC.md section 5): for each sample n, candidate class k and fixed
/// noise j, score[n,k] += mean_c (DiT(q_sample(z_n, eps_j, t_test), t_test, z_g_k, z_l_k) - eps_j)²;
/// the prediction is argmin_k. Rows (sample × candidate) go through the DiT in chunks, forward-only
/// (blocks share their buffers), with every class-only part of the forward (c_k, the adaLN
/// modulations, the text-stream input and the first block's text q/k/v) computed once per class
/// per <see cref="Score"/> call and gathered per row (<see cref="DiT.ForwardWithClassConstants"/>).
/// </summary>
public sealed class ZeroShotScorer
{
    private readonly DiT _model;
    private readonly int _chunkRows;
    private readonly DiTActivations _acts;
    private readonly Tensor _z0, _t, _noisy, _classIndex, _pred, _score;
    private Tensor? _epsTiles, _epsRows; // (J, chunkRows, C_in) and (J, C_in): the noises, uploaded once per Score call
    private int _noiseCapacity;
    private readonly float[] _alphas;
    private DiTClassConstants? _constants;

    /// <param name="model">The trained DiT.</param>
    /// <param name="chunkRows">How many (sample, candidate) rows go through the network at once.</param>
    public ZeroShotScorer(DiT model, int chunkRows = 256)
    {
        _model = model;
        _chunkRows = chunkRows;
        var c = model.Config;
        var o = model.Ops;
        _acts = model.CreateInferenceActivations(chunkRows);
        _z0 = o.Allocate(chunkRows, c.InChannels); _t = o.Allocate(chunkRows);
        _noisy = o.Allocate(chunkRows, c.InChannels); _classIndex = o.Allocate(chunkRows); _pred = o.Allocate(chunkRows, c.InChannels);
        _score = o.Allocate(chunkRows);
        _alphas = NoiseSchedule.AlphasCumprod(c.Steps, c.BetaStart, c.BetaEnd);
        var tt = new float[chunkRows];
        Array.Fill(tt, c.TTest);
        o.Upload(tt, _t);
    }

    /// <summary>
    /// Scores (N, K): features (N, C_in), candidates = the text table's classes (all of them),
    /// noises (J, C_in). Optional progress receives the fraction of rows done. The class constants
    /// are recomputed at every call, so the model may have been trained further in between.
    /// </summary>
    public double[,] Score(ReadOnlySpan<float> features, int n, TextTable candidates, ReadOnlySpan<float> noises, IProgress<double>? progress = null,
        CancellationToken cancel = default)
    {
        var c = _model.Config;
        var o = _model.Ops;
        int cin = c.InChannels, k = candidates.Classes, j = noises.Length / cin;
        if (features.Length != n * cin) throw new ArgumentException($"features: expected {n}x{cin} values, got {features.Length}");
        if (noises.Length != j * cin || j == 0) throw new ArgumentException($"noises: expected J x {cin} values, got {noises.Length}");
        if (candidates.Cond != c.CondSize || candidates.LocalTokens != c.LocalTokens)
            throw new ArgumentException($"candidates: text features are {candidates.LocalTokens}+1 tokens x {candidates.Cond}, the model expects {c.LocalTokens}+1 x {c.CondSize}");
        var scores = new double[n, k];
        if (n == 0 || k == 0) return scores;
        // Buffers are never freed on a backend, so the cache only grows (to the largest candidate set seen).
        if (_constants is null || _constants.Capacity < k) _constants = _model.CreateClassConstants(k);
        _model.PrecomputeClassConstants(_constants, candidates.Global, candidates.Local, k);
        long total = (long)n * k, done = 0;
        var rowSample = new int[_chunkRows];
        var rowClass = new int[_chunkRows];
        var hostClass = new float[_chunkRows];
        var hostZ = new float[_chunkRows * cin];
        var hostScore = new float[_chunkRows];
        // Every row of a chunk sees the same noise j: tile each noise over the chunk once, not per chunk.
        if (_epsTiles is null || _noiseCapacity < j)
        {
            _epsTiles = o.Allocate(j, _chunkRows, cin);
            _epsRows = o.Allocate(j, cin);
            _noiseCapacity = j;
        }
        var tiles = new float[j * _chunkRows * cin];
        for (int jj = 0; jj < j; jj++)
            for (int r = 0; r < _chunkRows; r++) noises.Slice(jj * cin, cin).CopyTo(tiles.AsSpan((jj * _chunkRows + r) * cin, cin));
        o.Upload(tiles, o.View(_epsTiles, 0, j, _chunkRows, cin));
        o.Upload(noises, o.View(_epsRows!, 0, j, cin));
        var eps = Enumerable.Range(0, j).Select(jj => o.View(_epsTiles, jj * _chunkRows * cin, _chunkRows, cin)).ToArray();
        var epsRow = Enumerable.Range(0, j).Select(jj => o.View(_epsRows!, jj * cin, cin)).ToArray();
        for (long start = 0; start < total; start += _chunkRows)
        {
            cancel.ThrowIfCancellationRequested();
            int rows = (int)Math.Min(_chunkRows, total - start);
            for (int r = 0; r < rows; r++)
            {
                long idx = start + r;
                rowSample[r] = (int)(idx / k);
                rowClass[r] = (int)(idx % k);
                hostClass[r] = rowClass[r];
                features.Slice(rowSample[r] * cin, cin).CopyTo(hostZ.AsSpan(r * cin, cin));
            }
            // Unused tail rows keep the previous chunk's values (valid class indices): their scores are ignored.
            o.Upload(hostZ, _z0);
            o.Upload(hostClass, _classIndex);
            for (int jj = 0; jj < j; jj++)
            {
                o.QSample(_z0, eps[jj], _t, _alphas, _noisy, _chunkRows, cin);
                _model.ForwardWithClassConstants(_acts, _noisy, _constants, _classIndex, _pred);
                o.RowMse(_pred, epsRow[jj], _score, _chunkRows, cin);
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
