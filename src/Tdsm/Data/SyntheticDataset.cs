using Tdsm.Tensors;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Tdsm.Formats;

namespace Tdsm.Data;

/// <summary>Settings of the synthetic NTU-format dataset.</summary>
/// <param name="Seed">Same seed -> byte-identical output.</param>
/// <param name="SamplesPerClass">Sequences per class; sample i has class i % 48.</param>
/// <param name="Frames">T of the (N, 3, T, 25, 2) array (NTU pads to 300).</param>
/// <param name="Normalize">Apply the NTU <c>pre_normalization</c> (centre, align, pad by repetition) as the
/// published NTU arrays have it; false keeps camera coordinates with zero padding.</param>
/// <param name="MaxLength">Longest action in frames (at ~30 fps); lengths are drawn in [0.6, 1] x min(T, MaxLength).</param>
/// <param name="MaxYawDegrees">View yaw range (+-).</param>
/// <param name="NoiseMin">Smallest per-sample joint noise std (metres).</param>
/// <param name="NoiseMax">Largest per-sample joint noise std (metres).</param>
public sealed record SynthConfig(ulong Seed = 1, int SamplesPerClass = 200, int Frames = 300, bool Normalize = true,
    int MaxLength = 120, double MaxYawDegrees = 45, double NoiseMin = 0.003, double NoiseMax = 0.010)
{
    /// <summary>NTU-shaped: T = 300, 200 sequences per class (9,600 in all).</summary>
    public static SynthConfig Default => new();

    /// <summary>Short sequences for the CPU default run: T = 64, 200 per class.</summary>
    public static SynthConfig Short => new(Frames: 64);

    /// <summary>Total sequences.</summary>
    public long Count => (long)SamplesPerClass * SyntheticActions.Count;

    /// <summary>Floats per sample: 3 * T * 25 * 2.</summary>
    public int SampleSize => 3 * Frames * NtuJoints.Count * SkeletonPreprocessing.Persons;

    /// <summary>Throws <see cref="ArgumentException"/> on values out of range.</summary>
    public void Validate()
    {
        if (SamplesPerClass < 1) throw new ArgumentException($"SamplesPerClass must be >= 1, got {SamplesPerClass}");
        if (Frames < 8) throw new ArgumentException($"Frames must be >= 8, got {Frames}");
        if (MaxLength < 8) throw new ArgumentException($"MaxLength must be >= 8, got {MaxLength}");
        if (!(MaxYawDegrees >= 0 && MaxYawDegrees <= 180)) throw new ArgumentException($"MaxYawDegrees must be in [0, 180], got {MaxYawDegrees}");
        if (!(NoiseMin >= 0 && NoiseMax >= NoiseMin)) throw new ArgumentException($"noise range [{NoiseMin}, {NoiseMax}] is invalid");
    }
}

/// <summary>
/// Generates NTU-format skeleton sequences of the <see cref="SyntheticActions"/> vocabulary: forward
/// kinematics of a 25-joint body with per-sample proportions, speed, amplitude, phase, timing, view
/// yaw, position and joint noise; person 2 is all zeros. Sample i depends only on (seed, i), so
/// generation is parallel and byte-deterministic.
/// </summary>
public static class SyntheticDataset
{
    /// <summary>File names of a dataset folder written by <see cref="Write"/>.</summary>
    public const string DataFile = "data.npy", LabelFile = "label.npy", ClassCsv = "synth.csv", DescriptionFile = "synth_llm.txt",
        SplitFolder = "label_splits", MetaFile = "meta.json";

    private const double Deg = Math.PI / 180.0;

    /// <summary>Class id of sample <paramref name="index"/>.</summary>
    public static int LabelOf(long index) => (int)(index % SyntheticActions.Count);

