using System.Numerics;

namespace Tdsm.Tensors;

/// <summary>Where the first NaN or infinity sits in a float array: every loader and entry point that refuses
/// non-finite input asks this, then words its own message.</summary>
public static class Finite
{
    /// <summary>The index of the first value that is NaN or infinite, or -1 when all are finite.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        int i = 0, w = Vector<float>.Count;
        // x - x is 0 for every finite x and NaN for NaN and ±infinity: whole vectors are skipped while all lanes are 0.
        for (; i <= values.Length - w; i += w)
        {
            var v = new Vector<float>(values.Slice(i, w));
            if (!Vector.EqualsAll(v - v, Vector<float>.Zero)) break;
        }
        for (; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }
}
