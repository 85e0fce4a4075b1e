namespace Tdsm.Data;

/// <summary>Motion primitives of the synthetic action vocabulary.</summary>
public enum Primitive { Raise, Wave, Swing, Circle, Shake, Stretch, Bend, Kick, Punch, Turn, Squat, Jump, Step }

/// <summary>Body parts (or the whole body) a primitive acts on.</summary>
public enum BodyPart { LeftArm, RightArm, BothArms, LeftLeg, RightLeg, Head, Body }

/// <summary>One synthetic action class: a primitive applied to a body part, with its label phrase
/// and one-sentence description (the two prompts the text encoder sees).</summary>
public sealed record SynthClass(int Id, Primitive Primitive, BodyPart Part, string Label, string Description);

/// <summary>
/// The 48-class synthetic vocabulary (13 primitives x 7 body parts, valid combinations only) and
/// its zero-shot splits. Every unseen class of a shipped split shares its primitive with some seen
/// class and its body part with some other seen class ("raise the left arm" unseen; "raise the right
/// arm" and "wave the left arm" seen), so text composition is what carries zero-shot transfer.
/// </summary>
public static class SyntheticActions
{
    private static readonly (Primitive P, BodyPart B, string Label, string Description)[] Table =
    [
        (Primitive.Raise, BodyPart.LeftArm, "raise the left arm", "A person lifts the left arm forward and up above the head, holds it there, then lowers it."),
        (Primitive.Raise, BodyPart.RightArm, "raise the right arm", "A person lifts the right arm forward and up above the head, holds it there, then lowers it."),
        (Primitive.Raise, BodyPart.BothArms, "raise both arms", "A person lifts both arms forward and up above the head, holds them there, then lowers them."),
        (Primitive.Raise, BodyPart.LeftLeg, "raise the left leg", "A person lifts the left knee up high in front of the body, holds it, then puts the foot back down."),
        (Primitive.Raise, BodyPart.RightLeg, "raise the right leg", "A person lifts the right knee up high in front of the body, holds it, then puts the foot back down."),
        (Primitive.Raise, BodyPart.Head, "raise the head", "A person tilts the head back to look up at the ceiling, holds it, then looks straight ahead again."),
        (Primitive.Wave, BodyPart.LeftArm, "wave the left arm", "A person lifts the left arm out to the side and waves the forearm from side to side several times."),
        (Primitive.Wave, BodyPart.RightArm, "wave the right arm", "A person lifts the right arm out to the side and waves the forearm from side to side several times."),
        (Primitive.Wave, BodyPart.BothArms, "wave both arms", "A person lifts both arms out to the side and waves the forearms from side to side several times."),
        (Primitive.Swing, BodyPart.LeftArm, "swing the left arm", "A person swings the straight left arm forward and backward like a pendulum."),
        (Primitive.Swing, BodyPart.RightArm, "swing the right arm", "A person swings the straight right arm forward and backward like a pendulum."),
        (Primitive.Swing, BodyPart.BothArms, "swing both arms", "A person swings both straight arms forward and backward together like a pendulum."),
        (Primitive.Swing, BodyPart.LeftLeg, "swing the left leg", "A person swings the straight left leg forward and backward like a pendulum."),
        (Primitive.Swing, BodyPart.RightLeg, "swing the right leg", "A person swings the straight right leg forward and backward like a pendulum."),
        (Primitive.Circle, BodyPart.LeftArm, "circle the left arm", "A person rotates the straight left arm in big circles around the shoulder."),
        (Primitive.Circle, BodyPart.RightArm, "circle the right arm", "A person rotates the straight right arm in big circles around the shoulder."),
        (Primitive.Circle, BodyPart.BothArms, "circle both arms", "A person rotates both straight arms in big circles around the shoulders."),
        (Primitive.Circle, BodyPart.LeftLeg, "circle the left leg", "A person lifts the left leg and moves the foot around in circles in the air."),
        (Primitive.Circle, BodyPart.RightLeg, "circle the right leg", "A person lifts the right leg and moves the foot around in circles in the air."),
        (Primitive.Circle, BodyPart.Head, "circle the head", "A person rolls the head around in slow circles on the neck."),
        (Primitive.Shake, BodyPart.LeftArm, "shake the left arm", "A person holds the left arm out in front and shakes it quickly with small movements."),
        (Primitive.Shake, BodyPart.RightArm, "shake the right arm", "A person holds the right arm out in front and shakes it quickly with small movements."),
        (Primitive.Shake, BodyPart.BothArms, "shake both arms", "A person holds both arms out in front and shakes them quickly with small movements."),
        (Primitive.Shake, BodyPart.LeftLeg, "shake the left leg", "A person lifts the left leg a little and shakes it quickly with small movements."),
        (Primitive.Shake, BodyPart.RightLeg, "shake the right leg", "A person lifts the right leg a little and shakes it quickly with small movements."),
        (Primitive.Shake, BodyPart.Head, "shake the head", "A person turns the head quickly left and right several times, as if saying no."),
        (Primitive.Stretch, BodyPart.LeftArm, "stretch the left arm out to the side", "A person extends the straight left arm sideways to shoulder height, holds it, then lowers it."),
        (Primitive.Stretch, BodyPart.RightArm, "stretch the right arm out to the side", "A person extends the straight right arm sideways to shoulder height, holds it, then lowers it."),
        (Primitive.Stretch, BodyPart.BothArms, "stretch both arms out to the side", "A person extends both straight arms sideways to shoulder height, holds them, then lowers them."),
        (Primitive.Stretch, BodyPart.LeftLeg, "stretch the left leg out to the side", "A person moves the straight left leg out sideways, holds it, then brings it back."),
        (Primitive.Stretch, BodyPart.RightLeg, "stretch the right leg out to the side", "A person moves the straight right leg out sideways, holds it, then brings it back."),
        (Primitive.Bend, BodyPart.LeftArm, "bend the left arm at the elbow", "A person bends the left elbow to bring the hand up to the shoulder and straightens the arm again."),
        (Primitive.Bend, BodyPart.RightArm, "bend the right arm at the elbow", "A person bends the right elbow to bring the hand up to the shoulder and straightens the arm again."),
        (Primitive.Bend, BodyPart.BothArms, "bend both arms at the elbows", "A person bends both elbows to bring the hands up to the shoulders and straightens the arms again."),
        (Primitive.Bend, BodyPart.LeftLeg, "bend the left leg at the knee", "A person bends the left knee to lift the foot up behind the body, holds it, then puts it down."),
        (Primitive.Bend, BodyPart.RightLeg, "bend the right leg at the knee", "A person bends the right knee to lift the foot up behind the body, holds it, then puts it down."),
        (Primitive.Bend, BodyPart.Body, "bend the body forward", "A person bends the upper body forward from the hips in a deep bow, then stands up straight."),
        (Primitive.Kick, BodyPart.LeftLeg, "kick forward with the left leg", "A person kicks the left foot forward quickly, extending the leg in front of the body, then pulls it back."),
        (Primitive.Kick, BodyPart.RightLeg, "kick forward with the right leg", "A person kicks the right foot forward quickly, extending the leg in front of the body, then pulls it back."),
        (Primitive.Punch, BodyPart.LeftArm, "punch forward with the left arm", "A person punches the left fist straight forward quickly and pulls it back, several times."),
        (Primitive.Punch, BodyPart.RightArm, "punch forward with the right arm", "A person punches the right fist straight forward quickly and pulls it back, several times."),
        (Primitive.Punch, BodyPart.BothArms, "punch forward with both arms", "A person punches both fists straight forward quickly and pulls them back, several times."),
        (Primitive.Turn, BodyPart.Head, "turn the head to the side", "A person turns the head to look over one shoulder, holds it, then faces forward again."),
        (Primitive.Turn, BodyPart.Body, "turn the body around", "A person turns the whole body around on the spot to face the other way."),
        (Primitive.Squat, BodyPart.Body, "squat down", "A person bends both knees and lowers the hips into a deep squat, then stands back up."),
        (Primitive.Jump, BodyPart.Body, "jump up", "A person bends the knees and jumps straight up into the air, then lands on both feet."),
        (Primitive.Step, BodyPart.LeftLeg, "step forward with the left leg", "A person takes one step forward with the left foot, then steps back to the starting place."),
        (Primitive.Step, BodyPart.RightLeg, "step forward with the right leg", "A person takes one step forward with the right foot, then steps back to the starting place."),
    ];

