using System.Text;
using System.Text.Json;

namespace Tdsm.Formats;

/// <summary>One tensor of a safetensors file: name, dtype, shape and its raw little-endian bytes.</summary>
public sealed record SafeTensor(string Name, DType DType, int[] Shape, byte[] Bytes)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The values converted to float32 (from any supported dtype).</summary>
    public float[] ToFloat32()
    {
        if (DType == DType.F32) { var f = new float[ElementCount]; Buffer.BlockCopy(Bytes, 0, f, 0, Bytes.Length); return f; }
        var d = ToFloat64();
        var r = new float[d.Length];
        for (int i = 0; i < d.Length; i++) r[i] = (float)d[i];
        return r;
    }

    /// <summary>The values converted to float64 (from any supported dtype).</summary>
    public double[] ToFloat64()
    {
        var d = new double[ElementCount];
        DTypes.ToDouble(DType, Bytes, d);
        return d;
    }

    /// <summary>The values as int64 (integer dtypes only; float dtypes are rejected).</summary>
    public long[] ToInt64()
    {
        if (DType is not (DType.I32 or DType.I64))
            throw new InvalidOperationException($"tensor '{Name}' has dtype {DType}, expected an integer dtype (I32 or I64)");
        var r = new long[ElementCount];
        for (int i = 0; i < r.Length; i++)
            r[i] = DType == DType.I32 ? BitConverter.ToInt32(Bytes, 4 * i) : BitConverter.ToInt64(Bytes, 8 * i);
        return r;
    }

    /// <summary>The values as int32 (integer dtypes only).</summary>
    public int[] ToInt32()
    {
        var wide = ToInt64();
        var r = new int[wide.Length];
        for (int i = 0; i < wide.Length; i++)
            r[i] = wide[i] is >= int.MinValue and <= int.MaxValue ? (int)wide[i]
                : throw new OverflowException($"tensor '{Name}': value {wide[i]} at element {i} does not fit a 32-bit integer");
        return r;
    }

    /// <summary>A float32 tensor.</summary>
    public static SafeTensor FromFloat32(string name, int[] shape, ReadOnlySpan<float> values)
    {
        CheckCount(name, shape, values.Length);
        var b = new byte[values.Length * 4];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).CopyTo(b);
        return new SafeTensor(name, DType.F32, (int[])shape.Clone(), b);
    }

    /// <summary>A tensor of any dtype from float64 values (converted, integer dtypes checked).</summary>
    public static SafeTensor FromFloat64(string name, DType dtype, int[] shape, ReadOnlySpan<double> values)
    {
        CheckCount(name, shape, values.Length);
        var b = new byte[values.Length * DTypes.Size(dtype)];
        DTypes.FromDouble(dtype, values, b);
        return new SafeTensor(name, dtype, (int[])shape.Clone(), b);
    }

    /// <summary>An int32 tensor.</summary>
    public static SafeTensor FromInt32(string name, int[] shape, ReadOnlySpan<int> values)
    {
        CheckCount(name, shape, values.Length);
        var b = new byte[values.Length * 4];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).CopyTo(b);
        return new SafeTensor(name, DType.I32, (int[])shape.Clone(), b);
    }

    private static void CheckCount(string name, int[] shape, int count)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{name}': negative dimension in shape [{string.Join(",", shape)}]");
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (n != count) throw new ArgumentException($"tensor '{name}': shape [{string.Join(",", shape)}] holds {n} elements but {count} values were given");
    }
}

