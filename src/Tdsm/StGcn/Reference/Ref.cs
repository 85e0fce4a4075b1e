using System.Numerics;
using System.Runtime.CompilerServices;

namespace Tdsm.StGcn.Reference;

/// <summary>
/// The naive reference tier: plain loops, never optimised, the oracle for the other tiers.
/// Generic over the storage type T (float32 in the model, float64 for finite-difference checks);
/// every sum accumulates in float64. One op family per file (RefXxx.cs).
/// </summary>
public static partial class Ref
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static double D<T>(T v) where T : IFloatingPointIeee754<T> => double.CreateTruncating(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static T F<T>(double v) where T : IFloatingPointIeee754<T> => T.CreateTruncating(v);

    internal static void Need<T>(ReadOnlySpan<T> s, long n, string name)
    {
        if (s.Length < n) throw new ArgumentException($"{name} holds {s.Length} elements, expected at least {n}");
    }
}
