using System.Globalization;
using System.Text.RegularExpressions;
using K = Tdsm.Kernels;

namespace Tdsm.Gpu;

/// <summary>
/// Retargets ILGPU's PTX for Hopper's architecture-specific instructions. ILGPU 1.5.3 writes <c>.target sm_80</c> for every
/// kernel (its capability table ends there), and <c>wgmma</c> assembles only for <c>sm_90a</c> (PTX ISA 8.0 or later). A
/// kernel whose text uses wgmma gets that target, at least ISA 8.0, its shared allocations (static and dynamic) aligned to
/// <see cref="SharedAlignment"/> bytes, which the 64-byte-swizzled tiles its descriptors describe assume (the kernels
/// check it and write NaN otherwise), and the declaration of the accumulator registers its asm names
/// (<see cref="K.Wgmma.AccumulatorRegister"/>) at the top of its body: ILGPU writes a kernel's blocks out of program order,
/// so a declaration emitted by the kernel could follow a use, which PTX forbids. PTX for sm_90a runs on sm_90 devices only.
/// Other kernels are left alone.
/// </summary>
public static partial class PtxTarget
{
    /// <summary>The alignment given to a wgmma kernel's shared allocations (the 128-byte swizzle's 1,024 covers every mode).</summary>
    public const int SharedAlignment = 1024;

    /// <summary>
    /// True unless <paramref name="accelerator"/> is a CUDA GPU before Hopper: sm_90a code (wgmma) runs on compute capability
    /// 9.0 only; the CPU simulator emulates it.
    /// </summary>
    public static bool CanRunSm90a(ILGPU.Runtime.Accelerator accelerator) =>
        accelerator is not ILGPU.Runtime.Cuda.CudaAccelerator { Architecture: { Major: < 9 } };

    /// <summary>True when <paramref name="ptx"/> uses an instruction that only the sm_90a target accepts.</summary>
    public static bool NeedsSm90a(string ptx) => ptx.Contains("wgmma.", StringComparison.Ordinal);

    /// <summary>
    /// <paramref name="ptx"/> for <c>.target sm_90a</c> at PTX ISA 8.0 or its own if later, shared allocations aligned to
    /// <see cref="SharedAlignment"/>; <paramref name="ptx"/> itself when it does not <see cref="NeedsSm90a"/>.
    /// </summary>
    /// <exception cref="FormatException">The text has no <c>.version</c> or <c>.target</c> directive.</exception>
    public static string ToSm90a(string ptx)
    {
        if (!NeedsSm90a(ptx)) return ptx;
        var version = VersionDirective().Match(ptx);
        var target = TargetDirective().Match(ptx);
        if (!version.Success || !target.Success) throw new FormatException("PTX without a .version or .target directive");
        var isa = Version.Parse(version.Groups[1].Value);
        string text = TargetDirective().Replace(ptx, ".target sm_90a", 1);
        if (isa < new Version(8, 0)) text = VersionDirective().Replace(text, ".version 8.0", 1);
        text = SharedAlign().Replace(text, m => int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) >= SharedAlignment ? m.Value
            : $"{m.Groups[1].Value}{SharedAlignment}{m.Groups[3].Value}");
        // The accumulator registers, as many as the highest index used, declared where the entry's body opens.
        int count = AccumulatorUse().Matches(text).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 1).DefaultIfEmpty(0).Max();
        if (count == 0) return text;
        var body = EntryBody().Match(text);
        if (!body.Success) throw new FormatException("PTX without an .entry body");
        return text.Insert(body.Index + body.Length, $"\n\t.reg .f32 {K.Wgmma.AccumulatorRegister}<{count}>;");
    }

    [GeneratedRegex(@"%tdsm_wgacc(\d+)\b")]
    private static partial Regex AccumulatorUse();

    // The opening brace of the (first) entry's body: its parameter list has no braces.
    [GeneratedRegex(@"\.entry[^{]*\{")]
    private static partial Regex EntryBody();

    [GeneratedRegex(@"^\.version\s+(\d+\.\d+)", RegexOptions.Multiline)]
    private static partial Regex VersionDirective();

    [GeneratedRegex(@"^\.target\s+sm_\d+a?", RegexOptions.Multiline)]
    private static partial Regex TargetDirective();

    // ".shared .align 16 .b8 __shared_alloca0[49152]" (declared in the kernel's body by ILGPU), and dynamic shared memory,
    // ".extern .shared .align 4 .b8 __dyn_shared_alloca[]" (module scope)
    [GeneratedRegex(@"(\.shared\s+\.align\s+)(\d+)(\s+\.b8\s+(?:__shared_alloca\d+|__dyn_shared_alloca)\[)")]
    private static partial Regex SharedAlign();
}
