using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;

namespace Tdsm.Benchmarks;

/// <summary>A short job for a shared 2-core machine: 1 launch, 2 warm-ups, 5 measured iterations.</summary>
public sealed class ShortConfig : ManualConfig
{
    public ShortConfig() => AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(5).WithId("Short"));
}

/// <summary>For operations of a second or more: one invocation per iteration, 1 warm-up, 3 iterations.</summary>
public sealed class LongOpConfig : ManualConfig
{
    public LongOpConfig() => AddJob(Job.Dry.WithWarmupCount(1).WithIterationCount(3).WithInvocationCount(1).WithUnrollFactor(1).WithId("LongOp"));
}
