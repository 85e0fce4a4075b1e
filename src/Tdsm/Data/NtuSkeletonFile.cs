using System.Globalization;
using System.Text;

namespace Tdsm.Data;

/// <summary>One tracked body in one frame of an NTU .skeleton file.</summary>
/// <param name="BodyId">The Kinect tracking id (first value of the body line).</param>
/// <param name="BodyInfo">The other 9 values of the body line: clippedEdges, handLeftConfidence,
/// handLeftState, handRightConfidence, handRightState, isRestricted, leanX, leanY, trackingState.</param>
/// <param name="Joints">25 x 12 values per joint, as in the file: x y z (camera space, metres),
/// depthX depthY, colorX colorY, orientationW X Y Z, trackingState.</param>
public sealed record NtuBody(ulong BodyId, double[] BodyInfo, float[] Joints)
{
    /// <summary>Values per joint line.</summary>
    public const int JointValues = 12;

    /// <summary>Camera-space position of joint <paramref name="j"/> (0-based).</summary>
    public Vec3 Position(int j) => new(Joints[j * JointValues], Joints[j * JointValues + 1], Joints[j * JointValues + 2]);
}

/// <summary>A parsed NTU RGB+D .skeleton file: per frame the list of bodies (possibly empty).</summary>
public sealed record NtuSkeletonFile(string Path, NtuBody[][] Frames)
{
    /// <summary>Number of frames.</summary>
    public int FrameCount => Frames.Length;

    /// <summary>Reads and parses a .skeleton file.</summary>
    /// <exception cref="SkeletonFormatException">Missing file, truncated or malformed content.</exception>
    public static NtuSkeletonFile Read(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (FileNotFoundException e) { throw new SkeletonFormatException(path, 0, "file not found", e); }
        catch (UnauthorizedAccessException e) when (Directory.Exists(path)) { throw new SkeletonFormatException(path, 0, "is a folder, expected a file", e); }
        catch (DirectoryNotFoundException e) { throw new SkeletonFormatException(path, 0, "file not found", e); }
        return Parse(path, text);
    }

    /// <summary>Parses .skeleton text; <paramref name="path"/> is used in error messages.</summary>
    /// <exception cref="SkeletonFormatException">Truncated or malformed content.</exception>
    public static NtuSkeletonFile Parse(string path, string text)
    {
        var r = new LineReader(path, text);
        int frameCount = r.ReadCount("the frame count", 1_000_000);
        // Never trust a count for preallocation: a corrupt count must fail on missing lines, not on memory.
        var frames = new List<NtuBody[]>(Math.Min(frameCount, 4096));
        for (int f = 0; f < frameCount; f++)
        {
            int bodyCount = r.ReadCount($"the body count of frame {f + 1}", 64);
            var bodies = new NtuBody[bodyCount];
            for (int b = 0; b < bodyCount; b++)
            {
                string what = $"frame {f + 1} body {b + 1}";
                var info = r.ReadNumbers($"the 10-value body line of {what}", 10, out int infoLine);
                if (!ulong.TryParse(r.Tokens[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong id))
                    throw new SkeletonFormatException(path, infoLine, $"expected the body id (a non-negative integer) of {what}, got '{r.Tokens[0]}'");
                int jointCount = r.ReadCount($"the joint count of {what}", int.MaxValue);
                if (jointCount != NtuJoints.Count)
                    throw new SkeletonFormatException(path, r.LineNumber, $"expected joint count 25 for {what}, got {jointCount}");
                var joints = new float[NtuJoints.Count * NtuBody.JointValues];
                for (int j = 0; j < NtuJoints.Count; j++)
                {
                    var v = r.ReadNumbers($"joint {j + 1} of {what} (12 values)", NtuBody.JointValues, out _);
                    for (int k = 0; k < NtuBody.JointValues; k++) joints[j * NtuBody.JointValues + k] = (float)v[k];
                }
                bodies[b] = new NtuBody(id, info[1..], joints);
            }
            frames.Add(bodies);
        }
        r.ExpectEnd(frameCount);
        return new NtuSkeletonFile(path, frames.ToArray());
    }

    /// <summary>Writes the file in the official text layout (CRLF line ends, as the dataset ships).</summary>
    public void Write(string path)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(FrameCount.ToString(inv)).Append("\r\n");
        foreach (var frame in Frames)
        {
            sb.Append(frame.Length.ToString(inv)).Append("\r\n");
            foreach (var body in frame)
            {
                sb.Append(body.BodyId.ToString(inv));
                foreach (var v in body.BodyInfo) sb.Append(' ').Append(v.ToString("R", inv));
                sb.Append("\r\n25\r\n");
                for (int j = 0; j < NtuJoints.Count; j++)
                {
                    for (int k = 0; k < NtuBody.JointValues; k++)
                    {
                        if (k > 0) sb.Append(' ');
                        sb.Append(body.Joints[j * NtuBody.JointValues + k].ToString("R", inv));
                    }
                    sb.Append("\r\n");
                }
            }
        }
        var bytes = Encoding.ASCII.GetBytes(sb.ToString());
        Tdsm.Formats.AtomicFile.Write(path, s => s.Write(bytes));
    }

    /// <summary>Line-by-line tokenizer that knows the current line number for error messages.</summary>
    private sealed class LineReader(string path, string text)
    {
        private int _pos;
        public int LineNumber { get; private set; }
        public string[] Tokens { get; private set; } = [];

        private string? NextLine()
        {
            if (_pos >= text.Length) return null;
            int nl = text.IndexOf('\n', _pos);
            int end = nl < 0 ? text.Length : nl;
            string line = text[_pos..end].TrimEnd('\r');
            _pos = nl < 0 ? text.Length : nl + 1;
            LineNumber++;
            return line;
        }

        private string[] NextTokens(string expected)
        {
            string? line = NextLine();
            if (line is null) throw new SkeletonFormatException(path, LineNumber + 1, $"truncated: expected {expected}, found end of file");
            Tokens = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            return Tokens;
        }

        public int ReadCount(string expected, int max)
        {
            var t = NextTokens(expected);
            if (t.Length != 1 || !int.TryParse(t[0], NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                throw new SkeletonFormatException(path, LineNumber, $"expected {expected} (one non-negative integer), got '{Shorten(string.Join(' ', t))}'");
            if (n > max) throw new SkeletonFormatException(path, LineNumber, $"expected {expected} of at most {max}, got {n}");
            return n;
        }

        public double[] ReadNumbers(string expected, int count, out int line)
        {
            var t = NextTokens(expected);
            line = LineNumber;
            if (t.Length != count)
                throw new SkeletonFormatException(path, line, $"expected {expected}: {count} numbers, got {t.Length} ('{Shorten(string.Join(' ', t))}')");
            var v = new double[count];
            for (int i = 0; i < count; i++)
            {
                // Values become float32 joints: a number past float's range would turn into an infinity there.
                if (!double.TryParse(t[i], NumberStyles.Float, CultureInfo.InvariantCulture, out v[i]) || !float.IsFinite((float)v[i]))
                    throw new SkeletonFormatException(path, line, $"expected {expected}: value {i + 1} is not a finite float32 number: '{Shorten(t[i])}'");
            }
            return v;
        }

        public void ExpectEnd(int frameCount)
        {
            while (NextLine() is { } line)
            {
                if (line.Trim().Length > 0)
                    throw new SkeletonFormatException(path, LineNumber, $"expected end of file after the {frameCount} frames the header announces, got '{Shorten(line)}'");
            }
        }

        private static string Shorten(string s) => s.Length <= 60 ? s : s[..60] + "...";
    }
}
