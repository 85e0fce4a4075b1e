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
/// workers plus the caller pull indices from a shared counter. The caller never waits for a worker
/// that has not woken up yet: workers join through a gate, the caller closes the gate once it has
/// taken the last index and then waits only for the workers that joined (each is finishing at most
/// one index). So a busy machine that is slow to schedule a worker costs nothing but that worker's
/// share. One job runs at a time: a caller that finds the pool busy (another thread, or a nested
/// call) runs its job inline, which is also what concurrent classify calls want.
/// </summary>
internal static class CpuParallel
{
    private const int Closed = int.MinValue;
    private static readonly int Workers = Math.Max(0, Environment.ProcessorCount - 1);
    private static readonly SemaphoreSlim Go = new(0);
    private static IRangeWork? _work;
    private static int _count, _next, _busy, _gate = Closed, _left;
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
            _work = work; _count = count; _error = null; _left = 0;
            Volatile.Write(ref _next, -1);
            Volatile.Write(ref _gate, 0); // open: workers may join from here on
            Go.Release(Workers);
            Drain();
            int joined = Interlocked.Exchange(ref _gate, Closed);
            var spin = new SpinWait();
            while (Volatile.Read(ref _left) < joined) spin.SpinOnce();
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
            // Join the open job, if any (a late wake-up may find it closed, or find the next one).
            int g = Volatile.Read(ref _gate);
            while (g != Closed)
            {
                int seen = Interlocked.CompareExchange(ref _gate, g + 1, g);
                if (seen == g) break;
                g = seen;
            }
            if (g == Closed) continue;
            Drain();
            Interlocked.Increment(ref _left);
        }
    }
}
