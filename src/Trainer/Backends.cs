using Tdsm.Cpu;
using Tdsm.Ops;
using Tdsm.Reference;

namespace Tdsm.Trainer;

/// <summary>Maps a backend name from the command line to an op set.</summary>
public static class Backends
{
    public static IOps Create(string name) => name switch
    {
        "reference" => new ReferenceOps(),
        "cpu" => new CpuOps(),
        "gpu" => throw new CommandLineException("the GPU backend (ILGPU) is not built yet; use --backend reference or cpu"),
        _ => throw new CommandLineException($"unknown backend '{name}' (expected reference, cpu or gpu)"),
    };
}
