using System.Runtime.ExceptionServices;

namespace Tdsm.Cpu;

/// <summary>A unit of parallel work: <see cref="Run"/> is called once for every index in [0, count).</summary>
internal interface IRangeWork
{
    /// <summary>Does the work of one index (a row block, a column panel, ...).</summary>
    void Run(int index);
}

/// <summary>
/// A tiny fork-join pool for the CPU tier that allocates nothing per call (unlike Parallel.For,
/// whose closures and tasks would show up in every classify call). ProcessorCount - 1 background
/// workers plus the caller pull indices from a shared counter. One job runs at a time: a caller
/// that finds the pool busy (another thread, or a nested call) runs its job inline, which is also
/// what concurrent classify calls want (each keeps its own core busy).
/// </summary>
internal static class CpuParallel
{
    private static readonly int Workers = Math.Max(0, Environment.ProcessorCount - 1);
    private static readonly SemaphoreSlim Go = new(0);
    private static readonly ManualResetEventSlim Done = new(false);
    private static IRangeWork? _work;
    private static int _count, _next, _pending, _busy;
    private static Exception? _error;

    static CpuParallel()
    {
        for (int i = 0; i < Workers; i++)
            new Thread(WorkerLoop) { IsBackground = true, Name = $"tdsm-cpu-{i}" }.Start();
    }

    /// <summary>Threads that take part in a job when the pool is free.</summary>
    public static int Degree => Workers + 1;

    /// <summary>Runs <paramref name="work"/> for every index in [0, count) and returns when all are done.</summary>
    public static void For(int count, IRangeWork work)
    {
        if (count <= 0) return;
        if (count == 1 || Workers == 0 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < count; i++) work.Run(i);
            return;
        }
        try
        {
            _work = work; _count = count; _error = null;
            Volatile.Write(ref _next, -1);
            Volatile.Write(ref _pending, Workers);
            Done.Reset();
            Go.Release(Workers);
            Drain();
            Done.Wait();
            _work = null;
            if (_error is { } e) ExceptionDispatchInfo.Throw(e);
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    private static void Drain()
    {
        var work = _work!;
        int count = _count, i;
        try
        {
            while ((i = Interlocked.Increment(ref _next)) < count) work.Run(i);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
            Volatile.Write(ref _next, int.MaxValue / 2); // the others stop taking indices
        }
    }

    private static void WorkerLoop()
    {
        while (true)
        {
            Go.Wait();
            Drain();
            if (Interlocked.Decrement(ref _pending) == 0) Done.Set();
        }
    }
}
