using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>What one <see cref="ZeroShotScorer.Score"/> call produced.</summary>
/// <param name="Scores">(N, K) summed denoising errors, lower is better.</param>
/// <param name="Predictions">(N) argmin_k of each sample's scores, computed on the backend.</param>
public sealed record ZeroShotScores(double[,] Scores, int[] Predictions);

/// <summary>
/// Zero-shot scoring (TDSM_SPEC.md section 5): for each sample n, candidate class k and fixed
/// noise j, score[n,k] += mean_c (DiT(q_sample(z_n, eps_j, t_test), t_test, z_g_k, z_l_k) - eps_j)²;
/// the prediction is argmin_k. Rows (sample × candidate), flattened as n·K + k, go through the DiT
/// in chunks of equal size (<see cref="BalancedChunkRows"/>), forward-only (blocks share their buffers), with every class-only part of the forward
/// (c_k, the adaLN modulations, the text-stream input and the first block's text q/k/v) computed
/// once per class per <see cref="Score"/> call and gathered per row
/// (<see cref="DiT.ForwardWithClassConstants"/>). The features, the row indices and the noises go
/// to the backend once per call; the scores accumulate there and the argmin runs there, so the
/// chunks queue without a host round trip and only (N, K) scores and N predictions come back.
/// </summary>
public sealed class ZeroShotScorer
{
    private readonly DiT _model;
    private readonly int _chunkRows;
    private readonly DiTActivations _acts;
    private readonly Tensor _t, _z0, _noisy, _pred;
    private Tensor? _epsRows; // (J, C_in): the noises, uploaded once per Score call and broadcast over a chunk's rows
    private Tensor? _features, _rowSample, _rowClass, _scores, _argmin; // per-call inputs and outputs, grown on demand
    private readonly float[] _alphas;
    private DiTClassConstants? _constants;

