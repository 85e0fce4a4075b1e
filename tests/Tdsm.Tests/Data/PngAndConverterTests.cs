using System.IO.Compression;
using Tdsm.Data;
using Tdsm.Formats;

namespace Tdsm.Tests.Data;

/// <summary>The PNG encoder and the resumable raw-folder conversion.</summary>
public class PngAndConverterTests : TempDirTest
{
    [Test]
    public void PngChunksAndPixelsDecode()
    {
        var img = new PngImage(5, 3);
        img.Set(1, 2, (10, 20, 30));
        var b = img.Encode();
        Assert.That(b[..8], Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));
        Assert.That(System.Text.Encoding.ASCII.GetString(b, 12, 4), Is.EqualTo("IHDR"));
        Assert.That((b[19], b[23], b[24], b[25]), Is.EqualTo(((byte)5, (byte)3, (byte)8, (byte)2)));
        // Every PNG ends with the same IEND chunk: length 0, "IEND", CRC AE 42 60 82.
        Assert.That(b[^12..], Is.EqualTo(new byte[] { 0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82 }));
        int len = (b[33] << 24) | (b[34] << 16) | (b[35] << 8) | b[36];
        Assert.That(System.Text.Encoding.ASCII.GetString(b, 37, 4), Is.EqualTo("IDAT"));
        using var z = new ZLibStream(new MemoryStream(b, 41, len), CompressionMode.Decompress);
        var raw = new MemoryStream();
        z.CopyTo(raw);
        var px = raw.ToArray();
        Assert.That(px, Has.Length.EqualTo(3 * (1 + 5 * 3)));
        Assert.That(px.AsSpan(2 * 16 + 1 + 3, 3).ToArray(), Is.EqualTo(new byte[] { 10, 20, 30 }));
        Assert.That(px[0], Is.Zero, "filter byte");
    }

    [Test]
    public void FolderConversionSplitsSkipsMissingAndResumes()
    {
        string raw = Path.Combine(Dir, "raw"), outDir = Path.Combine(Dir, "out");
        Directory.CreateDirectory(raw);
        var cfg = new SynthConfig(Frames: 40);
        // Performer 1 trains and performer 3 tests under cross-subject; one sample is on a missing list.
        string[] names = ["S001C001P001R001A001", "S001C002P001R001A005", "S001C001P003R001A002", "S002C003P001R002A010", "S001C001P003R002A003", "S001C001P001R002A007"];
        for (int i = 0; i < names.Length; i++) SyntheticDataset.ToSkeletonFile(cfg, i, "").Write(Path.Combine(raw, names[i] + ".skeleton"));
        var missing = Path.Combine(Dir, "missing.txt");
        File.WriteAllText(missing, "header line\n\nS001C001P001R002A007\n");
        var o = new NtuConvertOptions(NtuBenchmark.CrossSubject, false, Frames: 40, ChunkSize: 2, MissingLists: [missing]);
        var r = NtuFolderConverter.Convert(raw, outDir, o);
        Assert.That(r, Is.EqualTo(new NtuConvertResult(3, 2, 1, 0)));
        var tx = Npy.Read(Path.Combine(outDir, "train_data.npy"));
        Assert.That(tx.Shape, Is.EqualTo(new[] { 3, 3, 40, 25, 2 }));
        Assert.That(Npy.Read(Path.Combine(outDir, "train_label.npy")).ToInt64(), Is.EqualTo(new long[] { 0, 4, 9 }));
        Assert.That(Npy.Read(Path.Combine(outDir, "val_label.npy")).ToInt64(), Is.EqualTo(new long[] { 1, 2 }));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "val_names.txt")), Is.EqualTo(new[] { "S001C001P003R001A002", "S001C001P003R002A003" }));
        var expect = SkeletonPreprocessing.Process(NtuSkeletonFile.Read(Path.Combine(raw, names[1] + ".skeleton")), 40);
        Assert.That(tx.ToFloat32().AsSpan(expect.Length, expect.Length).ToArray(), Is.EqualTo(expect), "row 1 = S001C002P001R001A005");
        var firstBytes = File.ReadAllBytes(Path.Combine(outDir, "train_data.npy"));

        // A crash in the val part: a corrupt file stops the run, finished train chunks stay.
        File.WriteAllText(Path.Combine(raw, "S001C001P003R002A003.skeleton"), "5\n1\n");
        File.Delete(Path.Combine(outDir, "train_data.npy"));
        var e = Assert.Throws<SkeletonFormatException>(() => NtuFolderConverter.Convert(raw, outDir, o))!;
        Assert.That(e.Message, Does.Contain("S001C001P003R002A003.skeleton:3"));
        SyntheticDataset.ToSkeletonFile(cfg, 4, "").Write(Path.Combine(raw, "S001C001P003R002A003.skeleton"));
        var r2 = NtuFolderConverter.Convert(raw, outDir, o);
        Assert.That(r2.ChunksReused, Is.EqualTo(2), "both train chunks reused, the val chunk redone");
        Assert.That(File.ReadAllBytes(Path.Combine(outDir, "train_data.npy")), Is.EqualTo(firstBytes));
        Assert.That(Directory.Exists(Path.Combine(outDir, ".parts")), Is.False);
    }

    [Test]
    public void AFolderWithoutSkeletonFilesIsAnError()
    {
        string raw = Path.Combine(Dir, "empty"), outDir = Path.Combine(Dir, "out2");
        Directory.CreateDirectory(raw);
        File.WriteAllText(Path.Combine(raw, "readme.txt"), "not a skeleton");
        var o = new NtuConvertOptions(NtuBenchmark.CrossSubject, false, Frames: 40);
        var e = Assert.Throws<DirectoryNotFoundException>(() => NtuFolderConverter.Convert(raw, outDir, o))!;
        Assert.That(e.Message, Does.Contain(raw).And.Contain("no .skeleton files"));
        Assert.That(Directory.Exists(outDir), Is.False, "nothing written");
    }
}