/// <summary>
/// The safetensors format, read and written by hand (8-byte little-endian header size, a JSON
/// header of {name: {dtype, shape, data_offsets}} plus optional "__metadata__" (string map),
/// then the data). Every size and offset is checked against the file before it is used.
/// </summary>
public sealed class SafeTensorsFile
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;
    private readonly Dictionary<string, SafeTensor> _tensors;

    /// <summary>The file this was read from (or the path it will be written to).</summary>
    public string Path { get; }

    /// <summary>The "__metadata__" string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensor names in file order.</summary>
    public IReadOnlyList<string> Names { get; }

    private SafeTensorsFile(string path, Dictionary<string, SafeTensor> tensors, List<string> names, Dictionary<string, string> metadata)
    {
        Path = path; _tensors = tensors; Names = names; Metadata = metadata;
    }

    /// <summary>True when the file holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The tensor called <paramref name="name"/>; a clear error naming the file when absent.</summary>
    public SafeTensor this[string name] => _tensors.TryGetValue(name, out var t) ? t
        : throw new TensorFormatException(Path, $"no tensor named '{name}'");

    /// <summary>All tensors in file order.</summary>
    public IEnumerable<SafeTensor> Tensors => Names.Select(n => _tensors[n]);

    /// <summary>Reads and validates a safetensors file.</summary>
    /// <exception cref="TensorFormatException">The file is truncated, its header is not valid
    /// JSON, a dtype is unknown, or an offset points outside the data section.</exception>
    public static SafeTensorsFile Read(string path)
    {
        return Parse(path, TensorFormatException.ReadAllBytes(path));
    }

    /// <summary>Parses safetensors bytes; <paramref name="path"/> is used in error messages.</summary>
    public static SafeTensorsFile Parse(string path, byte[] all)
    {
        if (all.Length < 8) throw new TensorFormatException(path, $"truncated: {all.Length} bytes, expected at least 8 for the header size");
        ulong headerSize = BitConverter.ToUInt64(all, 0);
        if (headerSize > MaxHeaderBytes) throw new TensorFormatException(path, $"header size {headerSize} bytes is implausible (limit {MaxHeaderBytes})");
        if (8 + (long)headerSize > all.Length) throw new TensorFormatException(path, $"truncated: header claims {headerSize} bytes but the file has only {all.Length - 8} after the size field");
        long dataStart = 8 + (long)headerSize;
        long dataLen = all.Length - dataStart;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(new ReadOnlyMemory<byte>(all, 8, (int)headerSize)); }
        catch (JsonException e) { throw new TensorFormatException(path, $"header is not valid JSON: {e.Message}", e); }

        var tensors = new Dictionary<string, SafeTensor>(StringComparer.Ordinal);
        var names = new List<string>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new TensorFormatException(path, "header is not a JSON object");
            var spans = new List<(long Begin, long End, string Name)>();
            bool sawMetadata = false;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                // JSON allows a repeated key; here it would hide a tensor or a metadata value.
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new TensorFormatException(path, "__metadata__ is not an object");
                    if (sawMetadata) throw new TensorFormatException(path, "__metadata__ appears twice in the header");
                    sawMetadata = true;
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new TensorFormatException(path, $"__metadata__ value '{m.Name}' is not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw new TensorFormatException(path, $"__metadata__ key '{m.Name}' appears twice");
                    }
                    continue;
                }
                if (tensors.ContainsKey(prop.Name)) throw new TensorFormatException(path, $"tensor '{prop.Name}' appears twice in the header");
                var t = ParseEntry(path, prop, all, dataStart, dataLen, out long begin, out long end);
                spans.Add((begin, end, prop.Name));
                tensors[prop.Name] = t;
                names.Add(prop.Name);
            }
            spans.Sort((a, b) => a.Begin.CompareTo(b.Begin));
            for (int i = 1; i < spans.Count; i++)
                if (spans[i].Begin < spans[i - 1].End)
                    throw new TensorFormatException(path, $"tensors '{spans[i - 1].Name}' and '{spans[i].Name}' overlap in the data section");
        }
        return new SafeTensorsFile(path, tensors, names, metadata);
    }

    private static SafeTensor ParseEntry(string path, JsonProperty prop, byte[] all, long dataStart, long dataLen, out long begin, out long end)
    {
        string name = prop.Name;
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw new TensorFormatException(path, $"tensor '{name}': entry is not an object");
        if (!v.TryGetProperty("dtype", out var dtEl) || dtEl.ValueKind != JsonValueKind.String)
            throw new TensorFormatException(path, $"tensor '{name}': missing dtype");
        var dtype = DTypes.FromSafetensorsName(dtEl.GetString()!)
            ?? throw new TensorFormatException(path, $"tensor '{name}': unsupported dtype '{dtEl.GetString()}' (supported: F32, F64, F16, BF16, I32, I64)");
        if (!v.TryGetProperty("shape", out var shEl) || shEl.ValueKind != JsonValueKind.Array)
            throw new TensorFormatException(path, $"tensor '{name}': missing shape");
        var shape = new int[shEl.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (var d in shEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw new TensorFormatException(path, $"tensor '{name}': shape entry {k} is not a non-negative int32");
            shape[k++] = dim;
            if (dim != 0 && count > long.MaxValue / dim / 8) throw new TensorFormatException(path, $"tensor '{name}': shape is too large");
            count *= dim;
        }
        if (!v.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new TensorFormatException(path, $"tensor '{name}': data_offsets must be [begin, end]");
        if (offEl[0].ValueKind != JsonValueKind.Number || offEl[1].ValueKind != JsonValueKind.Number
            || !offEl[0].TryGetInt64(out begin) || !offEl[1].TryGetInt64(out end) || begin < 0 || end < begin)
            throw new TensorFormatException(path, $"tensor '{name}': data_offsets are not a valid [begin, end] pair");
        if (end > dataLen)
            throw new TensorFormatException(path, $"tensor '{name}': data_offsets [{begin}, {end}] point past the end of the data section ({dataLen} bytes)");
        long expected = count * DTypes.Size(dtype);
        if (end - begin != expected)
            throw new TensorFormatException(path, $"tensor '{name}': {end - begin} data bytes but dtype {dtype} with shape [{string.Join(",", shape)}] needs {expected}");
        var bytes = new byte[expected];
        Buffer.BlockCopy(all, (int)(dataStart + begin), bytes, 0, (int)expected);
        return new SafeTensor(name, dtype, shape, bytes);
    }

    /// <summary>Writes tensors (in the given order) and metadata atomically: the bytes go to a
    /// temporary file beside <paramref name="path"/>, which is then renamed over it, so a crash
    /// mid-write leaves the previous file intact.</summary>
    public static void Write(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in list)
        {
            ArgumentNullException.ThrowIfNull(t, nameof(tensors));
            if (!seen.Add(t.Name)) throw new ArgumentException($"duplicate tensor name '{t.Name}'");
            // What the reader would refuse is refused here, before a file is written.
            if (t.Name == "__metadata__") throw new ArgumentException("a tensor cannot be called '__metadata__' (the header's metadata key)");
            if (t.Shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{t.Name}': negative dimension in shape [{string.Join(",", t.Shape)}]");
            if (t.Bytes.LongLength != t.ElementCount * DTypes.Size(t.DType))
                throw new ArgumentException($"tensor '{t.Name}': {t.Bytes.Length} bytes but dtype {t.DType} with shape [{string.Join(",", t.Shape)}] needs {t.ElementCount * DTypes.Size(t.DType)}");
        }
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in metadata) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in list)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", DTypes.SafetensorsName(t.DType));
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.Bytes.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Bytes.Length;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to an 8-byte boundary, as the reference writer does.
        var header = ms.ToArray();
        int padded = (header.Length + 7) / 8 * 8;
        AtomicFile.Write(path, stream =>
        {
            Span<byte> size = stackalloc byte[8];
            BitConverter.TryWriteBytes(size, (ulong)padded);
            stream.Write(size);
            stream.Write(header);
            for (int i = header.Length; i < padded; i++) stream.WriteByte((byte)' ');
            foreach (var t in list) stream.Write(t.Bytes);
        });
    }

    /// <summary>Reads the "__metadata__" key <paramref name="key"/> as JSON.</summary>
    public JsonDocument MetadataJson(string key)
    {
        if (!Metadata.TryGetValue(key, out var s)) throw new TensorFormatException(Path, $"no '{key}' entry in __metadata__");
        try { return JsonDocument.Parse(s); }
        catch (JsonException e) { throw new TensorFormatException(Path, $"__metadata__ '{key}' is not valid JSON: {e.Message}", e); }
    }

    internal static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
