using Tdsm.Data;

namespace Tdsm.Tests.Data;

/// <summary>The .skeleton parser on the real NTU sample, on generated files, and on broken input.</summary>
public class NtuSkeletonTests : TempDirTest
{
    private static string RealFile => TestPaths.Shared("data/ntu_raw/S001C001P001R001A001.skeleton");

    [Test]
    public void RealFileHasTheCountsAndValuesReadByHand()
    {
        var f = NtuSkeletonFile.Read(RealFile);
        Assert.That(f.FrameCount, Is.EqualTo(103));
        Assert.That(f.Frames.All(fr => fr.Length == 1), Is.True);
        var b0 = f.Frames[0][0];
        Assert.That(b0.BodyId, Is.EqualTo(72057594037931101UL));
        // Line 3: "72057594037931101 0 1 1 1 1 0 0.02764709 0.05745083 2"
        Assert.That(b0.BodyInfo, Is.EqualTo(new[] { 0, 1, 1, 1, 1, 0, 0.02764709, 0.05745083, 2 }).Within(1e-9));
        // Line 5: frame 1 joint 1 "0.2181153 0.1725972 3.785547 277.419 191.8218 1036.233 519.1677 -0.2059419 0.05349901 0.9692109 -0.1239193 2"
        Assert.That(b0.Joints[..12], Is.EqualTo(new float[] { 0.2181153f, 0.1725972f, 3.785547f, 277.419f, 191.8218f, 1036.233f, 519.1677f, -0.2059419f, 0.05349901f, 0.9692109f, -0.1239193f, 2f }));
        // Line 6: frame 1 joint 2.
        Assert.That(b0.Position(1), Is.EqualTo(new Vec3(0.2323292f, 0.4326636f, 3.714767f)));
        // Line 1386: frame 50 joint 12 "0.1860569 0.637532 3.466819 ... 1" (tracking state 1 = inferred).
        var b49 = f.Frames[49][0];
        Assert.That(b49.Position(11), Is.EqualTo(new Vec3(0.1860569f, 0.637532f, 3.466819f)));
        Assert.That(b49.Joints[11 * 12 + 11], Is.EqualTo(1f));
        // Line 2885 (last): frame 103 joint 25 "0.1140334 0.7601054 3.444 268.4992 127.5008 1012.275 334.0016 0 0 0 0 2".
        Assert.That(f.Frames[102][0].Position(24), Is.EqualTo(new Vec3(0.1140334f, 0.7601054f, 3.444f)));
        Assert.That(f.Frames[102][0].BodyInfo[6], Is.EqualTo(0.1221503).Within(1e-12));
    }

    [Test]
    public void WriteThenReadRoundTripsRealAndGeneratedFiles()
    {
        var real = NtuSkeletonFile.Read(RealFile);
        var p1 = Path.Combine(Dir, "real.skeleton");
        real.Write(p1);
        var back = NtuSkeletonFile.Read(p1);
        Assert.That(back.FrameCount, Is.EqualTo(real.FrameCount));
        for (int t = 0; t < real.FrameCount; t++)
        {
            Assert.That(back.Frames[t][0].Joints, Is.EqualTo(real.Frames[t][0].Joints), $"frame {t}");
            Assert.That(back.Frames[t][0].BodyInfo, Is.EqualTo(real.Frames[t][0].BodyInfo), $"frame {t}");
        }
        // Generated: a frame with zero bodies and one with two must survive too.
        var gen = SyntheticDataset.ToSkeletonFile(new SynthConfig(Frames: 64), 5, "x");
        var frames = gen.Frames.ToList();
        frames.Insert(3, []);
        frames[4] = [frames[4][0], frames[5][0] with { BodyId = 7 }];
        var p2 = Path.Combine(Dir, "gen.skeleton");
        new NtuSkeletonFile(p2, frames.ToArray()).Write(p2);
        var g = NtuSkeletonFile.Read(p2);
        Assert.That(g.FrameCount, Is.EqualTo(frames.Count));
        Assert.That(g.Frames[3], Is.Empty);
        Assert.That(g.Frames[4].Select(b => b.BodyId), Is.EqualTo(new ulong[] { frames[4][0].BodyId, 7 }));
        Assert.That(g.Frames[10][0].Joints, Is.EqualTo(frames[10][0].Joints));
    }

