using System.Numerics;

namespace Tdsm.Reference;

/// <summary>Conversions used by the generic reference ops: float64 accumulation for any storage type.</summary>
internal static class Num
{
    public static double D<T>(T x) where T : IFloatingPointIeee754<T> => double.CreateTruncating(x);
    public static T F<T>(double x) where T : IFloatingPointIeee754<T> => T.CreateTruncating(x);
}
