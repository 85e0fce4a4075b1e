using System.Text.Json;
using Tdsm.Formats;
using Tdsm.Model;
using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Tests.Model;

/// <summary>Writes a DiT fixture in the official layout (TDSM_SPEC.md section 7) from the reference tier, for config-independence tests.</summary>
internal static class FixtureWriter
{
    public static void Write(string path, DiTConfig cfg, int batch, int classes, ulong seed, bool corruptGradient)
    {
        var ops = new ReferenceOps();
        var model = new DiT(cfg, ops);
        var rng = new Rng(seed);
        var flat = new float[model.Layout.Count];
        rng.FillNormal(flat, 0.1);
        model.LoadParameters(flat);
        var text = new float[classes * cfg.Tokens * cfg.CondSize]; rng.FillNormal(text);
        var x0 = new float[batch * cfg.InChannels]; rng.FillNormal(x0);
        var noise = new float[batch * cfg.InChannels]; rng.FillNormal(noise);
        var t = Enumerable.Range(0, batch).Select(_ => rng.NextInt(cfg.Steps)).ToArray();
        var labels = Enumerable.Range(0, batch).Select(_ => rng.NextInt(classes)).ToArray();
        var neg = Enumerable.Range(0, batch).Select(i => i == 0 ? labels[0] : rng.NextInt(classes)).ToArray();
        var table = new TextTable(ops, text, classes, cfg.Tokens, cfg.CondSize);
        var step = new TdsmStep(model, batch);
        var list = new List<SafeTensor>();
        foreach (var e in model.Layout.Entries) list.Add(SafeTensor.FromFloat32("param." + e.Name, e.Shape, flat.AsSpan(e.Offset, e.Length)));
        list.Add(SafeTensor.FromFloat32("in.text", [classes, cfg.Tokens, cfg.CondSize], text));
        list.Add(SafeTensor.FromFloat32("in.x0", [batch, 1, cfg.InChannels], x0));
        list.Add(SafeTensor.FromFloat32("in.noise", [batch, 1, cfg.InChannels], noise));
        list.Add(SafeTensor.FromInt32("in.t", [batch], t));
        list.Add(SafeTensor.FromInt32("in.labels", [batch], labels));
        list.Add(SafeTensor.FromInt32("in.labels_neg", [batch], neg));
        foreach (var (margin, prefix) in new[] { (1.0, "out."), (0.0, "out.m0.") })
        {
            model.ZeroGradients();
            var loss = step.Run(x0, noise, t, labels, neg, table, margin, 1.0, backward: true);
            if (margin == 1.0) list.Add(F64("out.noisy", [2 * batch, 1, cfg.InChannels], Get(step.Noisy2)));
            list.Add(F64(prefix + "pred", [2 * batch, 1, cfg.InChannels], Get(step.Pred)));
            list.Add(F64(prefix + "pos", [batch], Get(step.Pos)));
            list.Add(F64(prefix + "neg", [batch], Get(step.Neg)));
            list.Add(SafeTensor.FromFloat64(prefix + "loss", DType.F64, [1], [loss.Loss]));
            list.Add(SafeTensor.FromFloat64(prefix + "loss_diff", DType.F64, [1], [loss.Diffusion]));
            list.Add(SafeTensor.FromFloat64(prefix + "loss_triplet", DType.F64, [1], [loss.Triplet]));
            var g = Get(model.Gradients);
            string gp = margin == 1.0 ? "grad." : "grad.m0.";
            foreach (var e in model.Layout.Entries)
            {
                var v = g.AsSpan(e.Offset, e.Length).ToArray();
                if (corruptGradient && e.Name == "x_embedder.weight") v[0] += 1f;
                list.Add(F64(gp + e.Name, e.Shape, v));
            }
            if (margin == 1.0)
            {
                var a = step.Activations;
                list.Add(F64("act.x_embed", [2 * batch, 1, cfg.Hidden], Get(a.X[0])));
                var u0 = Get(a.U[0]);
                for (int i = 0; i < u0.Length; i++) u0[i] -= flat[model.Layout["fl_pos_embed"].Offset + i % (cfg.LocalTokens * cfg.Hidden)];
                list.Add(F64("act.fl_embed_nopos", [2 * batch, cfg.LocalTokens, cfg.Hidden], u0));
                list.Add(F64("act.t_embed", [2 * batch, cfg.Hidden], Get(a.TEmb)));
                list.Add(F64("act.fc_embed", [2 * batch, cfg.Hidden], Get(a.FcEmb)));
                for (int i = 0; i < cfg.Depth; i++)
                {
                    list.Add(F64($"act.block{i}.x", [2 * batch, 1, cfg.Hidden], Get(a.X[i + 1])));
                    if (i < cfg.Depth - 1) list.Add(F64($"act.block{i}.cond", [2 * batch, cfg.LocalTokens, cfg.Hidden], Get(a.U[i + 1])));
                }
                var opt = new DiTOptimizer(model, new AdamWConfig(1e-3));
                opt.Step(1e-3);
                var after = Get(model.Parameters);
                foreach (var e in model.Layout.Entries) list.Add(F64("adamw1." + e.Name, e.Shape, after.AsSpan(e.Offset, e.Length).ToArray()));
                model.LoadParameters(flat);
            }
        }
        var meta = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["in_channels"] = cfg.InChannels, ["cond_size"] = cfg.CondSize, ["hidden_size"] = cfg.Hidden, ["depth"] = cfg.Depth,
            ["num_heads"] = cfg.Heads, ["mlp_ratio"] = cfg.MlpRatio, ["local_tokens"] = cfg.LocalTokens, ["num_steps"] = cfg.Steps,
            ["beta_start"] = cfg.BetaStart, ["beta_end"] = cfg.BetaEnd, ["t_test"] = cfg.TTest, ["batch"] = batch, ["num_classes"] = classes,
            ["margin"] = 1.0, ["adamw"] = new Dictionary<string, double> { ["lr"] = 1e-3, ["beta1"] = 0.9, ["beta2"] = 0.999, ["eps"] = 1e-8, ["weight_decay"] = 0.01 },
        });
        SafeTensorsFile.Write(path, list, new Dictionary<string, string> { ["config"] = meta });

        float[] Get(Tensor x) { var h = new float[x.Length]; ops.Download(x, h); return h; }
    }

    private static SafeTensor F64(string name, int[] shape, float[] v) => SafeTensor.FromFloat64(name, DType.F64, shape, v.Select(x => (double)x).ToArray());
}
