using Tdsm.Tensors;

namespace Tdsm.Inference;

/// <summary>
/// A skeleton sequence in the NTU RGB+D layout: (frames, persons, 25 joints, 3 coordinates) in
/// one row-major float array, one or two persons (a missing second person is all zeros, as in
/// the NTU files). Validated on construction.
/// </summary>
public sealed class SkeletonSequence
{
    /// <summary>Joints per person in the NTU RGB+D layout.</summary>
    public const int Joints = 25;

    /// <summary>Coordinates per joint (x, y, z).</summary>
    public const int Coordinates = 3;

    /// <summary>Number of frames (T).</summary>
    public int Frames { get; }

    /// <summary>Number of persons (1 or 2).</summary>
    public int Persons { get; }

    /// <summary>The coordinates, (Frames, Persons, 25, 3) row-major. Not copied.</summary>
    public ReadOnlyMemory<float> Data { get; }

    /// <summary>True when the coordinates are already pre-normalised (centred on the spine and
    /// rotated, as in the published NTU arrays); false for raw Kinect coordinates, which the
    /// encoder pre-normalises first.</summary>
    public bool Preprocessed { get; }

    /// <summary>Wraps (frames, persons, joints, 3) coordinates.</summary>
    /// <param name="data">Row-major coordinates (not copied).</param>
    /// <param name="frames">T, at least 1.</param>
    /// <param name="persons">1 or 2.</param>
    /// <param name="joints">Joints per person: must be 25 (NTU layout).</param>
    /// <param name="preprocessed">True when the coordinates are already pre-normalised.</param>
    /// <exception cref="ArgumentException">Empty sequence, wrong joint or person count, a length that
    /// disagrees with the shape, or a coordinate that is NaN or infinite (the message names frame,
    /// person, joint and axis).</exception>
    public SkeletonSequence(float[] data, int frames, int persons = 1, int joints = Joints, bool preprocessed = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (frames <= 0 || data.Length == 0) throw new ArgumentException($"empty skeleton sequence: {frames} frames, {data.Length} values; at least one frame is needed", nameof(data));
        if (joints != Joints) throw new ArgumentException($"skeleton has {joints} joints per person, expected {Joints} (NTU RGB+D layout)", nameof(joints));
        if (persons is not (1 or 2)) throw new ArgumentException($"skeleton has {persons} persons, expected 1 or 2", nameof(persons));
        long want = (long)frames * persons * Joints * Coordinates;
        if (data.Length != want)
            throw new ArgumentException($"skeleton data has {data.Length} values, expected frames*persons*25*3 = {frames}*{persons}*{Joints}*{Coordinates} = {want}", nameof(data));
        if (Finite.IndexOfNonFinite(data) is var i and >= 0)
        {
            int axis = i % Coordinates, joint = i / Coordinates % Joints, person = i / (Coordinates * Joints) % persons, frame = i / (Coordinates * Joints * persons);
            throw new ArgumentException($"skeleton coordinate is {data[i]} at frame {frame}, person {person}, joint {joint}, axis {"xyz"[axis]}", nameof(data));
        }
        Data = data;
        Frames = frames;
        Persons = persons;
        Preprocessed = preprocessed;
    }
}

/// <summary>
/// The seam between skeletons and the DiT: turns a sequence into the skeleton feature z_x
/// (C_in values). Implemented by the ST-GCN encoder when a bundle carries one.
/// </summary>
internal interface ISkeletonEncoder
{
    /// <summary>C_in: the width of the features this encoder writes.</summary>
    int FeatureSize { get; }

    /// <summary>Writes the feature of <paramref name="sequence"/> into <paramref name="feature"/> (FeatureSize values). Must be thread-safe.</summary>
    void Encode(SkeletonSequence sequence, Span<float> feature);
}