    [TestCase("103\r\n1\r\n", 3, "the 10-value body line of frame 1 body 1")]
    [TestCase("2\n0\n", 3, "the body count of frame 2")]
    [TestCase("x\n", 1, "the frame count")]
    [TestCase("1\n1\n5 0 1 1 1 1 0 0.1 0.1 2\n24\n", 4, "expected joint count 25")]
    [TestCase("1\n1\n5 0 1 1 1 1 0 0.1 0.1 2\n25\n1 2 3\n", 5, "joint 1 of frame 1 body 1 (12 values)")]
    [TestCase("1\n0\nextra\n", 3, "expected end of file")]
    [TestCase("1\n1\n5 0 1 1 1 1 0 nan 0.1 2\n", 3, "value 8 is not a finite float32 number")]
    [TestCase("1\n1\n5 0 1 1 1 1 0 0.1 0.1 2\n25\n1e39 0 0 0 0 0 0 0 0 0 0 0\n", 5, "value 1 is not a finite float32 number: '1e39'")]
    public void MalformedInputNamesFileLineAndExpectation(string text, int line, string expected)
    {
        var e = Assert.Throws<SkeletonFormatException>(() => NtuSkeletonFile.Parse("bad.skeleton", text))!;
        Assert.That(e.Line, Is.EqualTo(line));
        Assert.That(e.Message, Does.StartWith($"bad.skeleton:{line}: "));
        Assert.That(e.Message, Does.Contain(expected));
    }

    [Test]
    public void TruncatedRealFileReportsWhereItEnds()
    {
        var lines = File.ReadAllText(RealFile).Split('\n');
        var text = string.Join('\n', lines.Take(1000));
        var e = Assert.Throws<SkeletonFormatException>(() => NtuSkeletonFile.Parse(RealFile, text))!;
        Assert.That(e.Line, Is.EqualTo(1001));
        Assert.That(e.Message, Does.Contain("truncated"));
        Assert.That(e.Message, Does.Contain(RealFile));
    }

    [Test]
    public void MissingFileIsASkeletonFormatException()
    {
        var e = Assert.Throws<SkeletonFormatException>(() => NtuSkeletonFile.Read(Path.Combine(Dir, "none.skeleton")))!;
        Assert.That(e.Message, Does.Contain("not found"));
    }

    [Test]
    public void SampleNamesAndProtocols()
    {
        var n = NtuSampleName.Parse("/x/S017C003P020R002A120.skeleton");
        Assert.That((n.Setup, n.Camera, n.Performer, n.Replication, n.Action, n.Label), Is.EqualTo((17, 3, 20, 2, 120, 119)));
        Assert.That(NtuProtocols.IsTraining(n, NtuBenchmark.CrossSubject, ntu120: true), Is.False);
        Assert.That(NtuProtocols.IsTraining(n, NtuBenchmark.CrossSetup, ntu120: true), Is.False);
        Assert.That(NtuProtocols.IsTraining(n, NtuBenchmark.CrossView, ntu120: false), Is.True);
        Assert.That(NtuProtocols.IsTraining(NtuSampleName.Parse("S002C001P103R001A001"), NtuBenchmark.CrossSubject, ntu120: true), Is.True);
        Assert.That(NtuProtocols.TrainingSubjects60, Has.Count.EqualTo(20));
        Assert.That(NtuProtocols.TrainingSubjects120, Has.Count.EqualTo(53));
        Assert.Throws<FormatException>(() => NtuSampleName.Parse("S01C001P001R001A001"));
        var missing60 = NtuProtocols.ReadMissingList(TestPaths.Shared("data/ntu_raw/NTU_RGBD_samples_with_missing_skeletons.txt"));
        var missing120 = NtuProtocols.ReadMissingList(TestPaths.Shared("data/ntu_raw/NTU_RGBD120_samples_with_missing_skeletons.txt"));
        Assert.That(missing60, Has.Count.EqualTo(302)); // the file's own header says 302
        Assert.That(missing120, Has.Count.EqualTo(535)); // and 535
        Assert.That(missing60, Does.Contain("S001C002P005R002A008"));
    }
}
