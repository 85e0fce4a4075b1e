using System.Text;
using System.Runtime.InteropServices;
using Tdsm.Formats;

namespace Tdsm.Tests;

/// <summary>safetensors and .npy: round trips, the shipped fixtures, and each kind of bad input.</summary>
public class FormatsTests : TempDirTest
{
    [Test]
    public void SafetensorsRoundTripsEveryDtypeAndMetadata()
    {
        var path = Path.Combine(Dir, "a.safetensors");
        double[] vals = [1.5, -2.25, 3, 0.125, -7, 100];
        double[] ints = [1, -2, 3, 0, -7, 100];
        var tensors = new[] { DType.F32, DType.F64, DType.F16, DType.BF16, DType.I32, DType.I64 }
            .Select(d => SafeTensor.FromFloat64("t_" + d, d, [2, 3], d is DType.I32 or DType.I64 ? ints : vals)).ToList();
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { ["config"] = "{\"a\": 1}" });
        var f = SafeTensorsFile.Read(path);
        Assert.That(f.Metadata["config"], Is.EqualTo("{\"a\": 1}"));
        Assert.That(f.Names, Is.EqualTo(tensors.Select(t => t.Name).ToArray()));
        foreach (var t in tensors)
        {
            Assert.That(f[t.Name].DType, Is.EqualTo(t.DType));
            Assert.That(f[t.Name].Shape, Is.EqualTo(new[] { 2, 3 }));
            Assert.That(f[t.Name].ToFloat64(), Is.EqualTo(t.DType is DType.I32 or DType.I64 ? ints : vals), t.Name); // all values exact in every dtype
        }
        Assert.That(Directory.GetFiles(Dir), Has.Length.EqualTo(1), "no temporary file left behind");
    }

    [Test]
    public void ReadsTheShippedFixture()
    {
        var f = SafeTensorsFile.Read(TestPaths.Fixture("dit_small.safetensors"));
        Assert.That(f["param.x_embedder.weight"].Shape, Is.EqualTo(new[] { 64, 16 }));
        Assert.That(f["in.t"].DType, Is.EqualTo(DType.I32));
        Assert.That(f.Metadata, Does.ContainKey("config"));
    }

    private static byte[] Header(string json, long? sizeOverride = null)
    {
        var h = Encoding.UTF8.GetBytes(json);
        var b = new byte[8 + h.Length];
        BitConverter.TryWriteBytes(b.AsSpan(0, 8), (ulong)(sizeOverride ?? h.Length));
        h.CopyTo(b, 8);
        return b;
    }

    [Test]
    public void TruncatedSafetensorsIsOneClearError()
    {
        var e = Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("x.safetensors", [1, 2, 3]));
        Assert.That(e!.Message, Does.Contain("x.safetensors").And.Contain("truncated"));
        var e2 = Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("y.safetensors", Header("{}", 1000)));
        Assert.That(e2!.Message, Does.Contain("y.safetensors").And.Contain("truncated"));
    }

    [Test]
    public void OffsetPastTheEndIsOneClearError()
    {
        var b = Header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}").Concat(new byte[8]).ToArray();
        var e = Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("z.safetensors", b));
        Assert.That(e!.Message, Does.Contain("'w'").And.Contain("past the end"));
    }

    [Test]
    public void WrongDtypeIsOneClearError()
    {
        var b = Header("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}").Concat(new byte[4]).ToArray();
        var e = Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("d.safetensors", b));
        Assert.That(e!.Message, Does.Contain("unsupported dtype 'U8'"));
        var b2 = Header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}").Concat(new byte[8]).ToArray();
        var e2 = Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("d.safetensors", b2));
        Assert.That(e2!.Message, Does.Contain("needs 16"));
    }

    [Test]
    public void NpyRoundTripsAllDtypes()
    {
        var p = Path.Combine(Dir, "a.npy");
        Npy.Write(p, [2, 2], new float[] { 1, 2, 3, 4.5f });
        var a = Npy.Read(p);
        Assert.That(a.DType, Is.EqualTo(DType.F32));
        Assert.That(a.ToFloat32(), Is.EqualTo(new float[] { 1, 2, 3, 4.5f }));
        Npy.Write(p, [3], new long[] { 5, -1, 7 });
        Assert.That(Npy.Read(p).ToInt64(), Is.EqualTo(new long[] { 5, -1, 7 }));
        Npy.Write(p, [1, 3], new int[] { 5, -1, 7 });
        Assert.That(Npy.Read(p).Shape, Is.EqualTo(new[] { 1, 3 }));
        Npy.Write(p, [2], new double[] { 0.1, 0.2 });
        Assert.That(Npy.Read(p).ToFloat64(), Is.EqualTo(new[] { 0.1, 0.2 }));
    }

    [Test]
    public void ReadsTheShippedSplitFiles()
    {
        var ru5 = Npy.Read(TestPaths.Shared("data/label_splits/ntu60/ru5.npy"));
        Assert.That(ru5.DType, Is.EqualTo(DType.I64));
        Assert.That(ru5.ElementCount, Is.EqualTo(5));
    }

    private static byte[] NpyWithHeader(string dict, int dataBytes)
    {
        var bytes = Npy.Encode("<f4", [1], new byte[4]);
        var h = dict.PadRight(118) + "\n";
        var b = new List<byte>(bytes[..8]) { (byte)h.Length, 0 };
        b.AddRange(Encoding.Latin1.GetBytes(h));
        b.AddRange(new byte[dataBytes]);
        return b.ToArray();
    }

    [Test]
    public void NpyFortranOrderIsRejectedClearly()
    {
        var b = NpyWithHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16);
        var e = Assert.Throws<TensorFormatException>(() => Npy.Parse("f.npy", b));
        Assert.That(e!.Message, Does.Contain("f.npy").And.Contain("Fortran"));
    }

    [TestCase("<u2")]
    [TestCase(">f4")]
    [TestCase("|b1")]
    public void NpyUnsupportedDtypeIsRejectedClearly(string descr)
    {
        var b = NpyWithHeader($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}", 16);
        var e = Assert.Throws<TensorFormatException>(() => Npy.Parse("g.npy", b));
        Assert.That(e!.Message, Does.Contain("unsupported dtype").And.Contain(descr));
    }

    [Test]
    public void NpyTruncatedDataIsRejected()
    {
        var b = NpyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", 8);
        var e = Assert.Throws<TensorFormatException>(() => Npy.Parse("h.npy", b));
        Assert.That(e!.Message, Does.Contain("truncated"));
    }

    [Test]
    public void HugeShapesAreRejectedAsFormatErrors()
    {
        var npy = Npy.Encode("<f4", [int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue], []);
        Assert.Throws<TensorFormatException>(() => Npy.Parse("big.npy", npy));
        var st = Header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,4]}}").Concat(new byte[4]).ToArray();
        Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("big.safetensors", st));
    }

    /// <summary>A key repeated in the header (JSON allows it) would hide a tensor or a metadata value: refused.</summary>
    [Test]
    public void RepeatedHeaderKeysAreRejected()
    {
        var twice = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}").Concat(new byte[8]).ToArray();
        Assert.That(Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("t.safetensors", twice))!.Message, Does.Contain("tensor 'a' appears twice"));
        var meta = Header("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}");
        Assert.That(Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("m.safetensors", meta))!.Message, Does.Contain("key 'k' appears twice"));
        var offsets = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}").Concat(new byte[4]).ToArray();
        Assert.That(Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Parse("o.safetensors", offsets))!.Message, Does.Contain("'a': data_offsets"));
    }

    /// <summary>The writers refuse what the readers would refuse, before any file exists.</summary>
    [Test]
    public void WritersRefuseWhatTheReadersWouldRefuse()
    {
        string npy = Path.Combine(Path.GetTempPath(), "tdsm-neg-" + Guid.NewGuid().ToString("N") + ".npy");
        Assert.Throws<ArgumentException>(() => Npy.Write(npy, [-1, -2], new float[] { 1, 2 }), "(-1)·(-2) = 2 elements, but a negative dimension");
        Assert.That(File.Exists(npy), Is.False);
        Assert.Throws<ArgumentException>(() => SafeTensor.FromFloat32("a", [-1, -2], new float[] { 1, 2 }));
        string st = Path.ChangeExtension(npy, ".safetensors");
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(st, [new SafeTensor("a", DType.F32, [10], new byte[4])]));
        Assert.Throws<ArgumentException>(() => SafeTensorsFile.Write(st, [SafeTensor.FromFloat32("__metadata__", [1], new float[] { 1 })]));
        Assert.That(File.Exists(st), Is.False);
    }

    /// <summary>The header-only reader (used to stream samples from large arrays) reads a header of any length, as the
    /// whole-file reader does, and reports a truncated header with the file's real size.</summary>
    [Test]
    public void HeaderOnlyReadingHandlesLongHeaders()
    {
        string path = Path.Combine(Path.GetTempPath(), "tdsm-longhdr-" + Guid.NewGuid().ToString("N") + ".npy");
        try
        {
            // A version-2 header padded to 2 MB (NumPy pads with spaces; a long header is legal).
            string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
            int total = ((12 + (2 << 20) + 63) / 64) * 64;
            var header = dict.PadRight(total - 12 - 1) + "\n";
            using (var fs = File.Create(path))
            {
                fs.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 2, 0]);
                fs.Write(BitConverter.GetBytes((uint)header.Length));
                fs.Write(Encoding.Latin1.GetBytes(header));
                fs.Write(MemoryMarshal.AsBytes(new float[] { 1, 2, 3 }.AsSpan()));
            }
            Assert.That(Npy.ReadHeader(path).Shape, Is.EqualTo(new[] { 3 }));
            Assert.That(Npy.Read(path).ToFloat32(), Is.EqualTo(new float[] { 1, 2, 3 }));
            // Cut inside the header.
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..5000]);
            var e = Assert.Throws<TensorFormatException>(() => Npy.ReadHeader(path))!;
            Assert.That(e.Message, Does.Contain("truncated").And.Contain("file has 4988"));
        }
        finally { File.Delete(path); }
    }

    /// <summary>A folder where a file is expected is named as such by every reader (not "access denied").</summary>
    [Test]
    public void AFolderForAFileIsNamedAsSuch()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tdsm-folder-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            Assert.That(Assert.Throws<TensorFormatException>(() => Npy.Read(dir))!.Message, Does.Contain("is a folder, expected a file"));
            Assert.That(Assert.Throws<TensorFormatException>(() => Npy.ReadHeader(dir))!.Message, Does.Contain("is a folder, expected a file"));
            Assert.That(Assert.Throws<TensorFormatException>(() => SafeTensorsFile.Read(dir))!.Message, Does.Contain("is a folder, expected a file"));
            Assert.That(Assert.Throws<Tdsm.Data.DataFormatException>(() => Tdsm.Data.ClassList.ReadCsv(dir))!.Message, Does.Contain("is a folder, expected a file"));
            Assert.That(Assert.Throws<Tdsm.Data.SkeletonFormatException>(() => Tdsm.Data.NtuSkeletonFile.Read(dir))!.Message, Does.Contain("is a folder, expected a file"));
        }
        finally { Directory.Delete(dir); }
    }
}
