namespace Tdsm.Training;

/// <summary>
/// A 64-bit fingerprint of training data (the float bits and integers as given, in order), stored with a checkpoint
/// so that a resumed run can tell it is being fed other features, labels, seen classes or text features. Not a
/// cryptographic hash: it only has to differ when the data do (a multiply-xorshift mix per 32-bit word).
/// </summary>
public struct DataFingerprint
{
    private ulong _h;

    /// <summary>A fingerprint of nothing yet.</summary>
    public static DataFingerprint Create() => new() { _h = 0x9E3779B97F4A7C15UL };

    /// <summary>The value so far.</summary>
    public readonly ulong Value => _h;

    /// <summary>Mixes in the length and then every value's bits.</summary>
    public void Add(ReadOnlySpan<float> values)
    {
        Mix((ulong)values.Length);
        foreach (float v in values) Mix(BitConverter.SingleToUInt32Bits(v));
    }

    /// <summary>Mixes in the length and then every value.</summary>
    public void Add(ReadOnlySpan<int> values)
    {
        Mix((ulong)values.Length);
        foreach (int v in values) Mix((uint)v);
    }

    /// <summary>Mixes in one number (e.g. a fingerprint computed elsewhere).</summary>
    public void Add(ulong value) => Mix(value);

    private void Mix(ulong x)
    {
        _h = (_h ^ x) * 0xFF51AFD7ED558CCDUL;
        _h ^= _h >> 33;
    }
}
