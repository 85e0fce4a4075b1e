using System.Diagnostics;
using System.Globalization;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Ops;

/// <summary>
/// Where a profile's marks come from: a point recorded in the backend's queue after each op (a GPU
/// event on the device; the host clock on the synchronous CPU tiers).
/// </summary>
public interface IOpClock
{
    /// <summary>Records a point after everything queued so far.</summary>
    object Mark();

    /// <summary>Milliseconds from mark <paramref name="from"/> to mark <paramref name="to"/> (may wait until <paramref name="to"/> is reached).</summary>
    double Milliseconds(object from, object to);

    /// <summary>Frees a mark once it has been measured.</summary>
    void Release(object mark);
}

/// <summary>The host clock: right for backends whose ops finish before they return (reference, cpu).</summary>
public sealed class HostOpClock : IOpClock
{
    public object Mark() => Stopwatch.GetTimestamp();
    public double Milliseconds(object from, object to) => Stopwatch.GetElapsedTime((long)from, (long)to).TotalMilliseconds;
    public void Release(object mark) { }
}

/// <summary>One row of a profile: an op at one shape.</summary>
/// <param name="Op">The op and, for the shaped ones, its sizes (e.g. "Linear 18432x768->3072").</param>
/// <param name="Calls">How many times it ran.</param>
/// <param name="Milliseconds">Total time between the mark before and the mark after each call.</param>
public sealed record OpTime(string Op, int Calls, double Milliseconds);

/// <summary>
/// The marks of one profiled span: <see cref="Begin"/> marks the queue, <see cref="Record"/> marks it
/// after an op, <see cref="Collect"/> charges each op the interval from the previous mark to its own.
/// On a GPU that interval is the op's kernels plus any time the device sat idle waiting for the host
/// to launch them (launch gaps), so the total equals the wall time of the profiled span. Outside a
/// span nothing is recorded.
/// </summary>
public sealed class OpTimeline(IOpClock clock)
{
    private readonly List<(string Op, object Mark)> _marks = [];
    private object? _start;

    /// <summary>Starts (or restarts) a span: drops what was recorded and marks the queue.</summary>
    public void Begin()
    {
        Drop();
        _start = clock.Mark();
    }

    /// <summary>Marks the queue after <paramref name="op"/> (nothing outside a span).</summary>
    public void Record(string op)
    {
        if (_start is not null) _marks.Add((op, clock.Mark()));
    }

    /// <summary>Ends the span: the time of every op since <see cref="Begin"/>, grouped by name, most expensive first (waits for the last mark).</summary>
    public IReadOnlyList<OpTime> Collect()
    {
        if (_start is null) throw new InvalidOperationException("Collect without Begin");
        var rows = new Dictionary<string, (int Calls, double Ms)>();
        object previous = _start;
        foreach (var (op, mark) in _marks)
        {
            double ms = clock.Milliseconds(previous, mark);
            rows[op] = rows.TryGetValue(op, out var r) ? (r.Calls + 1, r.Ms + ms) : (1, ms);
            previous = mark;
        }
        Drop();
        return rows.Select(kv => new OpTime(kv.Key, kv.Value.Calls, kv.Value.Ms)).OrderByDescending(r => r.Milliseconds).ToArray();
    }

    private void Drop()
    {
        if (_start is not null) clock.Release(_start);
        foreach (var (_, mark) in _marks) clock.Release(mark);
        _marks.Clear();
        _start = null;
    }
}

/// <summary>
/// The DiT op set with an <see cref="OpTimeline"/>: runs another op set and records every op (with
/// its sizes where they say which GEMM or block it is), so a bench can say where the time went.
/// Costs one event per op inside a span, a null check outside; for a few profiled steps, not for training runs.
/// </summary>
public sealed class ProfiledOps(IOps inner, IOpClock clock) : IOps
{
    /// <summary>The span's marks: Begin before the profiled work, Collect after.</summary>
    public OpTimeline Timeline { get; } = new(clock);

    public string Name => inner.Name;

    private void Done(string op) => Timeline.Record(op);

    private static string Dims(params int[] d) => string.Join("x", d.Select(v => v.ToString(CultureInfo.InvariantCulture)));

