using Tdsm.Tensors;
using System.Diagnostics;
using System.Text;
using Tdsm.Data;
using Tdsm.Formats;

namespace Tdsm.Tests.Data;

/// <summary>Random mutations of a .skeleton and an .npy file: only the documented exception types, fast.</summary>
public class FuzzTests
{
    private static byte[] Mutate(byte[] src, ref Xoshiro256 rng, bool text)
    {
        var b = (byte[])src.Clone();
        switch (rng.NextInt(6))
        {
            case 0: return b[..rng.NextInt(b.Length)]; // truncation
            case 1: // byte flips
                for (int i = 0, n = 1 + rng.NextInt(8); i < n; i++) b[rng.NextInt(b.Length)] = (byte)rng.NextInt(256);
                return b;
            case 2: // printable substitutions that keep the text shape
                const string alphabet = "0123456789-.eE \n\r+x9";
                for (int i = 0, n = 1 + rng.NextInt(8); i < n; i++) b[rng.NextInt(b.Length)] = (byte)alphabet[rng.NextInt(alphabet.Length)];
                return b;
            case 3: // delete a span
                {
                    int s = rng.NextInt(b.Length), n = Math.Min(b.Length - s, 1 + rng.NextInt(200));
                    return [.. b[..s], .. b[(s + n)..]];
                }
            case 4: // duplicate a span
                {
                    int s = rng.NextInt(b.Length), n = Math.Min(b.Length - s, 1 + rng.NextInt(200));
                    return [.. b[..(s + n)], .. b[s..]];
                }
            default: // huge or odd numbers spliced in
                {
                    string[] words = text ? ["999999999", "2147483648", "-1", "1e400", "NaN", "0", "25", "1.5"] : ["(99999, 99999, 99999)", "<f2", "True", "(-1,)", "{}", "'", "(0,)"];
                    var w = Encoding.ASCII.GetBytes(words[rng.NextInt(words.Length)]);
                    int s = rng.NextInt(Math.Min(b.Length, text ? b.Length : 128));
                    return [.. b[..s], .. w, .. b[Math.Min(b.Length, s + w.Length)..]];
                }
        }
    }

    [Test]
    public void SkeletonMutationsThrowOnlySkeletonFormatException()
    {
        // A short generated file (8 frames) keeps each parse cheap; plus the real file's first 3 frames.
        var gen = SyntheticDataset.ToSkeletonFile(new SynthConfig(Frames: 16, MaxLength: 8), 3, "");
        var tmp = Path.Combine(Path.GetTempPath(), "fuzz-" + Guid.NewGuid().ToString("N") + ".skeleton");
        gen.Write(tmp);
        var genBytes = File.ReadAllBytes(tmp);
        File.Delete(tmp);
        var realLines = File.ReadAllText(TestPaths.Shared("data/ntu_raw/S001C001P001R001A001.skeleton")).Split('\n');
        var realBytes = Encoding.ASCII.GetBytes("3\r\n" + string.Join('\n', realLines.Skip(1).Take(3 * 28)) + "\n");
        Assert.That(NtuSkeletonFile.Parse("real3", Encoding.ASCII.GetString(realBytes)).FrameCount, Is.EqualTo(3));

        var rng = new Xoshiro256(2024);
        var sw = Stopwatch.StartNew();
        int parsed = 0, rejected = 0;
        for (int i = 0; i < 10000; i++)
        {
            var m = Mutate(i % 2 == 0 ? genBytes : realBytes, ref rng, text: true);
            try { NtuSkeletonFile.Parse("fuzz", Encoding.Latin1.GetString(m)); parsed++; }
            catch (SkeletonFormatException e) { rejected++; Assert.That(e.Message, Does.StartWith("fuzz")); }
        }
        TestContext.Out.WriteLine($"skeleton fuzz: {parsed} parsed, {rejected} rejected with SkeletonFormatException, {sw.Elapsed.TotalSeconds:F2} s");
        Assert.That(rejected, Is.GreaterThan(5000));
        Assert.That(sw.Elapsed.TotalSeconds, Is.Not.NaN.And.LessThan(30), $"{parsed} parsed, {rejected} rejected");
    }

    [Test]
    public void NpyMutationsThrowOnlyTensorFormatException()
    {
        var src = Npy.Encode("<f4", [4, 3, 2], new byte[4 * 3 * 2 * 4]);
        var srcI = Npy.Encode("<i8", [8], new byte[64]);
        var rng = new Xoshiro256(77);
        var sw = Stopwatch.StartNew();
        int parsed = 0, rejected = 0;
        for (int i = 0; i < 10000; i++)
        {
            var m = Mutate(i % 2 == 0 ? src : srcI, ref rng, text: false);
            try { Npy.Parse("fuzz.npy", m); parsed++; }
            catch (TensorFormatException e) { rejected++; Assert.That(e.FilePath, Is.EqualTo("fuzz.npy")); }
        }
        TestContext.Out.WriteLine($"npy fuzz: {parsed} parsed, {rejected} rejected with TensorFormatException, {sw.Elapsed.TotalSeconds:F2} s");
        Assert.That(rejected, Is.GreaterThan(5000));
        Assert.That(sw.Elapsed.TotalSeconds, Is.Not.NaN.And.LessThan(30), $"{parsed} parsed, {rejected} rejected");
    }
}
