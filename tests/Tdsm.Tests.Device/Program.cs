using System.Reflection;
using NUnit.Framework;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;
using NUnit.Framework.Internal.Builders;

namespace Tdsm.Tests.Device;

/// <summary>
/// A minimal NUnit fixture runner for the GPU machine, which has the .NET runtime but no SDK (so
/// no `dotnet test`). It runs [TestFixture] classes whose full name starts with the given prefix
/// (a namespace or a class; default Tdsm.Gpu.Tests): one-time set-up, set-up, each [Test] / [TestCase], tear-downs, and
/// prints one line per test and an NUnit-style summary. Exit code 1 when a test fails.
/// A second argument keeps only the fixtures with that argument (e.g. "cuda": the GPU visit skips the
/// simulator fixtures, which CI runs). Then a fixture whose one-time set-up skips (no CUDA device) or
/// a run in which nothing passed also exits 1: asking for the cuda fixtures on a machine that
/// cannot run them must not read as a pass. Tests in the category <see cref="Tdsm.Gpu.Tests.DeviceOrder.RunLast"/> (kernels
/// that have never run on a GPU) run after all the others, their fixtures kept open until then: a fault of theirs, which
/// can leave the process's CUDA state unusable, then costs no other test its result.
/// A third argument, test method names separated by commas, runs only those (the visit's early check of the kernels no
/// GPU has run yet, in a process of its own); a name that no test method has fails the run.
/// </summary>
public static class Program
{
    private static readonly DefaultTestCaseBuilder Builder = new();

