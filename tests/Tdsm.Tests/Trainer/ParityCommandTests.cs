using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>The `parity` command's exit codes and output.</summary>
public class ParityCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [TestCase("reference")]
    [TestCase("cpu")]
    public void PassesOnTheShippedDiTFixture(string backend)
    {
        var (code, stdout, _) = Run("parity", "--fixture", TestPaths.Fixture("dit_small.safetensors"), "--backend", backend);
        Assert.That(code, Is.Zero, stdout);
        Assert.That(stdout, Does.Contain("grad.*").And.Contain("all groups within tolerance"));
    }

    [TestCase("reference")]
    [TestCase("cpu")]
    public void PassesOnTheShippedStGcnFixture(string backend)
    {
        var (code, stdout, _) = Run("parity", "--fixture", TestPaths.Fixture("stgcn_small.safetensors"), "--backend", backend);
        Assert.That(code, Is.Zero, stdout);
        Assert.That(stdout, Does.Contain("out.eval_features").And.Contain("all groups within tolerance"));
    }

    [Test]
    public void BadInputGivesExitCode2WithAReason()
    {
        var (code, _, err) = Run("parity", "--fixture", "/nonexistent/x.safetensors");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("file not found"));
        (code, _, err) = Run("parity", "--fixture", "x", "--bogus", "1");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("unknown option --bogus"));
        (code, _, err) = Run("parity", "--fixture", TestPaths.Fixture("dit_small.safetensors"), "--backend", "tpu");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("unknown backend 'tpu'"));
    }

    [Test]
    public void HelpExplainsTheCommand()
    {
        var (code, stdout, _) = Run("parity", "--help");
        Assert.That(code, Is.Zero);
        Assert.That(stdout, Does.Contain("--backend").And.Contain("Tolerances"));
    }
}
