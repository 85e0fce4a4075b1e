using System.Text;

namespace Tdsm.Text;

/// <summary>One initializer of an ONNX graph: name, ONNX data type code, dims and its little-endian bytes.</summary>
/// <param name="Name">The initializer's name (anonymous MatMul weights have names like "onnx::MatMul_1234").</param>
/// <param name="DataType">ONNX TensorProto.DataType (1 = float32, 6 = int32, 7 = int64).</param>
/// <param name="Dims">The shape.</param>
/// <param name="Data">The raw little-endian values (from raw_data, or re-encoded from float_data / int64_data).</param>
public sealed record OnnxInitializer(string Name, int DataType, long[] Dims, ReadOnlyMemory<byte> Data)
{
    /// <summary>ONNX TensorProto.DataType FLOAT.</summary>
    public const int Float = 1;

    /// <summary>Number of elements.</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);
}

/// <summary>One node of an ONNX graph: op type, name, input and output value names.</summary>
public sealed record OnnxNode(string OpType, string Name, string[] Inputs, string[] Outputs);

/// <summary>
/// The part of an ONNX model this project needs: the graph's initializers and nodes (no attributes,
/// no types). Read straight from the protobuf wire format (ModelProto.graph = 7; GraphProto.node = 1,
/// initializer = 5; NodeProto input = 1, output = 2, name = 3, op_type = 4; TensorProto dims = 1,
/// data_type = 2, float_data = 4, int32_data = 5, int64_data = 7, name = 8, raw_data = 9,
/// data_location = 14), so no protobuf or ONNX package is needed.
/// </summary>
public sealed class OnnxModel
{
    /// <summary>Initializers by name.</summary>
    public IReadOnlyDictionary<string, OnnxInitializer> Initializers { get; }

    /// <summary>Nodes in graph (topological) order.</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    private OnnxModel(Dictionary<string, OnnxInitializer> inits, List<OnnxNode> nodes) { Initializers = inits; Nodes = nodes; }

    /// <summary>Parses ONNX model bytes; <paramref name="source"/> names the bytes in error messages.
    /// The returned initializers view <paramref name="bytes"/> without copying.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ONNX ModelProto, or
    /// an initializer uses external data.</exception>
    public static OnnxModel Parse(string source, ReadOnlyMemory<byte> bytes)
    {
        var inits = new Dictionary<string, OnnxInitializer>(StringComparer.Ordinal);
        var nodes = new List<OnnxNode>();
        bool sawGraph = false;
        try
        {
            var model = new ProtoReader(bytes);
            while (model.Next(out int field, out int wire))
            {
                if (field != 7 || wire != ProtoReader.LengthDelimited) { model.Skip(wire); continue; }
                sawGraph = true;
                var graph = new ProtoReader(model.ReadBytes());
                while (graph.Next(out int gf, out int gw))
                {
                    if (gf == 1 && gw == ProtoReader.LengthDelimited) nodes.Add(ReadNode(graph.ReadBytes()));
                    else if (gf == 5 && gw == ProtoReader.LengthDelimited)
                    {
                        var t = ReadTensor(source, graph.ReadBytes());
                        inits[t.Name] = t;
                    }
                    else graph.Skip(gw);
                }
            }
        }
        catch (ProtoException e) { throw new InvalidDataException($"{source}: not a well-formed ONNX model ({e.Message})", e); }
        if (!sawGraph) throw new InvalidDataException($"{source}: not an ONNX model (no graph field in the ModelProto)");
        return new OnnxModel(inits, nodes);
    }

    private static OnnxNode ReadNode(ReadOnlyMemory<byte> bytes)
    {
        var r = new ProtoReader(bytes);
        var inputs = new List<string>();
        var outputs = new List<string>();
        string name = "", op = "";
        while (r.Next(out int f, out int w))
        {
            switch (f)
            {
                case 1 when w == ProtoReader.LengthDelimited: inputs.Add(r.ReadString()); break;
                case 2 when w == ProtoReader.LengthDelimited: outputs.Add(r.ReadString()); break;
                case 3 when w == ProtoReader.LengthDelimited: name = r.ReadString(); break;
                case 4 when w == ProtoReader.LengthDelimited: op = r.ReadString(); break;
                default: r.Skip(w); break;
            }
        }
        return new OnnxNode(op, name, [.. inputs], [.. outputs]);
    }

