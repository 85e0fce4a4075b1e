using System.Xml.Linq;
using Tdsm.Inference;

namespace Tdsm.Tests.Inference;

/// <summary>The embedded library must stay dependency-free: no package, no project that has one, no non-BCL assembly.</summary>
public class PackagingTests
{
    private static IEnumerable<string> ProjectClosure(string csproj)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var todo = new Stack<string>([Path.GetFullPath(csproj)]);
        while (todo.Count > 0)
        {
            var p = todo.Pop();
            if (!seen.Add(p)) continue;
            foreach (var r in XDocument.Load(p).Descendants().Where(e => e.Name.LocalName == "ProjectReference"))
                todo.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(p)!, r.Attribute("Include")!.Value.Replace('\\', '/'))));
        }
        return seen;
    }

    [Test]
    public void LibraryAndEveryProjectItReferencesHaveNoPackageReference()
    {
        string root = TestPaths.RepoRoot();
        var projects = ProjectClosure(Path.Combine(root, "src", "Tdsm", "Tdsm.csproj")).ToList();
        // Directory.Build.props/targets from the project folder up to the repository root apply to it too.
        var imported = new List<string>();
        for (var d = new DirectoryInfo(Path.Combine(root, "src", "Tdsm")); d is not null && d.FullName.StartsWith(root, StringComparison.Ordinal); d = d.Parent)
            imported.AddRange(new[] { "Directory.Build.props", "Directory.Build.targets" }.Select(f => Path.Combine(d.FullName, f)).Where(File.Exists));
        foreach (var file in projects.Concat(imported))
        {
            var refs = XDocument.Load(file).Descendants().Where(e => e.Name.LocalName is "PackageReference" or "PackageDownload").Select(e => e.Attribute("Include")?.Value).ToList();
            Assert.That(refs, Is.Empty, $"{file} references packages");
        }
        Assert.That(imported, Is.Not.Empty, "Directory.Build.props was found and checked");
    }

    [Test]
    public void LibraryAssemblyReferencesOnlyTheSharedFramework()
    {
        string fx = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var refs = typeof(ActionRecognizer).Assembly.GetReferencedAssemblies();
        Assert.That(refs, Is.Not.Empty);
        Assert.That(refs.Where(r => !File.Exists(Path.Combine(fx, r.Name + ".dll"))).Select(r => r.FullName), Is.Empty);
    }
}
