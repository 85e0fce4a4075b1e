using Tdsm.Text;
using Tdsm.Trainer;

namespace Tdsm.Tests.Text;

/// <summary>The encode-text command end to end on a small class list, and its errors.</summary>
public class EncodeTextCommandTests
{
    private string _dir = "";

    [SetUp] public void SetUp() { _dir = Path.Combine(Path.GetTempPath(), "tdsm-enc-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(_dir); }
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private (int Rc, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Cli.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    private (string Classes, string Desc) WriteInputs()
    {
        var classes = Path.Combine(_dir, "c.csv");
        File.WriteAllText(classes, "idx,label\n1,drink water\n2,eat meal/snack\n3,\"kicking something\"\n");
        var desc = Path.Combine(_dir, "d.txt");
        File.WriteAllText(desc, "Taking in water by mouth.\nConsuming food.\nStriking an object with the foot.\n");
        return (classes, desc);
    }

    [Test]
    public void WritesSafetensorsWithNamesAndNpy()
    {
        var (classes, desc) = WriteInputs();
        var st = Path.Combine(_dir, "f.safetensors");
        var r = Run("encode-text", "--classes", classes, "--descriptions", desc, "--out", st, "--cache", TextFixture.CacheDir, "--neighbours", "1");
        Assert.That(r.Rc, Is.EqualTo(0), r.Err);
        Assert.That(r.Out, Does.Contain("(3, 36, 768)"));
        var f = ClassTextFeatures.Load(st);
        Assert.That(f.Names, Is.EqualTo(new[] { "drink water", "eat meal/snack", "kicking something" }));
        Assert.That(f.Width, Is.EqualTo(768));

        var npy = Path.Combine(_dir, "f.npy");
        Assert.That(Run("encode-text", "--classes", classes, "--descriptions", desc, "--out", npy, "--cache", TextFixture.CacheDir).Rc, Is.EqualTo(0));
        Assert.That(ClassTextFeatures.Load(npy, f.Names).Data, Is.EqualTo(f.Data));
    }

    [Test]
    public void MismatchedDescriptionCountIsReported()
    {
        var (classes, _) = WriteInputs();
        var desc = Path.Combine(_dir, "short.txt");
        File.WriteAllText(desc, "one\ntwo\n");
        var r = Run("encode-text", "--classes", classes, "--descriptions", desc, "--out", Path.Combine(_dir, "x.safetensors"), "--cache", TextFixture.CacheDir);
        Assert.That(r.Rc, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("short.txt").And.Contain("2 descriptions").And.Contain("3 classes"));
    }

    /// <summary>A repeated or skipped class index would shift every later class's text against its id: refused with file and line.</summary>
    [TestCase("0,wave\n0,kick\n1,jump\n", ":2: expected class index 1, got 0")]
    [TestCase("0,wave\n2,kick\n3,jump\n", ":2: expected class index 1, got 2")]
    public void RepeatedOrMissingClassIndicesAreReported(string csv, string want)
    {
        var (_, desc) = WriteInputs();
        var classes = Path.Combine(_dir, "bad.csv");
        File.WriteAllText(classes, csv);
        var r = Run("encode-text", "--classes", classes, "--descriptions", desc, "--out", Path.Combine(_dir, "x.safetensors"), "--cache", TextFixture.CacheDir);
        Assert.That(r.Rc, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("bad.csv" + want));
        Assert.That(File.Exists(Path.Combine(_dir, "x.safetensors")), Is.False);
    }

    [Test]
    public void MissingPackageAndCacheSayHowToRestore()
    {
        var (classes, desc) = WriteInputs();
        var r = Run("encode-text", "--classes", classes, "--descriptions", desc, "--out", Path.Combine(_dir, "x.safetensors"),
            "--cache", Path.Combine(_dir, "empty-cache"), "--package", Path.Combine(_dir, "missing.dll"));
        Assert.That(r.Rc, Is.EqualTo(1));
        Assert.That(r.Err, Does.Contain("missing.dll").And.Contain("dotnet restore src/Trainer"));
    }
}