    /// <summary>
    /// Writes sample <paramref name="index"/> as camera-space joints: x (3, T, 25, 2), frames past
    /// the sequence's length and person 2 left zero. Returns the sequence length in frames.
    /// </summary>
    public static int GenerateRaw(SynthConfig cfg, long index, Span<float> x)
    {
        int T = cfg.Frames;
        if (x.Length != cfg.SampleSize) throw new ArgumentException($"destination holds {x.Length} floats, a sample needs {cfg.SampleSize}", nameof(x));
        x.Clear();
        var cls = SyntheticActions.Classes[LabelOf(index)];
        var rng = Xoshiro256.ForItem(cfg.Seed, 1, (ulong)index);

        double height = rng.Uniform(1.50, 1.95);
        var shape = BodyShape.Sample(ref rng, height);
        int len = (int)Math.Round(rng.Uniform(0.6, 1.0) * Math.Min(T, cfg.MaxLength));
        len = Math.Clamp(len, 2, T);
        double u0 = rng.Uniform(0, 0.15), u1 = rng.Uniform(0.85, 1.0);
        var motion = new MotionParams(rng.Uniform(0.8, 1.1), SyntheticMotion.SampleCycles(cls.Primitive, cls.Part, ref rng),
            rng.Uniform(0, 2 * Math.PI), rng.NextDouble() < 0.5 ? -1 : 1, shape.Thigh + shape.Shin);
        // Rest posture of this performer.
        double restArmAbd = rng.Uniform(4, 12), restElbow = rng.Uniform(5, 20), restKnee = rng.Uniform(0, 6), restHipAbd = rng.Uniform(2, 6);
        double swayPhase = rng.Uniform(0, 2 * Math.PI), swayAmp = rng.Uniform(0.5, 2.5);
        // Camera placement.
        double yaw = rng.Uniform(-cfg.MaxYawDegrees, cfg.MaxYawDegrees) * Deg;
        double pitch = rng.Uniform(-5, 5) * Deg;
        var origin = new Vec3(rng.Uniform(-0.5, 0.5), rng.Uniform(-1.1, -0.7), rng.Uniform(2.4, 4.0));
        double noise = rng.Uniform(cfg.NoiseMin, cfg.NoiseMax);
        var camPitch = Mat3.RotX(pitch);

        var pose = new Pose();
        Span<Vec3> joints = stackalloc Vec3[NtuJoints.Count];
        for (int t = 0; t < len; t++)
        {
            for (int s = 0; s < 2; s++)
            {
                pose.ArmFlex[s] = 0; pose.ArmAbd[s] = restArmAbd; pose.ArmTwist[s] = 0; pose.Elbow[s] = restElbow;
                pose.HipFlex[s] = 0; pose.HipAbd[s] = restHipAbd; pose.Knee[s] = restKnee;
            }
            double sec = t / 30.0;
            pose.TorsoPitch = 0; pose.TorsoYaw = 0; pose.TorsoRoll = swayAmp * Math.Sin(2 * Math.PI * 0.4 * sec + swayPhase);
            pose.HeadPitch = 0; pose.HeadYaw = 0; pose.HeadRoll = 0; pose.BodyYaw = 0; pose.Forward = 0; pose.Lift = 0;
            double u = ((double)t / (len - 1) - u0) / (u1 - u0);
            SyntheticMotion.Apply(pose, cls, u, motion);
            SyntheticBody.Solve(pose, shape, joints);

            // Body frame (x right, y up, z forward) -> camera (facing the camera means forward = -z).
            var turn = Mat3.RotY(yaw + pose.BodyYaw * Deg);
            for (int v = 0; v < NtuJoints.Count; v++)
            {
                var b = joints[v];
                var p = origin + camPitch * (turn * new Vec3(b.X, b.Y, -b.Z));
                x[SkeletonPreprocessing.Index(0, t, v, 0, T)] = (float)(p.X + noise * rng.Normal());
                x[SkeletonPreprocessing.Index(1, t, v, 0, T)] = (float)(p.Y + noise * rng.Normal());
                x[SkeletonPreprocessing.Index(2, t, v, 0, T)] = (float)(p.Z + noise * rng.Normal());
            }
        }
        return len;
    }

    /// <summary>Sample <paramref name="index"/> as it is stored: raw, then <c>pre_normalization</c> when <see cref="SynthConfig.Normalize"/>.</summary>
    public static void Generate(SynthConfig cfg, long index, Span<float> x)
    {
        GenerateRaw(cfg, index, x);
        if (cfg.Normalize) SkeletonPreprocessing.PreNormalize(x, cfg.Frames);
    }

    /// <summary>Samples [start, start+count) in parallel: x (count, 3, T, 25, 2) and their labels.</summary>
    public static (float[] X, int[] Labels) GenerateBatch(SynthConfig cfg, long start, int count)
    {
        cfg.Validate();
        int size = cfg.SampleSize;
        var x = new float[(long)count * size];
        var labels = new int[count];
        Parallel.For(0, count, i =>
        {
            Generate(cfg, start + i, x.AsSpan(i * size, size));
            labels[i] = LabelOf(start + i);
        });
        return (x, labels);
    }

