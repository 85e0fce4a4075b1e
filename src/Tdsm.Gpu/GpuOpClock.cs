using ILGPU.Runtime;
using Tdsm.Ops;

namespace Tdsm.Gpu;

/// <summary>
/// Profile marks on the device's default stream (CUDA events, or the simulator's clock; the device must be opened
/// with profiling, e.g. Backends.Create(name, profiling: true)): each
/// mark completes when every launch queued before it has finished, so the interval between two
/// marks is the device time of what was queued between them, idle gaps included.
/// </summary>
public sealed class GpuOpClock(GpuDevice device) : IOpClock
{
    public object Mark() => device.Accelerator.DefaultStream.AddProfilingMarker();

    public double Milliseconds(object from, object to) => ((ProfilingMarker)to).MeasureFrom((ProfilingMarker)from).TotalMilliseconds;

    public void Release(object mark) => ((ProfilingMarker)mark).Dispose();
}
