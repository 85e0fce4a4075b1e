namespace Tdsm.Formats;

/// <summary>Element types the tensor files can hold.</summary>
public enum DType { F32, F64, F16, BF16, I32, I64 }

/// <summary>Sizes, names and conversions of <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F64 or DType.I64 => 8,
        DType.F16 or DType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>The safetensors dtype string ("F32", "BF16", ...).</summary>
    public static string SafetensorsName(DType t) => t.ToString();

    /// <summary>Parses a safetensors dtype string; null when unsupported.</summary>
    public static DType? FromSafetensorsName(string s) => s switch
    {
        "F32" => DType.F32, "F64" => DType.F64, "F16" => DType.F16, "BF16" => DType.BF16,
        "I32" => DType.I32, "I64" => DType.I64, _ => null,
    };

    /// <summary>Decodes little-endian elements of type <paramref name="t"/> into float64.</summary>
    public static void ToDouble(DType t, ReadOnlySpan<byte> src, Span<double> dst)
    {
        int n = dst.Length;
        switch (t)
        {
            case DType.F32: for (int i = 0; i < n; i++) dst[i] = BitConverter.ToSingle(src.Slice(4 * i, 4)); break;
            case DType.F64: for (int i = 0; i < n; i++) dst[i] = BitConverter.ToDouble(src.Slice(8 * i, 8)); break;
            case DType.I32: for (int i = 0; i < n; i++) dst[i] = BitConverter.ToInt32(src.Slice(4 * i, 4)); break;
            case DType.I64: for (int i = 0; i < n; i++) dst[i] = BitConverter.ToInt64(src.Slice(8 * i, 8)); break;
            case DType.F16: for (int i = 0; i < n; i++) dst[i] = (double)BitConverter.ToHalf(src.Slice(2 * i, 2)); break;
            case DType.BF16:
                for (int i = 0; i < n; i++)
                    dst[i] = BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(src.Slice(2 * i, 2)) << 16);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(t));
        }
    }

    /// <summary>Encodes float64 values as little-endian elements of type <paramref name="t"/>
    /// (BF16 rounds to nearest even).</summary>
    public static void FromDouble(DType t, ReadOnlySpan<double> src, Span<byte> dst)
    {
        int n = src.Length;
        switch (t)
        {
            case DType.F32: for (int i = 0; i < n; i++) BitConverter.TryWriteBytes(dst.Slice(4 * i, 4), (float)src[i]); break;
            case DType.F64: for (int i = 0; i < n; i++) BitConverter.TryWriteBytes(dst.Slice(8 * i, 8), src[i]); break;
            case DType.I32: for (int i = 0; i < n; i++) BitConverter.TryWriteBytes(dst.Slice(4 * i, 4), checked((int)src[i])); break;
            case DType.I64: for (int i = 0; i < n; i++) BitConverter.TryWriteBytes(dst.Slice(8 * i, 8), checked((long)src[i])); break;
            case DType.F16: for (int i = 0; i < n; i++) BitConverter.TryWriteBytes(dst.Slice(2 * i, 2), (Half)src[i]); break;
            case DType.BF16:
                for (int i = 0; i < n; i++)
                {
                    uint bits = BitConverter.SingleToUInt32Bits((float)src[i]);
                    uint rounded = float.IsNaN((float)src[i]) ? (bits | 0x400000u) : bits + 0x7FFFu + ((bits >> 16) & 1u);
                    BitConverter.TryWriteBytes(dst.Slice(2 * i, 2), (ushort)(rounded >> 16));
                }
                break;
            default: throw new ArgumentOutOfRangeException(nameof(t));
        }
    }
}
