namespace Tdsm.Tests;

/// <summary>Locates ../shared (beside the repository root) from the test's working directory.</summary>
public static class TestPaths
{
    private static readonly Lazy<string> SharedRoot = new(() =>
    {
        var env = Environment.GetEnvironmentVariable("TDSM_SHARED");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "TDSM.Native.sln")))
            {
                var s = Path.Combine(d.Parent!.FullName, "shared");
                if (Directory.Exists(s)) return s;
            }
        }
        throw new DirectoryNotFoundException("../shared not found beside the repository root (set TDSM_SHARED)");
    });

    public static string Shared(string relative) => Path.Combine(SharedRoot.Value, relative);
    public static string Fixture(string name) => Shared(Path.Combine("fixtures", name));

    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "TDSM.Native.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("repository root not found");
    }
}
