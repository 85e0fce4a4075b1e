using BenchmarkDotNet.Running;
using Tdsm.Benchmarks.Gpu;

namespace Tdsm.Benchmarks;

public static class Program
{
    // `gemm-probe ...` times the GEMM kernels quickly (and under Nsight Compute), `attention-probe ...` the scalar and tiled
    // joint attention; anything else goes to BenchmarkDotNet.
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gemm-probe")
        {
            try { return GemmProbe.Run(args); }
            catch (ArgumentException e) { Console.Error.WriteLine($"gemm-probe: {e.Message}"); return 2; }
        }
        if (args.Length > 0 && args[0] == "attention-probe")
        {
            try { return AttentionProbe.Run(args); }
            catch (ArgumentException e) { Console.Error.WriteLine($"attention-probe: {e.Message}"); return 2; }
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
