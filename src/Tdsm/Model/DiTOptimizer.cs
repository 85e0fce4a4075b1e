using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>
/// AdamW over the DiT's flat parameter buffer with the warm-up + cosine schedule. First and second
/// moments share the parameter layout. Parameters that never receive a gradient (the last block's
/// proj_c and mlp_c) are skipped entirely, as PyTorch skips parameters whose .grad is None.
/// The update is elementwise, so neighbouring parameters that all receive a gradient are updated
/// as one range: one AdamW launch per run of them (3 for the DiT) instead of one per parameter.
/// </summary>
public sealed class DiTOptimizer
{
    private readonly DiT _model;
    private readonly (Tensor P, Tensor G, Tensor M, Tensor V)[] _groups;

    public AdamWConfig Config { get; }
    public Tensor M { get; }
    public Tensor V { get; }

    /// <summary>Optimiser steps taken so far (the scheduler's s before the next step).</summary>
    public int StepCount { get; set; }

    public DiTOptimizer(DiT model, AdamWConfig config)
    {
        _model = model;
        Config = config;
        var o = model.Ops;
        M = o.Allocate(model.Layout.Count);
        V = o.Allocate(model.Layout.Count);
        Ranges = UpdatedRanges(model.Layout);
        _groups = Ranges
            .Select(r => (o.View(model.Parameters, r.Offset, r.Length), o.View(model.Gradients, r.Offset, r.Length),
                          o.View(M, r.Offset, r.Length), o.View(V, r.Offset, r.Length)))
            .ToArray();
    }

    /// <summary>The ranges AdamW updates, one per launch.</summary>
    public IReadOnlyList<(int Offset, int Length)> Ranges { get; }

    // The maximal runs of adjacent parameters that receive a gradient (registration order is buffer order).
    private static List<(int Offset, int Length)> UpdatedRanges(ParameterLayout layout)
    {
        var ranges = new List<(int Offset, int Length)>();
        foreach (var e in layout.Entries)
        {
            if (!e.ReceivesGradient || e.Length == 0) continue;
            if (ranges.Count > 0 && ranges[^1].Offset + ranges[^1].Length == e.Offset)
                ranges[^1] = (ranges[^1].Offset, ranges[^1].Length + e.Length);
            else
                ranges.Add((e.Offset, e.Length));
        }
        return ranges;
    }

    /// <summary>One AdamW update at learning rate <paramref name="lr"/>.</summary>
    public void Step(double lr)
    {
        StepCount++;
        foreach (var (p, g, m, v) in _groups) _model.Ops.AdamWStep(p, g, m, v, lr, Config, StepCount);
    }
}