    /// <summary>The classes, in class-id order (id = position).</summary>
    public static readonly IReadOnlyList<SynthClass> Classes =
        Table.Select((e, i) => new SynthClass(i, e.P, e.B, e.Label, e.Description)).ToArray();

    /// <summary>Number of classes (48).</summary>
    public static int Count => Classes.Count;

    /// <summary>Class id of a (primitive, part) pair.</summary>
    /// <exception cref="ArgumentException">The pair is not in the vocabulary.</exception>
    public static int IdOf(Primitive p, BodyPart b) =>
        Classes.FirstOrDefault(c => c.Primitive == p && c.Part == b)?.Id ?? throw new ArgumentException($"no synthetic class '{p} {b}'");

    private static readonly (Primitive, BodyPart)[] Unseen8 =
    [
        (Primitive.Raise, BodyPart.LeftArm), (Primitive.Wave, BodyPart.RightArm), (Primitive.Circle, BodyPart.BothArms),
        (Primitive.Shake, BodyPart.Head), (Primitive.Kick, BodyPart.RightLeg), (Primitive.Swing, BodyPart.LeftLeg),
        (Primitive.Bend, BodyPart.Body), (Primitive.Turn, BodyPart.Body),
    ];

    private static readonly (Primitive, BodyPart)[] Unseen12Extra =
    [
        (Primitive.Raise, BodyPart.RightLeg), (Primitive.Shake, BodyPart.LeftArm),
        (Primitive.Punch, BodyPart.RightArm), (Primitive.Stretch, BodyPart.LeftLeg),
    ];

    /// <summary>The shipped splits by unseen count: 40 seen / 8 unseen and 36 seen / 12 unseen (ru8/rs40, ru12/rs36).</summary>
    public static readonly IReadOnlyDictionary<int, LabelSplit> Splits = new Dictionary<int, LabelSplit>
    {
        [8] = LabelSplit.FromUnseen(Unseen8.Select(u => IdOf(u.Item1, u.Item2)).Order(), Table.Length, "synthetic ru8"),
        [12] = LabelSplit.FromUnseen(Unseen8.Concat(Unseen12Extra).Select(u => IdOf(u.Item1, u.Item2)).Order(), Table.Length, "synthetic ru12"),
    };

    /// <summary>Checks the zero-shot structure of a split: each unseen class's primitive occurs in a seen
    /// class, and its body part occurs in a seen class. Returns the violations (empty when the split is good).</summary>
    public static IReadOnlyList<string> ZeroShotViolations(LabelSplit split)
    {
        var seen = split.Seen.Select(i => Classes[i]).ToList();
        var problems = new List<string>();
        foreach (var u in split.Unseen.Select(i => Classes[i]))
        {
            if (!seen.Any(s => s.Primitive == u.Primitive)) problems.Add($"unseen '{u.Label}': no seen class uses primitive {u.Primitive}");
            if (!seen.Any(s => s.Part == u.Part)) problems.Add($"unseen '{u.Label}': no seen class uses body part {u.Part}");
        }
        return problems;
    }
}
