using Tdsm.Tensors;
using Tdsm.Data;

namespace Tdsm.Tests.Data;

/// <summary>Body selection and pre_normalization on the real NTU file and on generated sequences.</summary>
public class PreprocessingTests
{
    private const int T = SkeletonPreprocessing.DefaultFrames;
    private static int I(int c, int t, int v, int m, int frames = T) => SkeletonPreprocessing.Index(c, t, v, m, frames);
    private static Vec3 J(float[] x, int t, int v, int m = 0, int frames = T) => new(x[I(0, t, v, m, frames)], x[I(1, t, v, m, frames)], x[I(2, t, v, m, frames)]);

    [Test]
    public void RealFileIsCentredAlignedAndPaddedByRepetition()
    {
        var f = NtuSkeletonFile.Read(TestPaths.Shared("data/ntu_raw/S001C001P001R001A001.skeleton"));
        var raw = SkeletonPreprocessing.SelectBodies(f);
        Assert.That(raw, Has.Length.EqualTo(3 * 300 * 25 * 2));
        Assert.That(J(raw, 0, 0), Is.EqualTo(new Vec3(0.2181153f, 0.1725972f, 3.785547f)));
        Assert.That(J(raw, 103, 0), Is.EqualTo(new Vec3(0, 0, 0)), "zero padding after frame 103 before normalisation");

        var x = SkeletonPreprocessing.Process(f);
        // Centred on joint 2 of person 0 in every frame (padding repeats the sequence, so frames >= 103 too).
        for (int t = 0; t < 300; t++) Assert.That(J(x, t, 1).Length, Is.Not.NaN.And.LessThan(1e-6), $"frame {t}");
        // Frame 0: right - left shoulder along +x exactly (the last rotation); the spine was put on +z by the
        // rotation before, which the shoulder rotation tilts by the shoulders' deviation from perpendicular.
        var bone = J(x, 0, 1) - J(x, 0, 0);
        var rb = J(raw, 0, 1) - J(raw, 0, 0);
        var rs = J(raw, 0, 8) - J(raw, 0, 4);
        double skew = Math.Abs(Math.PI / 2 - Math.Acos(rb.Normalized().Dot(rs.Normalized())));
        Assert.That(skew, Is.Not.NaN.And.LessThan(0.04), "this performer's shoulders are 2.2 degrees off perpendicular");
        Assert.That(Math.Acos(bone.Normalized().Z), Is.Not.NaN.And.LessThan(0.05), "so the spine ends within 3 degrees of +z");
        Assert.That(bone.Z, Is.GreaterThan(0.2));
        var sh = J(x, 0, 8) - J(x, 0, 4);
        Assert.That(Math.Abs(sh.Y) + Math.Abs(sh.Z), Is.Not.NaN.And.LessThan(1e-6));
        Assert.That(sh.X, Is.GreaterThan(0.2));
        // Bone lengths are what the raw file has (rotation and translation keep them).
        var rawBone = (J(raw, 40, 6) - J(raw, 40, 5)).Length;
        Assert.That((J(x, 40, 6) - J(x, 40, 5)).Length, Is.EqualTo(rawBone).Within(1e-5));
        // Pad by repetition: frame 103 + k equals frame k.
        for (int t = 103; t < 300; t++)
            for (int v = 0; v < 25; v++)
                Assert.That(J(x, t, v), Is.EqualTo(J(x, t % 103, v)), $"frame {t} joint {v}");
        // One body: person 2 stays zero.
        for (int c = 0; c < 3; c++) for (int t = 0; t < 300; t++) for (int v = 0; v < 25; v++) Assert.That(x[I(c, t, v, 1)], Is.Zero);
    }

    [Test]
    public void ReferenceRotationMatrixTakesAVectorOntoTheTarget()
    {
        var rng = new Xoshiro256(5);
        foreach (var target in new[] { new Vec3(0, 0, 1), new Vec3(1, 0, 0) })
            for (int i = 0; i < 200; i++)
            {
                var v = new Vec3(rng.Normal(), rng.Normal(), rng.Normal());
                var r = SkeletonPreprocessing.RotationMatrix(v.Cross(target), SkeletonPreprocessing.AngleBetween(v, target));
                var w = r * v;
                Assert.That((w - target * v.Length).Length, Is.Not.NaN.And.LessThan(1e-9 * (1 + v.Length)));
                var det = r.M00 * (r.M11 * r.M22 - r.M12 * r.M21) - r.M01 * (r.M10 * r.M22 - r.M12 * r.M20) + r.M02 * (r.M10 * r.M21 - r.M11 * r.M20);
                Assert.That(det, Is.EqualTo(1).Within(1e-12), "a proper rotation");
            }
        Assert.That(SkeletonPreprocessing.RotationMatrix(new Vec3(0, 0, 0), 1.0), Is.EqualTo(Mat3.Identity));
    }

