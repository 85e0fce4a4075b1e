using ILGPU;
using ILGPU.Runtime;
using Tdsm.Tensors;

namespace Tdsm.Gpu;

/// <summary>A tensor in device memory: a view of a buffer owned by <see cref="GpuOps"/>.</summary>
public sealed class GpuTensor : Tensor
{
    public ArrayView<float> View { get; }

    internal GpuTensor(ArrayView<float> view, int[] shape) : base(shape)
    {
        if (view.Length != Length) throw new ArgumentException($"device view of {view.Length} elements for shape [{string.Join(",", shape)}]");
        View = view;
    }
}
