namespace Tdsm.Data;

/// <summary>
/// The Kinect v2 / NTU RGB+D 25-joint skeleton. Indices here are 0-based (the NTU papers number
/// joints 1..25; joint k there is index k-1 here).
/// </summary>
public static class NtuJoints
{
    /// <summary>Joints per body.</summary>
    public const int Count = 25;

    public const int SpineBase = 0, SpineMid = 1, Neck = 2, Head = 3;
    public const int ShoulderLeft = 4, ElbowLeft = 5, WristLeft = 6, HandLeft = 7;
    public const int ShoulderRight = 8, ElbowRight = 9, WristRight = 10, HandRight = 11;
    public const int HipLeft = 12, KneeLeft = 13, AnkleLeft = 14, FootLeft = 15;
    public const int HipRight = 16, KneeRight = 17, AnkleRight = 18, FootRight = 19;
    public const int SpineShoulder = 20, HandTipLeft = 21, ThumbLeft = 22, HandTipRight = 23, ThumbRight = 24;

    /// <summary>The bones (0-based pairs), the NTU edge list of the ST-GCN graph.</summary>
    public static readonly (int A, int B)[] Bones =
    [
        (0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9), (11, 10),
        (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (21, 22), (22, 7), (23, 24), (24, 11),
    ];

    /// <summary>Whether joint <paramref name="j"/> is on the person's left side (drawn in another colour).</summary>
    public static bool IsLeft(int j) => j is >= 4 and <= 7 or >= 12 and <= 15 or 21 or 22;

    /// <summary>Whether joint <paramref name="j"/> is on the person's right side.</summary>
    public static bool IsRight(int j) => j is >= 8 and <= 11 or >= 16 and <= 19 or 23 or 24;
}
