using Tdsm.Tensors;
namespace Tdsm.Data;

/// <summary>Per-sample motion parameters drawn once per sequence.</summary>
internal readonly record struct MotionParams(double Amp, double Cycles, double Phase, double Side, double LegLength);

/// <summary>
/// What each (primitive, part) does over normalised action time u in [0, 1] (u outside the action
/// window is clamped, and every motion returns to the rest pose at u = 0 and u = 1).
/// Angles in degrees; see <see cref="Pose"/> for their meaning.
/// </summary>
internal static class SyntheticMotion
{
    private const double TwoPi = 2 * Math.PI;

    /// <summary>Cycle count range of each primitive (integer counts where the motion must end at rest).</summary>
    public static double SampleCycles(Primitive p, BodyPart b, ref Xoshiro256 rng) => p switch
    {
        Primitive.Wave => rng.Uniform(3, 5),
        Primitive.Swing => rng.Uniform(1.5, 2.5),
        Primitive.Circle => 2 + rng.NextInt(2),
        Primitive.Shake when b == BodyPart.Head => rng.Uniform(3, 5),
        Primitive.Shake => rng.Uniform(6, 9),
        Primitive.Bend when b is BodyPart.LeftArm or BodyPart.RightArm or BodyPart.BothArms => 1 + rng.NextInt(2),
        Primitive.Punch => rng.Uniform(2, 4),
        Primitive.Kick => 1 + rng.NextInt(2),
        _ => 1,
    };

    private static double Smooth(double a, double b, double u)
    {
        double x = Math.Clamp((u - a) / (b - a), 0, 1);
        return x * x * (3 - 2 * x);
    }

    /// <summary>Up in [0, .3], held, down in [.7, 1].</summary>
    private static double Hold(double u) => Smooth(0, 0.3, u) * (1 - Smooth(0.7, 1, u));

    /// <summary>Envelope for oscillations: fades in over [0, .15] and out over [.85, 1].</summary>
    private static double Env(double u) => Smooth(0, 0.15, u) * (1 - Smooth(0.85, 1, u));

    /// <summary>A half-sine bump over [a, b], 0 elsewhere.</summary>
    private static double Bump(double u, double a, double b) => u <= a || u >= b ? 0 : Math.Sin(Math.PI * (u - a) / (b - a));

    private static int[] Sides(BodyPart b) => b switch
    {
        BodyPart.LeftArm or BodyPart.LeftLeg => [0],
        BodyPart.RightArm or BodyPart.RightLeg => [1],
        _ => [0, 1],
    };