    /// <param name="model">The trained DiT.</param>
    /// <param name="chunkRows">How many (sample, candidate) rows go through the network at once.</param>
    public ZeroShotScorer(DiT model, int chunkRows = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkRows, 1);
        _model = model;
        _chunkRows = chunkRows;
        var c = model.Config;
        var o = model.Ops;
        _acts = model.CreateInferenceActivations(chunkRows);
        _z0 = o.Allocate(chunkRows, c.InChannels); _t = o.Allocate(chunkRows);
        _noisy = o.Allocate(chunkRows, c.InChannels); _pred = o.Allocate(chunkRows, c.InChannels);
        _alphas = NoiseSchedule.AlphasCumprod(c.Steps, c.BetaStart, c.BetaEnd);
        var tt = new float[chunkRows];
        Array.Fill(tt, c.TTest);
        o.Upload(tt, _t);
    }

    /// <summary>
    /// Scores (N, K) and predictions: features (N, C_in), candidates = the text table's classes (all
    /// of them), noises (J, C_in). Optional progress receives the fraction of rows queued. The class
    /// constants are recomputed at every call, so the model may have been trained further in between.
    /// </summary>
    public ZeroShotScores Score(ReadOnlySpan<float> features, int n, TextTable candidates, ReadOnlySpan<float> noises, IProgress<double>? progress = null,
        CancellationToken cancel = default)
    {
        var c = _model.Config;
        var o = _model.Ops;
        int cin = c.InChannels, k = candidates.Classes, j = noises.Length / cin;
        if (features.Length != n * cin) throw new ArgumentException($"features: expected {n}x{cin} values, got {features.Length}");
        if (noises.Length != j * cin || j == 0) throw new ArgumentException($"noises: expected J x {cin} values, got {noises.Length}");
        if (candidates.Cond != c.CondSize || candidates.LocalTokens != c.LocalTokens)
            throw new ArgumentException($"candidates: text features are {candidates.LocalTokens}+1 tokens x {candidates.Cond}, the model expects {c.LocalTokens}+1 x {c.CondSize}");
        if (n == 0 || k == 0) return new ZeroShotScores(new double[n, k], new int[n]);
        long total = (long)n * k;
        if (total > 1 << 24) throw new ArgumentException($"{n} samples x {k} candidates = {total} rows; at most 2^24 per call (float row indices): score in parts");
        // The weights do not change during a call: a tier may keep a derived copy (the GPU's packed bf16 weights).
        using var bound = o.BindParameters(_model.Parameters);
        // Buffers are never freed on a backend, so the caches only grow (to the largest call seen).
        if (_constants is null || _constants.Capacity < k) _constants = _model.CreateClassConstants(k);
        _model.PrecomputeClassConstants(_constants, candidates.Global, candidates.Local, k);
        int perChunk = BalancedChunkRows(total, _chunkRows);
        int chunks = (int)((total + perChunk - 1) / perChunk);
        if (_scores is null || _scores.Length < total) { _scores = o.Allocate((int)total); _rowSample = o.Allocate((int)total); _rowClass = o.Allocate((int)total); }
        if (_features is null || _features.Length < features.Length) _features = o.Allocate(features.Length);
        if (_argmin is null || _argmin.Length < n) _argmin = o.Allocate(n);
        if (_epsRows is null || _epsRows.Length < j * cin) _epsRows = o.Allocate(j, cin);
        var rowSample = new float[total];
        var rowClass = new float[total];
        for (long r = 0; r < total; r++) { rowSample[r] = (int)(r / k); rowClass[r] = (int)(r % k); }
        o.Upload(rowSample, o.View(_rowSample!, 0, (int)total));
        o.Upload(rowClass, o.View(_rowClass!, 0, (int)total));
        o.Upload(features, o.View(_features, 0, n, cin));
        o.Upload(noises, o.View(_epsRows, 0, j, cin));
        var epsRow = Enumerable.Range(0, j).Select(jj => o.View(_epsRows, jj * cin, cin)).ToArray(); // every row of a chunk sees noise j
        var chunkActs = _acts.Prefix(o, perChunk);   // views made once per call, not per chunk (itself when perChunk is every row)
        for (int chunk = 0; chunk < chunks; chunk++)
        {
            cancel.ThrowIfCancellationRequested();
            int start = chunk * perChunk, rows = (int)Math.Min(perChunk, total - start);
            // A short last chunk runs on the first rows of every buffer: no work on rows it does not have.
            var acts = rows == perChunk ? chunkActs : _acts.Prefix(o, rows);
            var z0 = Rows(_z0, rows, cin); var noisy = Rows(_noisy, rows, cin); var pred = Rows(_pred, rows, cin); var t = Rows(_t, rows);
            var score = o.View(_scores, start, rows);
            o.GatherRows(o.View(_features, 0, n, cin), o.View(_rowSample!, start, rows), z0, cin);
            var classIndex = o.View(_rowClass!, start, rows);
            for (int jj = 0; jj < j; jj++)
            {
                o.QSample(z0, epsRow[jj], t, _alphas, noisy, rows, cin);
                _model.ForwardWithClassConstants(acts, noisy, _constants, classIndex, pred);
                o.RowMse(pred, epsRow[jj], score, rows, cin, accumulate: jj > 0);
            }
            progress?.Report((start + rows) / (double)total);
        }
        o.ArgMinRows(o.View(_scores, 0, n, k), _argmin, n, k);
        var hostScores = new float[total];
        o.Download(o.View(_scores, 0, (int)total), hostScores);
        var hostArgmin = new float[n];
        o.Download(o.View(_argmin, 0, n), hostArgmin);
        var scores = new double[n, k];
        for (int i = 0; i < n; i++)
            for (int kk = 0; kk < k; kk++) scores[i, kk] = hostScores[(long)i * k + kk];
        return new ZeroShotScores(scores, hostArgmin.Select(v => (int)v).ToArray());
    }

    /// <summary>
    /// Rows per chunk for <paramref name="total"/> rows in chunks of at most <paramref name="chunkRows"/>: the fewest chunks, of
    /// equal size rounded up to whole 128-row GEMM tiles where that stays within chunkRows. A short last chunk would run its
    /// products on a fraction of a GPU's blocks (2,048-row chunks for 7,680 rows: three, then 1,536 rows; balanced: four of 1,920).
    /// </summary>
    public static int BalancedChunkRows(long total, int chunkRows)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkRows, 1);
        if (total <= 0) return chunkRows;
        long chunks = (total + chunkRows - 1) / chunkRows;
        long per = (total + chunks - 1) / chunks, tiles = (per + 127) / 128 * 128;
        return (int)(tiles <= chunkRows ? tiles : per);
    }

    // The first rows of a (chunkRows, ...) buffer.
    private Tensor Rows(Tensor t, int rows, int width = 1) =>
        rows * width == t.Length ? t : width == 1 ? _model.Ops.View(t, 0, rows) : _model.Ops.View(t, 0, rows, width);

    /// <summary>argmin over candidates for each sample (host side, e.g. after GZSL calibration).</summary>
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