    public static int Main(string[] args)
    {
        string prefix = args.Length > 0 ? args[0] : "Tdsm.Gpu.Tests";
        string? only = args.Length > 1 ? args[1] : null;
        string[]? methods = args.Length > 2 ? args[2].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : null;
        var asm = typeof(Tdsm.Gpu.Tests.GpuOpsTests).Assembly;
        var types = asm.GetTypes().Where(t => t.FullName?.StartsWith(prefix, StringComparison.Ordinal) == true).ToList();
        if (methods is not null)
        {
            var known = types.SelectMany(t => t.GetMethods()).Select(m => m.Name).ToHashSet();
            var unknown = methods.Where(n => !known.Contains(n)).ToList();
            if (unknown.Count > 0)
            {
                Console.WriteLine($"FAIL no test method named {string.Join(", ", unknown)} under {prefix}");
                return 1;
            }
        }
        int passed = 0, failed = 0, skipped = 0, fixturesSkipped = 0;
        var deferred = new List<(object Instance, string Name, MethodInfo Method, TestMethod Case)>();
        var open = new List<object>(); // fixtures with deferred tests: torn down after those ran
        void Run(object instance, string name, MethodInfo m, TestMethod c)
        {
            var setup = Invoke(instance, typeof(SetUpAttribute));
            Exception? error = setup;
            if (error is null)
            {
                try { m.Invoke(instance, c.Arguments); }
                catch (TargetInvocationException e) { error = e.InnerException; }
                catch (Exception e) when (e is ArgumentException or TargetParameterCountException) { error = e; }
            }
            Invoke(instance, typeof(TearDownAttribute));
            if (error is null) { passed++; Console.WriteLine($"ok   {name}"); }
            else if (error is IgnoreException or InconclusiveException) { skipped++; Console.WriteLine($"SKIP {name}: {error.Message}"); }
            else { failed++; Console.WriteLine($"FAIL {name}: {error.GetType().Name}: {error.Message}"); }
        }
        foreach (var type in types.Where(t => !t.IsAbstract))
        {
            var fixtures = type.GetCustomAttributes<TestFixtureAttribute>().ToList();
            if (fixtures.Count == 0 && !type.GetMethods().Any(m => m.GetCustomAttributes<TestAttribute>().Any() || m.GetCustomAttributes<TestCaseAttribute>().Any())) continue;
            if (methods is not null && !type.GetMethods().Any(m => methods.Contains(m.Name))) continue;   // no fixture set-up for nothing
            var argSets = fixtures.Count == 0 ? [Array.Empty<object?>()] : fixtures.Select(f => f.Arguments).ToList();
            foreach (var fargs in argSets.Where(a => only is null || a.Any(v => Equals(v, only))))
            {
                string fname = $"{type.Name}({string.Join(",", fargs)})";
                object instance = Activator.CreateInstance(type, fargs)!;
                var oneTime = Invoke(instance, typeof(OneTimeSetUpAttribute));
                if (oneTime is not null)
                {
                    bool ignored = oneTime is IgnoreException or InconclusiveException;
                    Console.WriteLine($"{(ignored ? "SKIP" : "FAIL")} {fname}: one-time set-up: {oneTime.Message}");
                    if (!ignored) failed++; else { skipped++; fixturesSkipped++; }
                    continue;
                }
                bool keepOpen = false;
                foreach (var m in type.GetMethods())
                {
                    if (methods is not null && !methods.Contains(m.Name)) continue;
                    // NUnit's own builder expands [TestCase], [TestCaseSource] and [Values]/[Range] parameters.
                    var method = new MethodWrapper(type, m);
                    if (!Builder.CanBuildFrom(method)) continue;
                    var built = Builder.BuildFrom(method);
                    var cases = built is TestMethod single ? [single] : built.Tests.OfType<TestMethod>().ToList();
                    foreach (var c in cases)
                    {
                        string name = $"{fname}.{c.Name}";
                        if (c.RunState is RunState.Ignored or RunState.Explicit or RunState.Skipped)
                        {
                            skipped++;
                            Console.WriteLine($"SKIP {name}: {c.Properties.Get(PropertyNames.SkipReason)}");
                            continue;
                        }
                        if (c.RunState == RunState.NotRunnable)
                        {
                            failed++;
                            Console.WriteLine($"FAIL {name}: not runnable: {c.Properties.Get(PropertyNames.SkipReason)}");
                            continue;
                        }
                        if (IsRunLast(c, m))
                        {
                            deferred.Add((instance, name, m, c));
                            keepOpen = true;
                            continue;
                        }
                        Run(instance, name, m, c);
                    }
                }
                if (keepOpen) open.Add(instance);
                else Invoke(instance, typeof(OneTimeTearDownAttribute));
            }
        }
        if (deferred.Count > 0) Console.WriteLine($"-- {deferred.Count} tests of kernels new on the GPU, run last ({Tdsm.Gpu.Tests.DeviceOrder.RunLast})");
        foreach (var (instance, name, m, c) in deferred) Run(instance, name, m, c);
        foreach (var instance in open) Invoke(instance, typeof(OneTimeTearDownAttribute));
        Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
        if (only is not null && (fixturesSkipped > 0 || passed == 0))
        {
            Console.WriteLine($"FAIL the '{only}' fixtures were asked for, but {fixturesSkipped} of them skipped their set-up and {passed} tests passed");
            return 1;
        }
        return failed == 0 ? 0 : 1;
    }

    // In the RunLast category: on the method ([Category]) or the case.
    private static bool IsRunLast(TestMethod c, MethodInfo m) =>
        m.GetCustomAttributes<CategoryAttribute>().Any(a => a.Name == Tdsm.Gpu.Tests.DeviceOrder.RunLast)
        || c.Properties[PropertyNames.Category].Cast<object>().Any(v => Equals(v, Tdsm.Gpu.Tests.DeviceOrder.RunLast));

    private static Exception? Invoke(object instance, Type attribute)
    {
        foreach (var m in instance.GetType().GetMethods().Where(m => m.GetCustomAttributes(attribute, true).Length > 0))
        {
            try { m.Invoke(instance, null); }
            catch (TargetInvocationException e) { return e.InnerException; }
        }
        return null;
    }
}
