using BenchmarkDotNet.Running;
using Tdsm.Benchmarks.Gpu;

namespace Tdsm.Benchmarks;

public static class Program
{
    // `gemm-probe ...` times the GEMM kernels quickly (and under Nsight Compute); anything else goes to BenchmarkDotNet.
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gemm-probe")
        {
            try { return GemmProbe.Run(args); }
            catch (ArgumentException e) { Console.Error.WriteLine($"gemm-probe: {e.Message}"); return 2; }
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
