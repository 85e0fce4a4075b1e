namespace Tdsm.Tensors;

/// <summary>
/// A handle to float32 storage owned by a backend (host array, device buffer). Model code only
/// passes handles to the op set; each backend knows what is behind them. Shapes are row-major.
/// </summary>
public abstract class Tensor
{
    /// <summary>The logical shape (row-major).</summary>
    public int[] Shape { get; }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>Creates a handle of the given shape.</summary>
    protected Tensor(int[] shape)
    {
        Shape = (int[])shape.Clone();
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]");
            n *= d;
        }
        if (n > int.MaxValue) throw new ArgumentException($"shape [{string.Join(",", shape)}] has more than 2^31 elements");
        Length = (int)n;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{GetType().Name}[{string.Join(",", Shape)}]";
}

/// <summary>A tensor in managed memory: a window of Length floats of <see cref="Data"/> starting at <see cref="Offset"/>.</summary>
public sealed class HostTensor : Tensor
{
    /// <summary>The backing array (possibly shared with other views).</summary>
    public float[] Data { get; }

    /// <summary>First element of this view in <see cref="Data"/>.</summary>
    public int Offset { get; }

    /// <summary>A view of <paramref name="data"/> at <paramref name="offset"/> with the given shape.</summary>
    public HostTensor(float[] data, int offset, params int[] shape) : base(shape)
    {
        if (offset < 0 || offset + Length > data.Length)
            throw new ArgumentException($"view [{offset}, {offset + Length}) is outside an array of {data.Length}");
        Data = data;
        Offset = offset;
    }

    /// <summary>A fresh zero-filled tensor.</summary>
    public HostTensor(params int[] shape) : this(new float[ShapeLength(shape)], 0, shape) { }

    /// <summary>The elements as a span.</summary>
    public Span<float> Span => Data.AsSpan(Offset, Length);

    private static int ShapeLength(int[] shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return checked((int)n);
    }
}