    [Test]
    public void MostActiveBodiesAreKeptInEnergyOrder()
    {
        var cfg = new SynthConfig(Frames: 64);
        var wave = SyntheticDataset.ToSkeletonFile(cfg, SyntheticActions.IdOf(Primitive.Wave, BodyPart.BothArms), "a");
        var squat = SyntheticDataset.ToSkeletonFile(cfg, SyntheticActions.IdOf(Primitive.Squat, BodyPart.Body), "b");
        int n = Math.Min(wave.FrameCount, squat.FrameCount);
        var still = squat.Frames[0][0];
        // Slot order in the file: a still body, the squat, the wave (bigger xyz std), a second still body.
        var frames = Enumerable.Range(0, n).Select(t => new[] { still, squat.Frames[t][0], wave.Frames[t][0], still with { BodyId = 9 } }).ToArray();
        var x = SkeletonPreprocessing.SelectBodies(new NtuSkeletonFile("m", frames), 64);
        double Std(NtuBody[] seq) // std over frames and joints, summed over xyz, like the reference
        {
            double s = 0;
            for (int c = 0; c < 3; c++)
            {
                var vals = seq.SelectMany(b => Enumerable.Range(0, 25).Select(j => (double)b.Joints[j * 12 + c])).ToArray();
                double mean = vals.Average();
                s += Math.Sqrt(vals.Select(v => (v - mean) * (v - mean)).Average());
            }
            return s;
        }
        double eSquat = Std(frames.Select(f => f[1]).ToArray()), eWave = Std(frames.Select(f => f[2]).ToArray());
        var first = eWave > eSquat ? wave : squat;
        var second = eWave > eSquat ? squat : wave;
        Assert.That(J(x, 5, 7, 0, 64), Is.EqualTo(first.Frames[5][0].Position(7)));
        Assert.That(J(x, 5, 7, 1, 64), Is.EqualTo(second.Frames[5][0].Position(7)));
    }

    /// <summary>Rotation recovery. A noise-free generated sequence is moved by a known rigid motion
    /// (yaw 70, pitch 25, roll -15 degrees, shift (1.2, -0.4, 2.5) m); after pre_normalization it must
    /// equal the canonical pose computed independently (Gram-Schmidt body frame of frame 0: x along the
    /// shoulders, z along the lower spine, origin at joint 2 per frame), to 1e-4 m.</summary>
    [TestCase(0)]
    [TestCase(17)]
    [TestCase(38)]
    public void KnownRotationIsUndone(int cls)
    {
        const int F = 64;
        var cfg = new SynthConfig(Frames: F, NoiseMin: 0, NoiseMax: 0);
        var raw = new float[cfg.SampleSize];
        int len = SyntheticDataset.GenerateRaw(cfg, cls, raw);
        var q = Mat3.RotY(70 * Math.PI / 180) * Mat3.RotX(25 * Math.PI / 180) * Mat3.RotZ(-15 * Math.PI / 180);
        var shift = new Vec3(1.2, -0.4, 2.5);
        var moved = (float[])raw.Clone();
        for (int t = 0; t < len; t++)
            for (int v = 0; v < 25; v++)
            {
                var p = q * J(raw, t, v, 0, F) + shift;
                moved[I(0, t, v, 0, F)] = (float)p.X; moved[I(1, t, v, 0, F)] = (float)p.Y; moved[I(2, t, v, 0, F)] = (float)p.Z;
            }
        SkeletonPreprocessing.PreNormalize(moved, F);

        var z = (J(raw, 0, 1, 0, F) - J(raw, 0, 0, 0, F)).Normalized();
        var xs = (J(raw, 0, 8, 0, F) - J(raw, 0, 4, 0, F)).Normalized();
        Assert.That(Math.Abs(z.Dot(xs)), Is.Not.NaN.And.LessThan(1e-5), "the generator's rest pose has shoulders perpendicular to the spine");
        var y = z.Cross(xs);
        double worst = 0;
        for (int t = 0; t < F; t++)
        {
            int ts = t % len;
            var c = J(raw, ts, 1, 0, F);
            for (int v = 0; v < 25; v++)
            {
                var d = J(raw, ts, v, 0, F) - c;
                var expected = new Vec3(d.Dot(xs), d.Dot(y), d.Dot(z));
                worst = Math.Max(worst, (J(moved, t, v, 0, F) - expected).Length);
            }
        }
        Assert.That(worst, Is.Not.NaN.And.LessThan(1e-4));
    }

    [Test]
    public void EmptyLeadingFramesAreDroppedAndAllZeroSamplesStayZero()
    {
        const int F = 16;
        var x = new float[3 * F * 25 * 2];
        SkeletonPreprocessing.PreNormalize(x, F);
        Assert.That(x.All(v => v == 0), Is.True);
        // Person 0 appears at frame 3..5 only: frames move to the front and then repeat.
        for (int t = 3; t < 6; t++) for (int v = 0; v < 25; v++) for (int c = 0; c < 3; c++) x[I(c, t, v, 0, F)] = 1 + t + 0.1f * v + 0.01f * c;
        SkeletonPreprocessing.PreNormalize(x, F);
        for (int t = 0; t < F; t++)
            Assert.That(J(x, t, 7, 0, F), Is.EqualTo(J(x, t % 3, 7, 0, F)));
        Assert.That((J(x, 1, 7, 0, F) - J(x, 0, 7, 0, F)).Length, Is.EqualTo(0), "all joints move together here, so centred frames coincide");
        Assert.That(J(x, 0, 1, 0, F).Length, Is.Not.NaN.And.LessThan(1e-6));
    }
}
