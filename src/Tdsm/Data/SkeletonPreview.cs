namespace Tdsm.Data;

/// <summary>
/// Draws skeleton sequences as stick figures: one row per sequence, <c>frames</c> evenly spaced
/// snapshots per row, seen from the front at 25 degrees off-axis so that forward motions (kicks,
/// punches) are visible. Left limbs blue, right limbs red, spine grey.
/// </summary>
public static class SkeletonPreview
{
    private static readonly (byte, byte, byte) Left = (40, 90, 220), Right = (220, 50, 40), Spine = (90, 90, 90), Grid = (225, 225, 225);

    /// <summary>
    /// Renders sequences given as pre-normalised samples x (3, T, 25, 2) (x = person's right, y = forward,
    /// z = up, as <see cref="SkeletonPreprocessing.PreNormalize"/> leaves them); person 1 only.
    /// </summary>
    /// <param name="samples">One array per row.</param>
    /// <param name="frames">T of each sample.</param>
    /// <param name="lengths">Frames of real motion per row (snapshots are spread over these).</param>
    /// <param name="snapshots">Snapshots per row.</param>
    /// <param name="cell">Cell size in pixels.</param>
    public static PngImage Render(IReadOnlyList<float[]> samples, int frames, IReadOnlyList<int> lengths, int snapshots = 8, int cell = 160)
    {
        var img = new PngImage(snapshots * cell, samples.Count * cell);
        double yaw = 25 * Math.PI / 180;
        double scale = cell / 2.6; // metres -> pixels: a 2.6 m tall window
        for (int r = 0; r < samples.Count; r++)
        {
            var x = samples[r];
            for (int k = 0; k < snapshots; k++)
            {
                int t = (int)Math.Round((double)k * (Math.Max(1, lengths[r]) - 1) / Math.Max(1, snapshots - 1));
                double ox = k * cell + cell / 2.0, oy = r * cell + cell * 0.42;
                for (int i = 0; i < cell; i++) { img.Set(k * cell, r * cell + i, Grid); img.Set(k * cell + i, r * cell, Grid); }
                var pts = new (double X, double Y)[NtuJoints.Count];
                for (int v = 0; v < NtuJoints.Count; v++)
                {
                    double px = x[SkeletonPreprocessing.Index(0, t, v, 0, frames)];
                    double py = x[SkeletonPreprocessing.Index(1, t, v, 0, frames)];
                    double pz = x[SkeletonPreprocessing.Index(2, t, v, 0, frames)];
                    // Viewer in front of the person (on +y, looking back), turned by `yaw`; the person's right appears on the left.
                    double sx = -px * Math.Cos(yaw) + py * Math.Sin(yaw);
                    pts[v] = (ox + sx * scale, oy - pz * scale);
                }
                foreach (var (a, b) in NtuJoints.Bones)
                {
                    var col = NtuJoints.IsLeft(a) && NtuJoints.IsLeft(b) || NtuJoints.IsLeft(a) && b == NtuJoints.SpineShoulder || a == NtuJoints.HipLeft ? Left
                        : NtuJoints.IsRight(a) && NtuJoints.IsRight(b) || NtuJoints.IsRight(a) && b == NtuJoints.SpineShoulder || a == NtuJoints.HipRight ? Right : Spine;
                    img.Line(pts[a].X, pts[a].Y, pts[b].X, pts[b].Y, 2.5, col);
                }
                img.Disc(pts[NtuJoints.Head].X, pts[NtuJoints.Head].Y, cell / 28.0, Spine);
            }
        }
        return img;
    }
}
