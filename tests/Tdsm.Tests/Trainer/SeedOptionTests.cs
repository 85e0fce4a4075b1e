using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>Seeds on the command line: a negative or non-numeric seed is a usage error (exit 2) in every command that takes one.</summary>
public class SeedOptionTests
{
    // Each command line reaches the seed before anything else is checked or opened (no file here exists).
    [TestCase("synth --out none --seed")]
    [TestCase("synth-features --out none --seed")]
    [TestCase("train --features none --text-features none --unseen none --out none --seed")]
    [TestCase("bench --seed")]
    [TestCase("pretrain-encoder --train-x none --train-y none --seen none --out none --seed")]
    [TestCase("bundle --out none --seed")]
    [TestCase("eval --run none --noises 3 --noise-seed")]
    public void NegativeAndNonNumericSeedsAreUsageErrors(string commandLine)
    {
        var words = commandLine.Split(' ');
        foreach (var value in new[] { "-1", "abc", "1.5" })
        {
            var err = new StringWriter();
            int rc = Cli.Run([.. words, value], TextWriter.Null, err);
            Assert.That(rc, Is.EqualTo(2), $"{commandLine} {value}: {err}");
            Assert.That(err.ToString(), Does.Contain($"option {words[^1]} expects a non-negative integer seed, got '{value}'").And.Not.Contain("   at "));
        }
    }

    [Test]
    public void SeedsParseUpToTheirTypesRange()
    {
        var args = new CommandArgs("x", ["--a", "18446744073709551615", "--b", "2147483648", "--c", "7"]);
        Assert.That(args.GetSeed("--a", 0), Is.EqualTo(ulong.MaxValue));
        Assert.That(() => args.GetIntSeed("--b", 0), Throws.TypeOf<CommandLineException>().With.Message.Contains("from 0 to 2147483647"));
        Assert.That(args.GetIntSeed("--c", 0), Is.EqualTo(7));
        Assert.That(args.GetSeed("--missing", 3), Is.EqualTo(3UL));
    }
}
