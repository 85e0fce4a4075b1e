using Tdsm.Tensors;
namespace Tdsm.Data;

/// <summary>
/// Joint angles of one frame (degrees) plus whole-body placement, in the person's body frame
/// (x right, y up, z forward; origin at the spine base). Arrays are indexed by side: 0 left, 1 right.
/// Arm: flex raises forward (0 hanging, 180 overhead), abd raises sideways, twist turns the upper
/// arm about its axis (sets the elbow's bending plane), elbow bends forward. Leg: hip flex raises
/// forward, abd sideways, knee bends backward.
/// </summary>
internal sealed class Pose
{
    public readonly double[] ArmFlex = new double[2], ArmAbd = new double[2], ArmTwist = new double[2], Elbow = new double[2];
    public readonly double[] HipFlex = new double[2], HipAbd = new double[2], Knee = new double[2];
    public double TorsoPitch, TorsoYaw, TorsoRoll, HeadPitch, HeadYaw, HeadRoll;

    /// <summary>Extra yaw of the whole body (degrees; turning around).</summary>
    public double BodyYaw;

    /// <summary>Forward shift of the body (metres; stepping).</summary>
    public double Forward;

    /// <summary>Height above the ground contact (metres; jumping).</summary>
    public double Lift;
}

/// <summary>A performer's segment lengths in metres (scaled from the height with per-segment jitter).</summary>
internal sealed record BodyShape(
    double SpineLow, double SpineUp, double Neck, double Head, double HeadForward,
    double ShoulderHalf, double ShoulderDrop, double UpperArm, double Forearm, double Hand, double HandTip, double Thumb,
    double HipHalf, double HipDrop, double Thigh, double Shin, double Foot)
{
    public static BodyShape Sample(ref Xoshiro256 rng, double height)
    {
        double J(ref Xoshiro256 r, double f) => f * height * r.Uniform(0.94, 1.06);
        return new BodyShape(J(ref rng, 0.13), J(ref rng, 0.14), J(ref rng, 0.05), J(ref rng, 0.08), J(ref rng, 0.05),
            J(ref rng, 0.105), J(ref rng, 0.025), J(ref rng, 0.17), J(ref rng, 0.15), J(ref rng, 0.045), J(ref rng, 0.04), J(ref rng, 0.03),
            J(ref rng, 0.055), J(ref rng, 0.03), J(ref rng, 0.245), J(ref rng, 0.24), J(ref rng, 0.07));
    }
}

/// <summary>Forward kinematics: joint angles -> the 25 NTU joint positions.</summary>
internal static class SyntheticBody
{
    private const double Deg = Math.PI / 180.0;

    /// <summary>Writes the 25 joints of <paramref name="pose"/> in the body frame, feet on the ground (y = 0
    /// at the lowest foot joint, plus <see cref="Pose.Lift"/>), into <paramref name="joints"/>.</summary>
    public static void Solve(Pose pose, BodyShape b, Span<Vec3> joints)
    {
        var torso = Mat3.RotY(pose.TorsoYaw * Deg) * Mat3.RotX(pose.TorsoPitch * Deg) * Mat3.RotZ(pose.TorsoRoll * Deg);
        var up = new Vec3(0, 1, 0);
        var j0 = new Vec3(0, 0, 0);
        var j1 = j0 + torso * (b.SpineLow * up);
        var j20 = j1 + torso * (b.SpineUp * up);
        // The neck takes 40% of the head's rotation, as a real cervical spine does.
        var neckRot = Mat3.RotY(0.4 * pose.HeadYaw * Deg) * Mat3.RotX(0.4 * pose.HeadPitch * Deg) * Mat3.RotZ(0.4 * pose.HeadRoll * Deg);
        var j2 = j20 + torso * (neckRot * (b.Neck * up));
        var headRot = Mat3.RotY(pose.HeadYaw * Deg) * Mat3.RotX(pose.HeadPitch * Deg) * Mat3.RotZ(pose.HeadRoll * Deg);
        var j3 = j2 + torso * (headRot * new Vec3(0, b.Head, b.HeadForward));
        joints[NtuJoints.SpineBase] = j0; joints[NtuJoints.SpineMid] = j1; joints[NtuJoints.SpineShoulder] = j20;
        joints[NtuJoints.Neck] = j2; joints[NtuJoints.Head] = j3;

        for (int side = 0; side < 2; side++)
        {
            double s = side == 0 ? -1 : 1;
            int sh = side == 0 ? NtuJoints.ShoulderLeft : NtuJoints.ShoulderRight;
            var shoulder = j20 + torso * new Vec3(s * b.ShoulderHalf, -b.ShoulderDrop, 0);
            // Limb rotations are built in side coordinates (x = outward) and mirrored to the body frame.
            var m = Mat3.RotX(-pose.ArmFlex[side] * Deg) * Mat3.RotZ(pose.ArmAbd[side] * Deg) * Mat3.RotY(pose.ArmTwist[side] * Deg);
            var mf = m * Mat3.RotX(-pose.Elbow[side] * Deg);
            Vec3 W(Vec3 local) => torso * Mirror(local, s);
            var down = new Vec3(0, -1, 0);
            var elbow = shoulder + b.UpperArm * W(m * down);
            var fore = W(mf * down);
            var wrist = elbow + b.Forearm * fore;
            var hand = wrist + b.Hand * fore;
            joints[sh] = shoulder; joints[sh + 1] = elbow; joints[sh + 2] = wrist; joints[sh + 3] = hand;
            joints[side == 0 ? NtuJoints.HandTipLeft : NtuJoints.HandTipRight] = hand + b.HandTip * fore;
            joints[side == 0 ? NtuJoints.ThumbLeft : NtuJoints.ThumbRight] = wrist + b.Thumb * W(mf * new Vec3(0, -0.6, 0.8));

            int hp = side == 0 ? NtuJoints.HipLeft : NtuJoints.HipRight;
            var hip = j0 + new Vec3(s * b.HipHalf, -b.HipDrop, 0);
            var ml = Mat3.RotX(-pose.HipFlex[side] * Deg) * Mat3.RotZ(pose.HipAbd[side] * Deg);
            var mk = ml * Mat3.RotX(pose.Knee[side] * Deg);
            var knee = hip + b.Thigh * Mirror(ml * down, s);
            var ankle = knee + b.Shin * Mirror(mk * down, s);
            var foot = ankle + b.Foot * Mirror(mk * new Vec3(0, -0.35, 0.94), s);
            joints[hp] = hip; joints[hp + 1] = knee; joints[hp + 2] = ankle; joints[hp + 3] = foot;
        }

        double ground = Math.Min(Math.Min(joints[NtuJoints.AnkleLeft].Y, joints[NtuJoints.FootLeft].Y),
                                 Math.Min(joints[NtuJoints.AnkleRight].Y, joints[NtuJoints.FootRight].Y));
        var shift = new Vec3(0, -ground + pose.Lift, pose.Forward);
        for (int j = 0; j < NtuJoints.Count; j++) joints[j] += shift;
    }

    private static Vec3 Mirror(Vec3 v, double side) => new(side * v.X, v.Y, v.Z);
}
