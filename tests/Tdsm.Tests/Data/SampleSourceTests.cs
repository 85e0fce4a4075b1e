using Tdsm.Data;
using Tdsm.Formats;
using Tdsm.StGcn;
using Tdsm.Tensors;

namespace Tdsm.Tests.Data;

/// <summary>Reading samples from disk row by row gives exactly what the in-memory array gives, and training on either is identical.</summary>
public class SampleSourceTests : TempDirTest
{
    [Test]
    public void NpyRowsEqualTheArrayForFloat32AndFloat64()
    {
        var v = new float[7 * 3 * 5]; new Rng(1).FillNormal(v);
        string p32 = Path.Combine(Dir, "a.npy"), p64 = Path.Combine(Dir, "b.npy");
        Npy.Write(p32, [7, 3, 5], v);
        Npy.Write(p64, [7, 3, 5], v.Select(f => (double)f).ToArray());
        var mem = new ArraySamples(v, 15);
        using var s32 = new NpySamples(p32);
        using var s64 = new NpySamples(p64);
        Assert.That((s32.Count, s32.SampleSize, s64.Count, s64.SampleSize), Is.EqualTo((7, 15, 7, 15)));
        var a = new float[15]; var b = new float[15]; var c = new float[15];
        foreach (int i in new[] { 6, 0, 3 })
        {
            mem.Read(i, a); s32.Read(i, b); s64.Read(i, c);
            Assert.That(b, Is.EqualTo(a));
            Assert.That(c, Is.EqualTo(a));
        }
        var sub = new IndexedSamples(s32, [5, 2]);
        sub.Read(1, b); mem.Read(2, a);
        Assert.That(b, Is.EqualTo(a));
        Assert.Throws<ArgumentOutOfRangeException>(() => s32.Read(7, b));
    }

    [Test]
    public void IntegerOrTruncatedFilesAreRejected()
    {
        string p = Path.Combine(Dir, "i.npy");
        Npy.Write(p, [4, 2], new long[8]);
        Assert.Throws<TensorFormatException>(() => new NpySamples(p));
        Npy.Write(p, [4, 2], new float[8]);
        var bytes = File.ReadAllBytes(p);
        File.WriteAllBytes(p, bytes[..^4]);
        var e = Assert.Throws<TensorFormatException>(() => new NpySamples(p));
        Assert.That(e!.Message, Does.Contain("truncated"));
    }

    [Test]
    public void TrainingFromDiskEqualsTrainingFromMemory()
    {
        var cfg = new StGcnConfig(3, 3, [new BlockSpec(3, 8, 1, false), new BlockSpec(8, 8, 2, true)]);
        int n = 12, t = 6, m = 2, size = 3 * t * 25 * m;
        var x = new float[n * size]; new Rng(5).FillNormal(x);
        var y = Enumerable.Range(0, n).Select(i => i % 3).ToArray();
        string path = Path.Combine(Dir, "x.npy");
        Npy.Write(path, [n, 3, t, 25, m], x);
        var opts = new StGcnTrainOptions { Epochs = 2, BatchSize = 4, Seed = 3 };
        var inMemory = new StGcnModel(cfg, new StGcnCpuOps(), 7);
        StGcnTraining.Train(inMemory, x, y, n, t, m, opts);
        var fromDisk = new StGcnModel(cfg, new StGcnCpuOps(), 7);
        using (var src = new NpySamples(path)) StGcnTraining.Train(fromDisk, src, y, t, m, opts);
        Assert.That(fromDisk.Parameters, Is.EqualTo(inMemory.Parameters));
        using var src2 = new NpySamples(path);
        Assert.That(StGcnTraining.ExtractFeatures(fromDisk, src2, t, m, batchSize: 5), Is.EqualTo(StGcnTraining.ExtractFeatures(inMemory, x, n, t, m, batchSize: 5)));
    }
}
