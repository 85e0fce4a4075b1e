using Tdsm.Ops;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Model;

/// <summary>
/// AdamW over the DiT's flat parameter buffer with the warm-up + cosine schedule. First and second
/// moments share the parameter layout. Parameters that never receive a gradient (the last block's
/// proj_c and mlp_c) are skipped entirely, as PyTorch skips parameters whose .grad is None.
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
        _groups = model.Layout.Entries.Where(e => e.ReceivesGradient)
            .Select(e => (o.View(model.Parameters, e.Offset, e.Length), o.View(model.Gradients, e.Offset, e.Length),
                          o.View(M, e.Offset, e.Length), o.View(V, e.Offset, e.Length)))
            .ToArray();
    }

    /// <summary>One AdamW update at learning rate <paramref name="lr"/>.</summary>
    public void Step(double lr)
    {
        StepCount++;
        foreach (var (p, g, m, v) in _groups) _model.Ops.AdamWStep(p, g, m, v, lr, Config, StepCount);
    }
}
