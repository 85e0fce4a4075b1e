using Tdsm.Reference;
using Tdsm.Tensors;

namespace Tdsm.Cpu;

/// <summary>
/// The managed CPU tier: the heavy ops (Linear forward and backward) run on the multi-threaded
/// SIMD <see cref="Gemm"/>; attention and LayerNorm run rows in parallel; the rest inherit the
/// reference implementation until a profile says otherwise.
/// </summary>
public class CpuOps : ReferenceOps
{
    public override string Name => "cpu";

    private static HostTensor H(Tensor t) => (HostTensor)t;

    public override void Linear(Tensor x, Tensor w, Tensor? b, Tensor y, int rows, int inF, int outF)
    {
        HostTensor hx = H(x), hw = H(w), hy = H(y);
        Gemm.MatMulABt(hx.Data, hx.Offset, hw.Data, hw.Offset, hy.Data, hy.Offset, rows, outF, inF, accumulate: false);
        if (b is null) return;
        var bias = H(b).Span;
        for (int r = 0; r < rows; r++)
        {
            var row = hy.Data.AsSpan(hy.Offset + r * outF, outF);
            Gemm.Axpy(1f, bias, row);
        }
    }

    public override void LinearBackward(Tensor dy, Tensor x, Tensor w, Tensor? dx, Tensor dw, Tensor? db, int rows, int inF, int outF, bool accumulateDx)
    {
        HostTensor hdy = H(dy), hx = H(x), hw = H(w), hdw = H(dw);
        if (dx is not null)
        {
            var hdx = H(dx);
            Gemm.MatMulAB(hdy.Data, hdy.Offset, hw.Data, hw.Offset, hdx.Data, hdx.Offset, rows, inF, outF, accumulateDx);
        }
        Gemm.MatMulAtB(hdy.Data, hdy.Offset, hx.Data, hx.Offset, hdw.Data, hdw.Offset, outF, inF, rows, accumulate: true);
        if (db is null) return;
        var bias = H(db).Span;
        for (int r = 0; r < rows; r++)
            Gemm.Axpy(1f, hdy.Data.AsSpan(hdy.Offset + r * outF, outF), bias);
    }
}
