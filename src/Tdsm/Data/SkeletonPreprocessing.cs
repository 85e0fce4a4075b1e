namespace Tdsm.Data;

/// <summary>
/// The standard NTU preprocessing of the GCN literature (Shift-GCN <c>ntu_gendata.py</c> +
/// <c>preprocess.pre_normalization</c>), reproduced step for step so that our arrays match the
/// ones the Python code feeds its models.
///
/// One sample is x (C=3, T, V=25, M=2) float32, C order: element [c,t,v,m] at ((c*T + t)*V + v)*M + m.
/// </summary>
public static class SkeletonPreprocessing
{
    /// <summary>Frames per sample in the published NTU arrays.</summary>
    public const int DefaultFrames = 300;

    /// <summary>Persons per sample kept (the two with most motion energy).</summary>
    public const int Persons = 2;

    /// <summary>Bodies per frame read before the energy selection (Kinect tracks up to 6; the reference keeps 4).</summary>
    public const int MaxBodiesRead = 4;

    private const int C = 3, V = NtuJoints.Count, M = Persons;

    /// <summary>Flat index of [c,t,v,m] in a (3, T, 25, 2) sample.</summary>
    public static int Index(int c, int t, int v, int m, int frames) => ((c * frames + t) * V + v) * M + m;

    /// <summary>
    /// <c>read_xyz</c>: the xyz of the first 4 body slots of every frame, the two slots with most
    /// motion energy (sum over x,y,z of the std over non-zero frames), zero-padded (or cut) to
    /// <paramref name="frames"/>. Returns x (3, frames, 25, 2).
    /// </summary>
    public static float[] SelectBodies(NtuSkeletonFile file, int frames = DefaultFrames)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(frames, 1);
        int tf = Math.Min(file.FrameCount, frames);
        int tAll = file.FrameCount;
        // data[m][t*V*3 + v*3 + c] over all frames of the file (energy uses every frame, as the reference does).
        var data = new float[MaxBodiesRead][];
        for (int m = 0; m < MaxBodiesRead; m++) data[m] = new float[tAll * V * 3];
        for (int t = 0; t < tAll; t++)
        {
            var bodies = file.Frames[t];
            for (int m = 0; m < Math.Min(bodies.Length, MaxBodiesRead); m++)
            {
                var j = bodies[m].Joints;
                for (int v = 0; v < V; v++)
                    for (int c = 0; c < 3; c++) data[m][(t * V + v) * 3 + c] = j[v * NtuBody.JointValues + c];
            }
        }
        var energy = new double[MaxBodiesRead];
        for (int m = 0; m < MaxBodiesRead; m++) energy[m] = NonZeroStd(data[m], tAll);
        // numpy: energy.argsort()[::-1]; among equal energies the higher slot comes first.
        var order = Enumerable.Range(0, MaxBodiesRead).OrderByDescending(m => energy[m]).ThenByDescending(m => m).ToArray();

