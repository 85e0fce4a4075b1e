namespace Tdsm.StGcn;

/// <summary>
/// Where an ST-GCN runs its training and inference steps: the host model itself
/// (<see cref="StGcnModel"/> over an <see cref="IStGcnOps"/> tier), or a device-resident copy
/// (the GPU tier in Tdsm.Gpu) whose parameters, gradients, running statistics and activations live
/// on the device. <see cref="Model"/> is the host copy (config, layout, checkpoints);
/// <see cref="SyncToHost"/> brings the device state back into it.
/// </summary>
public interface IStGcnRunner
{
    /// <summary>Tier name ("reference", "cpu", "gpu", "gpu-sim").</summary>
    string Name { get; }

    /// <summary>The host model: config, layout, and (after <see cref="SyncToHost"/>) the current state.</summary>
    StGcnModel Model { get; }

    /// <summary>Forward on x (N, C, T, V, M); with labels returns the mean cross-entropy (else NaN). See <see cref="StGcnModel.Forward"/>.</summary>
    double Forward(ReadOnlySpan<float> x, ReadOnlySpan<int> labels, int n, int t, int m, bool training);

    /// <summary>Backward of the last training-mode forward with labels; gradients accumulate.</summary>
    void Backward();

    /// <summary>Sets every gradient to zero.</summary>
    void ZeroGradients();

    /// <summary>Logits (N, NumClass) of the last forward.</summary>
    ReadOnlySpan<float> Logits { get; }

    /// <summary>Features z_x (N, FeatureDim) of the last forward.</summary>
    ReadOnlySpan<float> Features { get; }

    /// <summary>A fresh SGD-Nesterov optimiser (zero momentum) over this runner's parameters and gradients;
    /// call it with the learning rate for one step.</summary>
    Action<double> CreateSgd(double momentum, double weightDecay);

    /// <summary>Copies parameters, gradients and running statistics into <see cref="Model"/> (no-op on the host).</summary>
    void SyncToHost();
}