    /// <summary>Adds the motion of class <paramref name="c"/> at time <paramref name="u"/> to the rest pose in <paramref name="p"/>.</summary>
    public static void Apply(Pose p, SynthClass c, double u, in MotionParams m)
    {
        u = Math.Clamp(u, 0, 1);
        double hold = Hold(u), env = Env(u), a = m.Amp, k = m.Cycles;
        double Osc(double phase) => Math.Sin(TwoPi * k * u + phase);
        bool arm = c.Part is BodyPart.LeftArm or BodyPart.RightArm or BodyPart.BothArms;
        bool leg = c.Part is BodyPart.LeftLeg or BodyPart.RightLeg;
        var sides = Sides(c.Part);

        switch (c.Primitive)
        {
            case Primitive.Raise when arm:
                foreach (int s in sides) { p.ArmFlex[s] += 165 * a * hold; p.Elbow[s] *= 1 - hold; }
                break;
            case Primitive.Raise when leg:
                foreach (int s in sides) { p.HipFlex[s] += 85 * a * hold; p.Knee[s] += 95 * hold; }
                break;
            case Primitive.Raise: // head: look up (the upper body leans back a little with it)
                p.HeadPitch -= 45 * a * hold;
                p.TorsoPitch -= 6 * hold;
                break;
            case Primitive.Wave:
                foreach (int s in sides)
                {
                    p.ArmAbd[s] += (100 - p.ArmAbd[s]) * hold;
                    p.ArmTwist[s] += 90 * hold;
                    p.Elbow[s] = p.Elbow[s] * (1 - hold) + hold * (85 + 35 * a * Osc(m.Phase + s * Math.PI));
                }
                break;
            case Primitive.Swing when arm:
                foreach (int s in sides) p.ArmFlex[s] += 60 * a * env * Osc(m.Phase);
                break;
            case Primitive.Swing:
                foreach (int s in sides) p.HipFlex[s] += 40 * a * env * Osc(m.Phase);
                break;
            case Primitive.Circle when arm:
                foreach (int s in sides) { p.ArmFlex[s] += 360 * k * Smooth(0, 1, u); p.ArmAbd[s] += 15 * env; p.Elbow[s] *= 1 - env; }
                break;
            case Primitive.Circle when leg:
                foreach (int s in sides)
                {
                    double th = TwoPi * k * u + m.Phase;
                    p.HipFlex[s] += env * a * (25 + 20 * Math.Cos(th));
                    p.HipAbd[s] += env * a * (15 + 15 * Math.Sin(th));
                    p.Knee[s] += 10 * env;
                }
                break;
            case Primitive.Circle: // head roll
                {
                    double th = TwoPi * k * u + m.Phase;
                    p.HeadPitch += env * a * 30 * Math.Sin(th);
                    p.HeadRoll += env * a * 30 * Math.Cos(th);
                    p.TorsoRoll += env * a * 5 * Math.Cos(th);
                }
                break;
            case Primitive.Shake when arm:
                foreach (int s in sides)
                {
                    p.ArmFlex[s] += hold * (75 + 10 * a * Osc(m.Phase));
                    p.Elbow[s] = p.Elbow[s] * (1 - hold) + hold * (25 + 20 * a * Osc(m.Phase + 1.3));
                }
                break;
            case Primitive.Shake when leg:
                foreach (int s in sides)
                {
                    p.HipFlex[s] += hold * (25 + 6 * a * Osc(m.Phase));
                    p.Knee[s] += hold * (25 + 15 * a * Osc(m.Phase + 1.3));
                }
                break;
            case Primitive.Shake: // head: say no
                p.HeadYaw += 45 * a * env * Osc(m.Phase);
                p.TorsoYaw += 6 * a * env * Osc(m.Phase);
                break;
            case Primitive.Stretch when arm:
                foreach (int s in sides) { p.ArmAbd[s] += (90 * a - p.ArmAbd[s]) * hold; p.Elbow[s] *= 1 - hold; }
                break;
            case Primitive.Stretch:
                foreach (int s in sides) p.HipAbd[s] += 45 * a * hold;
                break;
            case Primitive.Bend when arm:
                foreach (int s in sides) p.Elbow[s] += 130 * a * (0.5 - 0.5 * Math.Cos(TwoPi * k * u));
                break;
            case Primitive.Bend when leg:
                foreach (int s in sides) { p.Knee[s] += 110 * a * hold; p.HipFlex[s] -= 10 * hold; }
                break;
            case Primitive.Bend: // body bow
                p.TorsoPitch += 75 * a * hold;
                for (int s = 0; s < 2; s++) { p.HipFlex[s] += 10 * hold; p.ArmFlex[s] += 70 * a * hold; }
                p.HeadPitch += 10 * hold;
                break;
            case Primitive.Kick:
                foreach (int s in sides)
                {
                    double v = k * u - Math.Floor(k * u);
                    double b = u >= 1 ? 0 : Math.Sin(Math.PI * v);
                    p.HipFlex[s] += 85 * a * Math.Pow(b, 1.5);
                    p.Knee[s] += 90 * b * (1 - b * b * b * b);
                }
                break;
            case Primitive.Punch:
                foreach (int s in sides)
                {
                    double alt = sides.Length == 2 ? s * Math.PI : 0;
                    double pp = hold * Math.Pow(Math.Max(0, Osc(m.Phase + alt)), 2);
                    p.ArmFlex[s] += 70 * hold + 20 * pp;
                    p.Elbow[s] = p.Elbow[s] * (1 - hold) + hold * 125 * a * (1 - pp);
                    p.ArmAbd[s] *= 1 - hold;
                }
                break;
            case Primitive.Turn when c.Part == BodyPart.Head:
                p.HeadYaw += m.Side * 75 * a * hold;
                p.TorsoYaw += m.Side * 15 * hold;
                break;
            case Primitive.Turn:
                p.BodyYaw += m.Side * 180 * Smooth(0.05, 0.95, u);
                break;
            case Primitive.Squat:
                for (int s = 0; s < 2; s++) { p.HipFlex[s] += 95 * a * hold; p.Knee[s] += 120 * a * hold; p.ArmFlex[s] += 80 * hold; }
                p.TorsoPitch += 30 * hold;
                break;
            case Primitive.Jump:
                {
                    double crouch = Bump(u, 0.1, 0.42) + Bump(u, 0.62, 0.95);
                    double air = Bump(u, 0.36, 0.66);
                    p.Lift += 0.25 * a * air;
                    for (int s = 0; s < 2; s++) { p.Knee[s] += 75 * crouch + 10 * air; p.HipFlex[s] += 55 * crouch; p.ArmFlex[s] += 140 * air - 30 * crouch; }
                    p.TorsoPitch += 25 * crouch;
                }
                break;
            case Primitive.Step:
                foreach (int s in sides)
                {
                    p.HipFlex[s] += 28 * a * hold;
                    p.HipFlex[1 - s] -= 22 * a * hold;
                    p.Knee[s] += 45 * (Bump(u, 0, 0.3) + Bump(u, 0.7, 1));
                    p.Forward += 0.37 * a * m.LegLength * hold;
                }
                break;
            default:
                throw new InvalidOperationException($"no motion for {c.Primitive} {c.Part}");
        }
    }
}