    /// <summary>
    /// Writes the dataset folder: <c>data.npy</c> (N, 3, T, 25, 2) float32, <c>label.npy</c> (N) int64,
    /// <c>synth.csv</c> (idx,label 1-based), <c>synth_llm.txt</c> (one description per line),
    /// <c>label_splits/ru8.npy rs40.npy ru12.npy rs36.npy</c>, <c>meta.json</c>. Each file is written atomically;
    /// <paramref name="progress"/> gets (done, total) after each block.
    /// </summary>
    public static void Write(string dir, SynthConfig cfg, Action<long, long>? progress = null)
    {
        cfg.Validate();
        Directory.CreateDirectory(dir);
        long n = cfg.Count;
        if (n > int.MaxValue) throw new ArgumentException($"{n} samples is too many for one file");
        var shape = new[] { (int)n, 3, cfg.Frames, NtuJoints.Count, SkeletonPreprocessing.Persons };
        int block = Math.Max(1, (int)Math.Min(n, (64L << 20) / (cfg.SampleSize * 4L)));
        AtomicFile.Write(Path.Combine(dir, DataFile), stream =>
        {
            stream.Write(Npy.Encode("<f4", shape, ReadOnlySpan<byte>.Empty));
            for (long start = 0; start < n; start += block)
            {
                int count = (int)Math.Min(block, n - start);
                var (x, _) = GenerateBatch(cfg, start, count);
                stream.Write(MemoryMarshal.AsBytes(x.AsSpan()));
                progress?.Invoke(start + count, n);
            }
        });
        var labels = new long[n];
        for (long i = 0; i < n; i++) labels[i] = LabelOf(i);
        Npy.Write(Path.Combine(dir, LabelFile), [(int)n], labels);
        ClassList.WriteCsv(Path.Combine(dir, ClassCsv), SyntheticActions.Classes.Select(c => c.Label).ToList());
        ClassList.WriteLines(Path.Combine(dir, DescriptionFile), SyntheticActions.Classes.Select(c => c.Description).ToList());
        foreach (var split in SyntheticActions.Splits.Values) split.Write(Path.Combine(dir, SplitFolder));
        var inv = CultureInfo.InvariantCulture;
        var meta = new StringBuilder()
            .Append("{\n  \"generator\": \"tdsm-synth-v1\",\n")
            .Append(inv, $"  \"seed\": {cfg.Seed},\n  \"samples_per_class\": {cfg.SamplesPerClass},\n  \"classes\": {SyntheticActions.Count},\n")
            .Append(inv, $"  \"samples\": {n},\n  \"frames\": {cfg.Frames},\n  \"normalized\": {(cfg.Normalize ? "true" : "false")},\n")
            .Append(inv, $"  \"max_length\": {cfg.MaxLength},\n  \"max_yaw_degrees\": {cfg.MaxYawDegrees.ToString("R", inv)},\n")
            .Append(inv, $"  \"noise\": [{cfg.NoiseMin.ToString("R", inv)}, {cfg.NoiseMax.ToString("R", inv)}],\n")
            .Append("  \"layout\": \"data.npy (N, 3, T, 25, 2) float32; label.npy (N,) int64 0-based; sample i has class i % classes\"\n}\n")
            .ToString();
        AtomicFile.Write(Path.Combine(dir, MetaFile), s => s.Write(Encoding.UTF8.GetBytes(meta)));
    }

    /// <summary>Sample <paramref name="index"/> as an NTU .skeleton file (camera coordinates, one body,
    /// the 2-D and orientation columns zero, tracking state 2) for exercising the raw-data pipeline.</summary>
    public static NtuSkeletonFile ToSkeletonFile(SynthConfig cfg, long index, string path)
    {
        var x = new float[cfg.SampleSize];
        int len = GenerateRaw(cfg, index, x);
        var frames = new NtuBody[len][];
        for (int t = 0; t < len; t++)
        {
            var j = new float[NtuJoints.Count * NtuBody.JointValues];
            for (int v = 0; v < NtuJoints.Count; v++)
            {
                for (int c = 0; c < 3; c++) j[v * NtuBody.JointValues + c] = x[SkeletonPreprocessing.Index(c, t, v, 0, cfg.Frames)];
                j[v * NtuBody.JointValues + 11] = 2;
            }
            frames[t] = [new NtuBody(72057594037931101UL + (ulong)index, [0, 1, 1, 1, 1, 0, 0, 0, 2], j)];
        }
        return new NtuSkeletonFile(path, frames);
    }
}
