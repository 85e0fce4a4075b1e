using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Tdsm.Gpu;

/// <summary>
/// Loads explicitly grouped kernels the way ILGPU's <c>LoadStreamKernel</c> does, except that on CUDA the PTX first goes
/// through <see cref="PtxLocalSlots.Promote"/>, so inline-asm operands reach the driver as registers rather than
/// local-memory slots it must lift. Used for the kernels built on inline PTX (the tensor-core GEMMs and convolutions).
/// <see cref="Enabled"/> (environment TDSM_PTX_LIFT=0 turns it off) chooses; on the CPU simulator there is no PTX
/// and kernels load as usual. ILGPU 1.5 keeps the PTX kernel's constructor and a compiled kernel's entry point internal,
/// so the rewritten text is wrapped by reflection; if that or the driver's load fails, the kernel loads unrewritten and
/// <see cref="Fallbacks"/> counts it (<see cref="Summary"/> says so in the bench logs). Kernels using Hopper's wgmma also get
/// the sm_90a target here (<see cref="PtxTarget"/>), which ILGPU cannot write; they load only this way, lifted or not,
/// and a failure to load them is thrown rather than hidden by a fallback that could not run them either.
/// </summary>
public static class LiftedKernels
{
    /// <summary>Rewrite the PTX of the kernels loaded through this class (default: on unless TDSM_PTX_LIFT=0).</summary>
    public static bool Enabled { get; set; } = Environment.GetEnvironmentVariable("TDSM_PTX_LIFT") != "0";

    /// <summary>Kernels the tier loaded with rewritten PTX so far in this process (launchers made), and the slots they had.</summary>
    public static int Loaded { get; private set; }
    public static long SlotsPromoted { get; private set; }

    /// <summary>Kernels loaded for the sm_90a target (wgmma) so far in this process.</summary>
    public static int LoadedSm90a { get; private set; }

    /// <summary>Kernels that had to load unrewritten because the rewrite could not be applied (message of the first).</summary>
    public static int Fallbacks { get; private set; }
    public static string? FirstFallback { get; private set; }

    // ILGPU 1.5 keeps these internal: a compiled kernel's entry point, and the PTX kernel's constructor.
    private const BindingFlags Any = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
    private static readonly PropertyInfo? EntryPointProperty = typeof(CompiledKernel).GetProperty("EntryPoint", Any);
    private static readonly ConstructorInfo? PtxKernelConstructor = typeof(PTXCompiledKernel).GetConstructor(Any, null,
        [typeof(Context), typeof(EntryPoint), typeof(CompiledKernel.KernelInfo), typeof(string)], null);

    /// <summary>
    /// <paramref name="compiled"/> with its PTX through <see cref="PtxLocalSlots.Promote"/> when <paramref name="promoteSlots"/>
    /// and through <see cref="PtxTarget.ToSm90a"/> (same entry point and kernel information), or null when neither changes it.
    /// </summary>
    /// <exception cref="MissingMethodException">This ILGPU has no PTXCompiledKernel(Context, EntryPoint, KernelInfo, string).</exception>
    public static PTXCompiledKernel? Rewrite(PTXCompiledKernel compiled, out int promoted, bool promoteSlots = true)
    {
        if (PtxKernelConstructor is null || EntryPointProperty is null)
            throw new MissingMethodException("PTXCompiledKernel(Context, EntryPoint, KernelInfo, string) or CompiledKernel.EntryPoint not found");
        (string ptx, promoted) = promoteSlots ? PtxLocalSlots.Promote(compiled.PTXAssembly) : (compiled.PTXAssembly, 0);
        bool hopper = PtxTarget.NeedsSm90a(ptx);
        if (promoted == 0 && !hopper) return null;
        if (hopper) ptx = PtxTarget.ToSm90a(ptx);
        return (PTXCompiledKernel)PtxKernelConstructor.Invoke([compiled.Context, EntryPointProperty.GetValue(compiled), compiled.Info, ptx]);
    }