    public IDisposable BindParameters(Tensor parameters) => inner.BindParameters(parameters);
    public Tensor Allocate(params int[] shape) => inner.Allocate(shape);
    public Tensor View(Tensor storage, int offset, params int[] shape) => inner.View(storage, offset, shape);
    public void Upload(ReadOnlySpan<float> source, Tensor destination) { inner.Upload(source, destination); Done("Upload"); }
    public void Download(Tensor source, Span<float> destination) { inner.Download(source, destination); Done("Download"); }
    public void Zero(Tensor t) { inner.Zero(t); Done("Zero"); }
    public void Add(Tensor a, Tensor b, Tensor y) { inner.Add(a, b, y); Done("Add"); }
    public void AddBroadcastRows(Tensor y, Tensor bias, int rows) { inner.AddBroadcastRows(y, bias, rows); Done("AddBroadcastRows"); }
    public void SumRowsInto(Tensor dy, Tensor db, int rows) { inner.SumRowsInto(dy, db, rows); Done($"SumRowsInto {Dims(rows, db.Length)}"); }

    public void Linear(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF)
    {
        inner.Linear(x, w, b, y, rows, inF, outF);
        Done($"Linear {Dims(rows, inF)}->{outF}");
    }

    public void LinearGelu(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF)
    {
        inner.LinearGelu(x, w, b, y, rows, inF, outF);
        Done($"LinearGelu {Dims(rows, inF)}->{outF}");
    }

    public void Mlp(Tensor x, Tensor w1, Tensor? b1, Tensor hidden, Tensor w2, Tensor? b2, Tensor y, int rows, int inF, int hiddenF, int outF)
    {
        inner.Mlp(x, w1, b1, hidden, w2, b2, y, rows, inF, hiddenF, outF);
        Done($"Mlp {Dims(rows, inF)}->{hiddenF}->{outF}");
    }

