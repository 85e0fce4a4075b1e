using Tdsm.Formats;
using Tdsm.Parity;

namespace Tdsm.Trainer;

/// <summary>`parity`: replays a golden fixture on a backend and prints one line per group.</summary>
public sealed class ParityCommand : ICommand
{
    public string Name => "parity";
    public string Summary => "check a backend against a golden PyTorch fixture (exit 0 only if all groups pass)";
    public string Help => """
        usage: parity --fixture FILE [--backend reference|cpu|gpu|gpu-sim]

        Recomputes everything a golden fixture holds (see ../shared/docs/TDSM_SPEC.md section 7) —
        a DiT fixture (dit_small.safetensors) or an ST-GCN fixture (stgcn_small.safetensors) —
        on the chosen backend, whatever model config the fixture's metadata describes, and prints
        one line per group with the worst relative error ||a-b||/||b|| and the tolerance.

          --fixture FILE   e.g. ../shared/fixtures/dit_small.safetensors or stgcn_small.safetensors
          --backend NAME   reference (naive oracle, default), cpu (managed SIMD tier), gpu (ILGPU on
                           CUDA), gpu-sim (the GPU kernels on ILGPU's CPU simulator; slow)

        Tolerances: forward and losses 1e-5, gradients 1e-4, one AdamW step 1e-6, predictions exact.
        Exit code: 0 when every group is within tolerance, 1 when a group fails, 2 on bad input.
        """;

    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        string path = args.Require("--fixture");
        string backend = args.Get("--backend") ?? "reference";
        args.EnsureAllUsed();
        SafeTensorsFile file;
        try { file = SafeTensorsFile.Read(path); }
        catch (TensorFormatException e) { stderr.WriteLine($"parity: {e.Message}"); return 2; }
        var ops = Backends.Create(backend);
        try { return Run(file, path, ops, stdout, stderr); }
        finally { Backends.Release(ops); }
    }

    private static int Run(SafeTensorsFile file, string path, Tdsm.Ops.IOps ops, TextWriter stdout, TextWriter stderr)
    {

        ParityReport report;
        if (DiTParity.IsDiTFixture(file)) report = DiTParity.Run(file, ops);
        else if (Tdsm.StGcn.StGcnParity.IsStGcnFixture(file))
        {
            if (ops is Tdsm.Gpu.GpuOps g)
            {
                // The device-resident encoder on the same device (CUDA or the simulator).
                using var stgcnOps = new Tdsm.Gpu.StGcn.StGcnGpuOps(g.Device);
                report = Tdsm.StGcn.StGcnParity.Run(file, stgcnOps);
            }
            else report = Tdsm.StGcn.StGcnParity.Run(file, ops.Name);
        }
        else
        {
            stderr.WriteLine($"parity: {path} is not a fixture this command knows (expected DiT tensors such as param.x_embedder.weight and in.text).");
            return 2;
        }
        foreach (var line in report.Lines()) stdout.WriteLine(line);
        return report.Passed ? 0 : 1;
    }
}