    /// <summary>
    /// The kernel for <paramref name="method"/> on CUDA, its PTX rewritten when <see cref="Enabled"/> or when it uses wgmma
    /// (<c>Rewritten</c> false: the text as ILGPU wrote it, loaded from the same compilation rather than compiled twice);
    /// null to load it the usual way (the simulator, or a fallback).
    /// </summary>
    /// <exception cref="InvalidOperationException">A wgmma kernel did not load (the driver's message inside).</exception>
    private static (Kernel Kernel, int Promoted, bool Rewritten)? TryLoad(Accelerator acc, MethodInfo method, KernelSpecialization specialization)
    {
        if (acc is not CudaAccelerator cuda) return null;
        bool hopper = false;
        try
        {
            // The accelerator's own backend: the same architecture, ISA and settings as ILGPU's loader would compile with.
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var compiled = (PTXCompiledKernel)cuda.Backend.Compile(entry, specialization);
            hopper = PtxTarget.NeedsSm90a(compiled.PTXAssembly);
            int promoted = 0;
            var rewritten = Enabled || hopper ? Rewrite(compiled, out promoted, promoteSlots: Enabled) : null;
            if (rewritten is null) return (acc.LoadKernel(compiled), 0, false);
            var kernel = acc.LoadKernel(rewritten);
            if (hopper) LoadedSm90a++;
            return (kernel, promoted, true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A wgmma kernel has no other way to load: say which and why.
            if (hopper) throw new InvalidOperationException($"{method.DeclaringType?.Name}.{method.Name}: the sm_90a (wgmma) kernel did not load: {e.GetType().Name}: {e.Message}", e);
            // Reflection failures (another ILGPU), or the driver refusing the text: the kernel loads as ILGPU wrote it.
            Fallback(method, e);
            return null;
        }
    }

    private static void Count(int promoted)
    {
        Loaded++;
        SlotsPromoted += promoted;
    }

    private static void Fallback(MethodInfo method, Exception e)
    {
        Fallbacks++;
        FirstFallback ??= $"{method.DeclaringType?.Name}.{method.Name}: {e.GetType().Name}: {e.Message}";
    }

    /// <summary>One line for logs: how many kernels loaded lifted, their slots, and any fallback.</summary>
    public static string Summary() =>
        (!Enabled ? "PTX operand slots: not lifted (TDSM_PTX_LIFT=0)"
            : $"PTX operand slots lifted into registers: {Loaded} kernels, {SlotsPromoted:N0} slots" +
              (Fallbacks > 0 ? $"; {Fallbacks} kernels loaded unlifted (first: {FirstFallback})" : "")) +
        (LoadedSm90a > 0 ? $"; {LoadedSm90a} retargeted to sm_90a (wgmma)" : "");

    // The launcher of a lifted kernel, or null (the fallback counted) so that the caller loads it the usual way; onLoad sees
    // the loaded kernel first (e.g. LargeSharedMemory.Allow).
    private static TDelegate? Launcher<TDelegate>(Accelerator acc, MethodInfo method, KernelSpecialization specialization, Action<Kernel>? onLoad = null)
        where TDelegate : Delegate
    {
        if (TryLoad(acc, method, specialization) is not { } loaded) return null;
        onLoad?.Invoke(loaded.Kernel);
        try
        {
            var launcher = loaded.Kernel.CreateLauncherDelegate<TDelegate>();
            if (loaded.Rewritten) Count(loaded.Promoted);
            return launcher;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Fallback(method, e);
            return null;
        }
    }

    /// <summary>The loaded kernel (explicitly grouped), rewritten as the tier loads it when that applies; <c>Lifted</c> says whether it was.</summary>
    public static (Kernel Kernel, bool Lifted) Load(Accelerator acc, MethodInfo method, KernelSpecialization specialization) =>
        TryLoad(acc, method, specialization) is { } loaded ? (loaded.Kernel, loaded.Rewritten) : (acc.LoadKernel(method, specialization), false);

    public static Action<KernelConfig, T1, T2, T3, T4, T5> LoadStreamKernelLifted<T1, T2, T3, T4, T5>(
        this Accelerator acc, Action<T1, T2, T3, T4, T5> kernel, KernelSpecialization specialization)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5>>(acc, kernel.Method, specialization) is not { } launch)
            return acc.LoadStreamKernel(kernel, specialization);
        return (config, p1, p2, p3, p4, p5) => launch(acc.DefaultStream, config, p1, p2, p3, p4, p5);
    }

    public static Action<KernelConfig, T1, T2, T3, T4, T5, T6> LoadStreamKernelLifted<T1, T2, T3, T4, T5, T6>(
        this Accelerator acc, Action<T1, T2, T3, T4, T5, T6> kernel, KernelSpecialization specialization)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        if (Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6>>(acc, kernel.Method, specialization) is not { } launch)
            return acc.LoadStreamKernel(kernel, specialization);
        return (config, p1, p2, p3, p4, p5, p6) => launch(acc.DefaultStream, config, p1, p2, p3, p4, p5, p6);
    }

    /// <summary>
    /// The launcher of <paramref name="kernel"/> as the GPU tier loads it; <paramref name="onLoad"/> sees the kernel when it
    /// loads through this class (on CUDA), before its first launch.
    /// </summary>
    public static Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7> LoadStreamKernelLifted<T1, T2, T3, T4, T5, T6, T7>(
        this Accelerator acc, Action<T1, T2, T3, T4, T5, T6, T7> kernel, KernelSpecialization specialization, Action<Kernel>? onLoad = null)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct
    {
        if (Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7>>(acc, kernel.Method, specialization, onLoad) is not { } launch)
            return acc.LoadStreamKernel(kernel, specialization);
        return (config, p1, p2, p3, p4, p5, p6, p7) => launch(acc.DefaultStream, config, p1, p2, p3, p4, p5, p6, p7);
    }

    public static Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8> LoadStreamKernelLifted<T1, T2, T3, T4, T5, T6, T7, T8>(
        this Accelerator acc, Action<T1, T2, T3, T4, T5, T6, T7, T8> kernel, KernelSpecialization specialization)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct
    {
        if (Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8>>(acc, kernel.Method, specialization) is not { } launch)
            return acc.LoadStreamKernel(kernel, specialization);
        return (config, p1, p2, p3, p4, p5, p6, p7, p8) => launch(acc.DefaultStream, config, p1, p2, p3, p4, p5, p6, p7, p8);
    }
}
