using System.Globalization;
using System.Text;

namespace Tdsm.Formats;

/// <summary>An .npy header: dtype, shape, where the C-order data starts and how many bytes it has.</summary>
public sealed record NpyHeader(DType DType, int[] Shape, long DataOffset, long DataBytes);

/// <summary>An array read from a NumPy .npy file: shape, dtype and little-endian bytes (C order).</summary>
public sealed record NpyArray(DType DType, int[] Shape, byte[] Bytes)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Values as float32 (from f4 or f8; integer arrays converted too).</summary>
    public float[] ToFloat32() => AsTensor().ToFloat32();

    /// <summary>Values as float64.</summary>
    public double[] ToFloat64() => AsTensor().ToFloat64();

    /// <summary>Values as int64 (integer dtypes only).</summary>
    public long[] ToInt64() => AsTensor().ToInt64();

    /// <summary>Values as int32 (integer dtypes only; checked narrowing).</summary>
    public int[] ToInt32() => AsTensor().ToInt32();

    // The conversions are SafeTensor's; the bytes are shared, not copied.
    private SafeTensor AsTensor() => new("npy", DType, Shape, Bytes);
}

/// <summary>
/// NumPy .npy files, version 1.0/2.0/3.0 headers, dtypes &lt;f4 &lt;f8 &lt;i4 &lt;i8, C order only.
/// </summary>
public static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads an .npy file.</summary>
    /// <exception cref="TensorFormatException">Bad magic, truncated file, unsupported version,
    /// dtype or Fortran order, or a header that is not the dict NumPy writes.</exception>
    public static NpyArray Read(string path)
    {
        return Parse(path, TensorFormatException.ReadAllBytes(path));
    }

    /// <summary>Parses .npy bytes; <paramref name="path"/> is used in error messages.</summary>
    public static NpyArray Parse(string path, byte[] all)
    {
        var h = ParseHeader(path, all, all.Length);
        if (h.DataBytes > int.MaxValue) throw new TensorFormatException(path, $"array of {h.DataBytes} bytes is too large to load at once (read it in rows with Tdsm.Data.NpySamples)");
        var bytes = new byte[h.DataBytes];
        Buffer.BlockCopy(all, (int)h.DataOffset, bytes, 0, (int)h.DataBytes);
        return new NpyArray(h.DType, h.Shape, bytes);
    }

    /// <summary>The header of an .npy file of any size (the data is not read), validated against the file's length.</summary>
    /// <exception cref="TensorFormatException">As for <see cref="Read"/>.</exception>
    public static NpyHeader ReadHeader(string path)
    {
        FileStream fs;
        try { fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw new TensorFormatException(path, "file not found", e); }
        catch (UnauthorizedAccessException e) when (Directory.Exists(path)) { throw new TensorFormatException(path, "is a folder, expected a file", e); }
        using (fs)
        {
            // Read exactly the header: its length is in the first 10 (v1) or 12 (v2, v3) bytes. A length past the end
            // of the file is left for ParseHeader to report as truncated.
            var pre = new byte[(int)Math.Min(fs.Length, 12)];
            fs.ReadExactly(pre);
            long need = pre.Length < 10 || pre[6] is not (1 or 2 or 3) ? pre.Length
                : pre[6] == 1 ? 10L + BitConverter.ToUInt16(pre, 8)
                : pre.Length < 12 ? pre.Length : 12L + BitConverter.ToUInt32(pre, 8);
            need = Math.Min(need, fs.Length);
            if (need > 256L << 20) throw new TensorFormatException(path, $"header length {need} bytes is implausible");
            var head = new byte[need];
            fs.Position = 0;
            fs.ReadExactly(head);
            return ParseHeader(path, head, fs.Length);
        }
    }

    // Magic, version, header dict and the size check; `head` holds at least the header bytes.
    private static NpyHeader ParseHeader(string path, byte[] all, long fileLength)
    {
        if (all.Length < 10) throw new TensorFormatException(path, $"truncated: {all.Length} bytes, an .npy file has at least 10");
        if (!all.AsSpan(0, 6).SequenceEqual(Magic)) throw new TensorFormatException(path, "not an .npy file (bad magic; expected \\x93NUMPY)");
        int major = all[6];
        int headerLen, headerStart;
        if (major == 1) { headerLen = BitConverter.ToUInt16(all, 8); headerStart = 10; }
        else if (major is 2 or 3)
        {
            if (all.Length < 12) throw new TensorFormatException(path, "truncated: version 2 header size missing");
            uint hl = BitConverter.ToUInt32(all, 8);
            if (hl > int.MaxValue) throw new TensorFormatException(path, $"header length {hl} is implausible");
            headerLen = (int)hl; headerStart = 12;
        }
        else throw new TensorFormatException(path, $"unsupported .npy version {major}.{all[7]} (supported: 1.0, 2.0, 3.0)");
        if ((long)headerStart + headerLen > all.Length) throw new TensorFormatException(path, $"truncated: header claims {headerLen} bytes, file has {all.Length - headerStart}");
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(all, headerStart, headerLen);

        string descr = ReadField(path, header, "descr");
        string fortran = ReadField(path, header, "fortran_order");
        string shapeText = ReadField(path, header, "shape");

        if (fortran == "True") throw new TensorFormatException(path, "Fortran-order arrays are not supported; save with np.ascontiguousarray(a) (C order)");
        if (fortran != "False") throw new TensorFormatException(path, $"fortran_order is '{fortran}', expected True or False");
        descr = descr.Trim('\'', '"');
        DType dtype = descr switch
        {
            "<f4" => DType.F32, "<f8" => DType.F64, "<i4" => DType.I32, "<i8" => DType.I64,
            _ => throw new TensorFormatException(path, $"unsupported dtype '{descr}' (supported: <f4, <f8, <i4, <i8)"),
        };
        var shape = ParseShape(path, shapeText);
        long count = 1;
        foreach (var d in shape)
        {
            if (d != 0 && count > long.MaxValue / d / 8) throw new TensorFormatException(path, $"shape ({string.Join(", ", shape)}) is too large");
            count *= d;
        }
        long dataStart = headerStart + headerLen;
        long need = count * DTypes.Size(dtype);
        if (fileLength - dataStart < need)
            throw new TensorFormatException(path, $"truncated: shape ({string.Join(", ", shape)}) of {descr} needs {need} data bytes, file has {fileLength - dataStart}");
        return new NpyHeader(dtype, shape, dataStart, need);
    }

    private static string ReadField(string path, string header, string key)
    {
        int k = header.IndexOf("'" + key + "'", StringComparison.Ordinal);
        if (k < 0) throw new TensorFormatException(path, $"header has no '{key}' field: {header.Trim()}");
        int colon = header.IndexOf(':', k);
        if (colon < 0) throw new TensorFormatException(path, $"header field '{key}' has no value");
        int i = colon + 1;
        while (i < header.Length && header[i] == ' ') i++;
        if (i >= header.Length) throw new TensorFormatException(path, $"header field '{key}' has no value");
        int end;
        if (header[i] == '(')
        {
            end = header.IndexOf(')', i);
            if (end < 0) throw new TensorFormatException(path, $"header field '{key}' is an unclosed tuple");
            return header.Substring(i, end - i + 1);
        }
        if (header[i] is '\'' or '"')
        {
            end = header.IndexOf(header[i], i + 1);
            if (end < 0) throw new TensorFormatException(path, $"header field '{key}' is an unclosed string");
            return header.Substring(i, end - i + 1);
        }
        end = i;
        while (end < header.Length && header[end] != ',' && header[end] != '}') end++;
        return header[i..end].Trim();
    }

    private static int[] ParseShape(string path, string text)
    {
        var inner = text.Trim().TrimStart('(').TrimEnd(')');
        var parts = inner.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var p = parts[i].TrimEnd('L');
            if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]))
                throw new TensorFormatException(path, $"shape entry '{parts[i]}' is not a non-negative integer");
        }
        return shape;
    }

    /// <summary>Writes a float32 array (C order, version 1.0 header), atomically.</summary>
    public static void Write(string path, int[] shape, ReadOnlySpan<float> values) =>
        WriteBytes(path, "<f4", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray(), values.Length);

    /// <summary>Writes a float64 array.</summary>
    public static void Write(string path, int[] shape, ReadOnlySpan<double> values) =>
        WriteBytes(path, "<f8", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray(), values.Length);

    /// <summary>Writes an int32 array.</summary>
    public static void Write(string path, int[] shape, ReadOnlySpan<int> values) =>
        WriteBytes(path, "<i4", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray(), values.Length);

    /// <summary>Writes an int64 array.</summary>
    public static void Write(string path, int[] shape, ReadOnlySpan<long> values) =>
        WriteBytes(path, "<i8", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray(), values.Length);

    /// <summary>The bytes of an .npy file (version 1.0 header when it fits, else 2.0).</summary>
    public static byte[] Encode(string descr, int[] shape, ReadOnlySpan<byte> data)
    {
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shapeText}, }}";
        bool v1 = dict.Length + 1 + 10 < 65536;
        int pre = v1 ? 10 : 12;
        int total = (pre + dict.Length + 1 + 63) / 64 * 64;
        var header = dict.PadRight(total - pre - 1) + "\n";
        using var ms = new MemoryStream();
        ms.Write(Magic);
        ms.WriteByte(v1 ? (byte)1 : (byte)2);
        ms.WriteByte(0);
        if (v1) ms.Write(BitConverter.GetBytes((ushort)header.Length));
        else ms.Write(BitConverter.GetBytes((uint)header.Length));
        ms.Write(Encoding.Latin1.GetBytes(header));
        ms.Write(data);
        return ms.ToArray();
    }

    private static void WriteBytes(string path, string descr, int[] shape, byte[] data, int count)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Any(d => d < 0)) throw new ArgumentException($"{path}: negative dimension in shape ({string.Join(", ", shape)})");
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (n != count) throw new ArgumentException($"{path}: shape ({string.Join(", ", shape)}) holds {n} elements but {count} values were given");
        var bytes = Encode(descr, shape, data);
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
