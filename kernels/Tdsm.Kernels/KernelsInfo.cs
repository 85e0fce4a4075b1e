namespace Tdsm.Kernels;

/// <summary>Marker for the kernel assembly; kernels land here one op family per file.</summary>
public static class KernelsInfo
{
    public const string Version = "0.1";
}
