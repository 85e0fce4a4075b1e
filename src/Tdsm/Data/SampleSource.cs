using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tdsm.Formats;

namespace Tdsm.Data;

/// <summary>
/// N samples of equal size read one at a time, so a training loop can draw batches from data that
/// does not fit one array (NTU-60 xsub at T = 300 is about 7 GB of float32; NTU-120 exceeds .NET's
/// array limit).
/// </summary>
public interface ISampleSource
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>Floats per sample.</summary>
    int SampleSize { get; }

    /// <summary>Copies sample <paramref name="index"/> into <paramref name="destination"/> (SampleSize floats).</summary>
    void Read(int index, Span<float> destination);
}

/// <summary>Samples held in one array, (Count, SampleSize) row-major.</summary>
public sealed class ArraySamples : ISampleSource
{
    private readonly float[] _data;

    /// <param name="data">(Count, SampleSize) row-major values.</param>
    /// <param name="sampleSize">Floats per sample.</param>
    public ArraySamples(float[] data, int sampleSize)
    {
        if (sampleSize <= 0 || data.Length % sampleSize != 0) throw new ArgumentException($"{data.Length} values do not split into samples of {sampleSize}");
        _data = data; SampleSize = sampleSize; Count = data.Length / sampleSize;
    }

    public int Count { get; }
    public int SampleSize { get; }
    public void Read(int index, Span<float> destination) => _data.AsSpan((int)((long)index * SampleSize), SampleSize).CopyTo(destination);
}

/// <summary>A subset of another source, in the given index order (e.g. the seen-class samples).</summary>
public sealed class IndexedSamples(ISampleSource source, int[] indices) : ISampleSource
{
    public int Count => indices.Length;
    public int SampleSize => source.SampleSize;
    public void Read(int index, Span<float> destination) => source.Read(indices[index], destination);
}

/// <summary>
/// The rows of an .npy array on disk, read on demand with positional reads (thread-safe): an
/// (N, ...) array of &lt;f4 (read directly) or &lt;f8 (converted) in C order. Only the header is
/// read up front, so files of any size work.
/// </summary>
public sealed class NpySamples : ISampleSource, IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly NpyHeader _header;
    private readonly string _path;

    /// <summary>The array's shape (the first dimension is <see cref="Count"/>).</summary>
    public IReadOnlyList<int> Shape => _header.Shape;

    public int Count { get; }
    public int SampleSize { get; }

    /// <exception cref="TensorFormatException">Not a readable .npy, not float, or not at least 1-D.</exception>
    public NpySamples(string path)
    {
        _path = path;
        _header = Npy.ReadHeader(path);
        if (_header.Shape.Length < 1) throw new TensorFormatException(path, "a scalar has no samples");
        if (_header.DType is not (DType.F32 or DType.F64)) throw new TensorFormatException(path, $"samples must be <f4 or <f8, got {_header.DType}");
        Count = _header.Shape[0];
        long size = 1;
        for (int i = 1; i < _header.Shape.Length; i++) size *= _header.Shape[i];
        if (size > int.MaxValue / 8) throw new TensorFormatException(path, $"one sample of {size} values is too large");
        SampleSize = (int)size;
        _file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
    }

    public void Read(int index, Span<float> destination)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), $"sample {index} outside [0, {Count}) of {_path}");
        if (destination.Length < SampleSize) throw new ArgumentException($"destination holds {destination.Length} floats, a sample has {SampleSize}");
        int elem = DTypes.Size(_header.DType);
        long offset = _header.DataOffset + (long)index * SampleSize * elem;
        if (_header.DType == DType.F32)
        {
            ReadExactly(MemoryMarshal.AsBytes(destination[..SampleSize]), offset);
            return;
        }
        var tmp = new double[SampleSize];
        ReadExactly(MemoryMarshal.AsBytes(tmp.AsSpan()), offset);
        for (int i = 0; i < SampleSize; i++) destination[i] = (float)tmp[i];
    }

    private void ReadExactly(Span<byte> buffer, long offset)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(_file, buffer, offset);
            if (n <= 0) throw new TensorFormatException(_path, $"unexpected end of file at byte {offset}");
            buffer = buffer[n..];
            offset += n;
        }
    }

    public void Dispose() => _file.Dispose();
}