        var x = new float[C * frames * V * M];
        for (int mOut = 0; mOut < M; mOut++)
        {
            var src = data[order[mOut]];
            for (int t = 0; t < tf; t++)
                for (int v = 0; v < V; v++)
                    for (int c = 0; c < 3; c++) x[Index(c, t, v, mOut, frames)] = src[(t * V + v) * 3 + c];
        }
        return x;
    }

    /// <summary><c>get_nonzero_std</c>: over frames whose values do not sum to 0, std(x)+std(y)+std(z) (population std).</summary>
    private static double NonZeroStd(float[] body, int frames)
    {
        double total = 0;
        var valid = new List<int>();
        for (int t = 0; t < frames; t++)
        {
            double s = 0;
            for (int i = 0; i < V * 3; i++) s += body[t * V * 3 + i];
            if (s != 0) valid.Add(t);
        }
        if (valid.Count == 0) return 0;
        for (int c = 0; c < 3; c++)
        {
            double sum = 0, sq = 0;
            int n = valid.Count * V;
            foreach (int t in valid)
                for (int v = 0; v < V; v++) sum += body[(t * V + v) * 3 + c];
            double mean = sum / n;
            foreach (int t in valid)
                for (int v = 0; v < V; v++) { double d = body[(t * V + v) * 3 + c] - mean; sq += d * d; }
            total += Math.Sqrt(sq / n);
        }
        return total;
    }

    /// <summary>Parse-free convenience: <see cref="SelectBodies"/> then <see cref="PreNormalize"/>.</summary>
    public static float[] Process(NtuSkeletonFile file, int frames = DefaultFrames)
    {
        var x = SelectBodies(file, frames);
        PreNormalize(x, frames);
        return x;
    }

    /// <summary>
    /// <c>pre_normalization</c> on one sample x (3, T, 25, 2), in place:
    /// (1) a person whose first frame is empty has its non-empty frames moved to the front, and the
    /// empty tail is filled by repeating the sequence; (2) every person is centred on person 0's
    /// joint 2 (spine middle, index 1) frame by frame, empty joints staying 0; (3) rotate so that
    /// person 0's frame-0 bone joint 1 -> joint 2 is parallel to +z; (4) then so that the shoulder
    /// line joint 9 -> joint 5 (right -> left shoulder vector taken as right minus left) is parallel to +x.
    /// An all-zero sample is left unchanged.
    /// </summary>
    public static void PreNormalize(Span<float> x, int frames)
    {
        if (x.Length != C * frames * V * M) throw new ArgumentException($"sample has {x.Length} values; (3, {frames}, 25, 2) needs {C * frames * V * M}", nameof(x));
        int T = frames;
        // Work in (M, T, V, C) doubles like the reference's transposed view; write back at the end.
        var s = new double[M * T * V * C];
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++)
                    for (int m = 0; m < M; m++) s[((m * T + t) * V + v) * C + c] = x[Index(c, t, v, m, T)];
        if (SumRange(s, 0, s.Length) == 0) return;

        int personLen = T * V * C, frameLen = V * C;
        for (int p = 0; p < M; p++)
        {
            int po = p * personLen;
            if (SumRange(s, po, personLen) == 0) continue;
            if (SumRange(s, po, frameLen) == 0)
            {
                var tmp = new List<double[]>();
                for (int t = 0; t < T; t++)
                    if (SumRange(s, po + t * frameLen, frameLen) != 0) tmp.Add(s.AsSpan(po + t * frameLen, frameLen).ToArray());
                Array.Clear(s, po, personLen);
                for (int i = 0; i < tmp.Count; i++) tmp[i].CopyTo(s, po + i * frameLen);
            }
            for (int f = 0; f < T; f++)
            {
                if (SumRange(s, po + f * frameLen, frameLen) != 0) continue;
                if (SumRange(s, po + f * frameLen, (T - f) * frameLen) != 0) continue;
                // Repeat frames [0, f) over the empty tail (f > 0 here: frame 0 is non-empty after the move).
                for (int t = f; t < T; t++) Array.Copy(s, po + (t % f) * frameLen, s, po + t * frameLen, frameLen);
                break;
            }
        }

        // Centre on person 0's spine-middle joint, per frame.
        var center = new double[T * C];
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) center[t * C + c] = s[(t * V + NtuJoints.SpineMid) * C + c];
        for (int p = 0; p < M; p++)
        {
            int po = p * personLen;
            if (SumRange(s, po, personLen) == 0) continue;
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++)
                {
                    int o = po + (t * V + v) * C;
                    bool present = s[o] + s[o + 1] + s[o + 2] != 0;
                    for (int c = 0; c < C; c++) s[o + c] = present ? s[o + c] - center[t * C + c] : 0;
                }
        }

        AlignBone(s, T, NtuJoints.SpineMid, NtuJoints.SpineBase, new Vec3(0, 0, 1));
        AlignBone(s, T, NtuJoints.ShoulderRight, NtuJoints.ShoulderLeft, new Vec3(1, 0, 0));

        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++)
                for (int v = 0; v < V; v++)
                    for (int m = 0; m < M; m++) x[Index(c, t, v, m, T)] = (float)s[((m * T + t) * V + v) * C + c];
    }

    /// <summary>Rotates every non-empty frame of every non-empty person so that person 0's frame-0
    /// vector joint[tip] - joint[tail] becomes parallel to <paramref name="target"/>.</summary>
    private static void AlignBone(double[] s, int T, int tip, int tail, Vec3 target)
    {
        int personLen = T * V * C, frameLen = V * C;
        var bone = new Vec3(s[tip * C] - s[tail * C], s[tip * C + 1] - s[tail * C + 1], s[tip * C + 2] - s[tail * C + 2]);
        var rot = RotationMatrix(bone.Cross(target), AngleBetween(bone, target));
        for (int p = 0; p < M; p++)
        {
            int po = p * personLen;
            if (SumRange(s, po, personLen) == 0) continue;
            for (int t = 0; t < T; t++)
            {
                int fo = po + t * frameLen;
                if (SumRange(s, fo, frameLen) == 0) continue;
                for (int v = 0; v < V; v++)
                {
                    int o = fo + v * C;
                    var r = rot * new Vec3(s[o], s[o + 1], s[o + 2]);
                    s[o] = r.X; s[o + 1] = r.Y; s[o + 2] = r.Z;
                }
            }
        }
    }

    /// <summary>The reference's <c>rotation_matrix(axis, theta)</c> (Euler-Rodrigues), identity for a
    /// vanishing axis or angle.</summary>
    public static Mat3 RotationMatrix(Vec3 axis, double theta)
    {
        if (Math.Abs(axis.X) + Math.Abs(axis.Y) + Math.Abs(axis.Z) < 1e-6 || Math.Abs(theta) < 1e-6) return Mat3.Identity;
        axis = axis * (1.0 / Math.Sqrt(axis.Dot(axis)));
        double a = Math.Cos(theta / 2.0);
        double sn = Math.Sin(theta / 2.0);
        double b = -axis.X * sn, c = -axis.Y * sn, d = -axis.Z * sn;
        double aa = a * a, bb = b * b, cc = c * c, dd = d * d;
        double bc = b * c, ad = a * d, ac = a * c, ab = a * b, bd = b * d, cd = c * d;
        return new Mat3(
            aa + bb - cc - dd, 2 * (bc + ad), 2 * (bd - ac),
            2 * (bc - ad), aa + cc - bb - dd, 2 * (cd + ab),
            2 * (bd + ac), 2 * (cd - ab), aa + dd - bb - cc);
    }

    /// <summary>The reference's <c>angle_between</c>: 0 when either vector is (nearly) zero.</summary>
    public static double AngleBetween(Vec3 v1, Vec3 v2)
    {
        if (Math.Abs(v1.X) + Math.Abs(v1.Y) + Math.Abs(v1.Z) < 1e-6 || Math.Abs(v2.X) + Math.Abs(v2.Y) + Math.Abs(v2.Z) < 1e-6) return 0;
        return Math.Acos(Math.Clamp(v1.Normalized().Dot(v2.Normalized()), -1.0, 1.0));
    }

    private static double SumRange(double[] s, int start, int length)
    {
        double sum = 0;
        for (int i = start; i < start + length; i++) sum += s[i];
        return sum;
    }
}