    public void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, int rows, int inF, int outF, bool accumulateDx)
    {
        inner.LinearBackward(dy, x, w, dx, dw, db, rows, inF, outF, accumulateDx);
        Done($"LinearBackward {Dims(rows, inF)}->{outF}{(dx is null ? " (no dx)" : "")}");
    }

    public void LinearBackwardGelu(Tensor dy, Tensor x, Tensor w, Tensor pre, Tensor dPre, Tensor dw, Tensor? db, int rows, int inF, int outF)
    {
        inner.LinearBackwardGelu(dy, x, w, pre, dPre, dw, db, rows, inF, outF);
        Done($"LinearBackwardGelu {Dims(rows, inF)}->{outF}");
    }

    public void Silu(Tensor x, Tensor y) { inner.Silu(x, y); Done("Silu"); }
    public void SiluBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate) { inner.SiluBackward(x, dy, dx, accumulate); Done("SiluBackward"); }
    public void GeluTanh(Tensor x, Tensor y) { inner.GeluTanh(x, y); Done($"GeluTanh {x.Length}"); }
    public void GeluTanhBackward(Tensor x, Tensor dy, Tensor dx, bool accumulate) { inner.GeluTanhBackward(x, dy, dx, accumulate); Done($"GeluTanhBackward {x.Length}"); }

    public void LayerNormModulate(Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor y, Tensor mean, Tensor rstd, int b, int n, int h)
    {
        inner.LayerNormModulate(x, mod, chunks, shiftChunk, scaleChunk, y, mean, rstd, b, n, h);
        Done($"LayerNormModulate {Dims(b, n, h)}");
    }

    public void LayerNormModulateBackward(Tensor dy, Tensor x, Tensor mod, int chunks, int shiftChunk, int scaleChunk, Tensor mean, Tensor rstd,
        Tensor dx, Tensor dmod, int b, int n, int h, bool accumulateDx)
    {
        inner.LayerNormModulateBackward(dy, x, mod, chunks, shiftChunk, scaleChunk, mean, rstd, dx, dmod, b, n, h, accumulateDx);
        Done($"LayerNormModulateBackward {Dims(b, n, h)}");
    }

    public void GatedResidual(Tensor x, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor output, int b, int n, int h)
    {
        inner.GatedResidual(x, mod, chunks, gateChunk, y, output, b, n, h);
        Done($"GatedResidual {Dims(b, n, h)}");
    }

    public void GatedResidualBackward(Tensor dout, Tensor mod, int chunks, int gateChunk, Tensor y, Tensor dy, Tensor dmod, int b, int n, int h)
    {
        inner.GatedResidualBackward(dout, mod, chunks, gateChunk, y, dy, dmod, b, n, h);
        Done($"GatedResidualBackward {Dims(b, n, h)}");
    }

    public void GatedResidualLayerNormModulate(Tensor x, Tensor gateMod, int gateChunks, int gateChunk, Tensor y, Tensor sum,
        Tensor lnMod, int lnChunks, int shiftChunk, int scaleChunk, Tensor ln, Tensor mean, Tensor rstd, int b, int n, int h)
    {
        inner.GatedResidualLayerNormModulate(x, gateMod, gateChunks, gateChunk, y, sum, lnMod, lnChunks, shiftChunk, scaleChunk, ln, mean, rstd, b, n, h);
        Done($"GatedResidualLayerNormModulate {Dims(b, n, h)}");
    }

    public void JointAttention(Tensor qkvX, Tensor qkvU, Tensor probs, Tensor outX, Tensor outU, int b, int l, int h, int heads)
    {
        inner.JointAttention(qkvX, qkvU, probs, outX, outU, b, l, h, heads);
        Done($"JointAttention {Dims(b, l + 1, h)}");
    }

    public void JointAttentionSkeletonRow(Tensor qkvX, Tensor textKv, int textKvWidth, Tensor outX, int b, int l, int h, int heads)
    {
        inner.JointAttentionSkeletonRow(qkvX, textKv, textKvWidth, outX, b, l, h, heads);
        Done($"JointAttentionSkeletonRow {Dims(b, l + 1, h)}");
    }

    public void JointAttentionSkeletonRowFromText(Tensor qkvX, Tensor hu, Tensor wKv, Tensor bKv, Tensor scratch, Tensor outX, int b, int l, int h, int heads)
    {
        inner.JointAttentionSkeletonRowFromText(qkvX, hu, wKv, bKv, scratch, outX, b, l, h, heads);
        Done($"JointAttentionSkeletonRowFromText {Dims(b, l + 1, h)}");
    }

    public void JointAttentionBackward(Tensor dOutX, Tensor dOutU, Tensor qkvX, Tensor qkvU, Tensor probs, Tensor dqkvX, Tensor dqkvU, int b, int l, int h, int heads)
    {
        inner.JointAttentionBackward(dOutX, dOutU, qkvX, qkvU, probs, dqkvX, dqkvU, b, l, h, heads);
        Done($"JointAttentionBackward {Dims(b, l + 1, h)}");
    }

    public void TimestepEmbedding(Tensor t, Tensor emb, int b) { inner.TimestepEmbedding(t, emb, b); Done("TimestepEmbedding"); }

    public void QSample(Tensor z0, Tensor eps, Tensor t, ReadOnlySpan<float> alphasCumprod, Tensor zt, int b, int c)
    {
        inner.QSample(z0, eps, t, alphasCumprod, zt, b, c);
        Done("QSample");
    }

    public void TdLoss(Tensor pred, Tensor eps, Tensor mask, Tensor pos, Tensor neg, Tensor dpred, Tensor loss, int b, int c, double margin, double lambda)
    {
        inner.TdLoss(pred, eps, mask, pos, neg, dpred, loss, b, c, margin, lambda);
        Done("TdLoss");
    }

    public void RowMse(Tensor pred, Tensor eps, Tensor score, int b, int c, bool accumulate) { inner.RowMse(pred, eps, score, b, c, accumulate); Done("RowMse"); }
    public void ArgMinRows(Tensor scores, Tensor index, int rows, int cols) { inner.ArgMinRows(scores, index, rows, cols); Done("ArgMinRows"); }

    public void AdamWStep(Tensor p, Tensor g, Tensor m, Tensor v, double lr, AdamWConfig cfg, int step)
    {
        inner.AdamWStep(p, g, m, v, lr, cfg, step);
        Done($"AdamWStep {p.Length}");
    }

    public void GatherRows(Tensor table, ReadOnlySpan<int> index, Tensor output, int width) { inner.GatherRows(table, index, output, width); Done("GatherRows"); }
    public void GatherRows(Tensor table, Tensor index, Tensor output, int width) { inner.GatherRows(table, index, output, width); Done("GatherRows"); }
    public void Copy(Tensor source, Tensor destination) { inner.Copy(source, destination); Done("Copy"); }
    public void SampleNormal(Tensor destination, ulong seed, ulong stream) { inner.SampleNormal(destination, seed, stream); Done("SampleNormal"); }
    public void SampleBelow(Tensor destination, int n, ulong seed, ulong stream) { inner.SampleBelow(destination, n, seed, stream); Done("SampleBelow"); }
    public void NotEqual(Tensor a, Tensor b, Tensor mask) { inner.NotEqual(a, b, mask); Done("NotEqual"); }
}