    private static OnnxInitializer ReadTensor(string source, ReadOnlyMemory<byte> bytes)
    {
        var r = new ProtoReader(bytes);
        var dims = new List<long>();
        int dataType = 0;
        string name = "";
        ReadOnlyMemory<byte> raw = default;
        bool hasRaw = false, external = false;
        var floats = new List<float>();
        var longs = new List<long>();
        var ints = new List<int>();
        while (r.Next(out int f, out int w))
        {
            switch (f)
            {
                case 1: r.ReadPackedOrSingleVarints(w, v => dims.Add(v)); break;
                case 2 when w == ProtoReader.Varint: dataType = (int)r.ReadVarint(); break;
                case 4: r.ReadPackedOrSingleFloats(w, floats); break;
                case 5: r.ReadPackedOrSingleVarints(w, v => ints.Add((int)v)); break;
                case 7: r.ReadPackedOrSingleVarints(w, longs.Add); break;
                case 8 when w == ProtoReader.LengthDelimited: name = r.ReadString(); break;
                case 9 when w == ProtoReader.LengthDelimited: raw = r.ReadBytes(); hasRaw = true; break;
                case 14 when w == ProtoReader.Varint: external = r.ReadVarint() == 1; break;
                default: r.Skip(w); break;
            }
        }
        if (external) throw new InvalidDataException($"{source}: initializer '{name}' keeps its data in an external file, which is not supported");
        ReadOnlyMemory<byte> data;
        if (hasRaw) data = raw;
        else if (floats.Count > 0) data = Encode<float>([.. floats]);
        else if (longs.Count > 0) data = Encode<long>([.. longs]);
        else data = Encode<int>([.. ints]);
        return new OnnxInitializer(name, dataType, [.. dims], data);
    }

    private static byte[] Encode<T>(T[] values) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}

/// <summary>A malformed protobuf message.</summary>
internal sealed class ProtoException(string message) : Exception(message);

/// <summary>Protobuf wire-format reader over a memory block (varints, fixed32/64, length-delimited).</summary>
internal struct ProtoReader(ReadOnlyMemory<byte> bytes)
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;
    private readonly ReadOnlyMemory<byte> _bytes = bytes;
    private int _pos;

    /// <summary>Reads the next tag; false at the end of the message.</summary>
    public bool Next(out int field, out int wire)
    {
        if (_pos >= _bytes.Length) { field = wire = 0; return false; }
        ulong tag = ReadVarint();
        field = (int)(tag >> 3);
        wire = (int)(tag & 7);
        if (field == 0) throw new ProtoException($"field number 0 at byte {_pos}");
        return true;
    }

    public ulong ReadVarint()
    {
        var s = _bytes.Span;
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= s.Length) throw new ProtoException("truncated varint");
            byte b = s[_pos++];
            v |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return v;
        }
        throw new ProtoException($"varint longer than 10 bytes at byte {_pos}");
    }

    public ReadOnlyMemory<byte> ReadBytes()
    {
        ulong len = ReadVarint();
        if (len > (ulong)(_bytes.Length - _pos)) throw new ProtoException($"length {len} at byte {_pos} runs past the end of the message ({_bytes.Length - _pos} bytes left)");
        var m = _bytes.Slice(_pos, (int)len);
        _pos += (int)len;
        return m;
    }

    public string ReadString() => Encoding.UTF8.GetString(ReadBytes().Span);

    public void Skip(int wire)
    {
        switch (wire)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Advance(8); break;
            case LengthDelimited: ReadBytes(); break;
            case Fixed32: Advance(4); break;
            default: throw new ProtoException($"unsupported wire type {wire} at byte {_pos}");
        }
    }

    public void ReadPackedOrSingleVarints(int wire, Action<long> add)
    {
        if (wire == Varint) { add((long)ReadVarint()); return; }
        if (wire != LengthDelimited) throw new ProtoException($"expected a varint field, got wire type {wire}");
        var inner = new ProtoReader(ReadBytes());
        while (inner._pos < inner._bytes.Length) add((long)inner.ReadVarint());
    }

    public void ReadPackedOrSingleFloats(int wire, List<float> into)
    {
        if (wire == Fixed32) { int p = _pos; Advance(4); into.Add(BitConverter.ToSingle(_bytes.Span.Slice(p, 4))); return; }
        if (wire != LengthDelimited) throw new ProtoException($"expected a float field, got wire type {wire}");
        var b = ReadBytes().Span;
        if (b.Length % 4 != 0) throw new ProtoException($"packed floats of {b.Length} bytes");
        for (int i = 0; i < b.Length; i += 4) into.Add(BitConverter.ToSingle(b.Slice(i, 4)));
    }

    private void Advance(int n)
    {
        if (_pos + n > _bytes.Length) throw new ProtoException($"truncated fixed-width field at byte {_pos}");
        _pos += n;
    }
}
