using Tdsm.Trainer;

namespace Tdsm.Tests.Trainer;

/// <summary>Option values on the command line: seeds, flags, numbers, empty values and names checked before any work.</summary>
public class CommandLineOptionTests
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

    [Test]
    public void FlagsTakeNoValueOrAYesNoValue()
    {
        var args = new CommandArgs("x", ["--a", "--b", "yes", "--c", "no", "--d", "FALSE", "--e", "maybe"]);
        Assert.That(args.Flag("--a"), Is.True);
        Assert.That(args.Flag("--b"), Is.True);
        Assert.That(args.Flag("--c"), Is.False);
        Assert.That(args.Flag("--d"), Is.False);
        Assert.That(args.Flag("--missing"), Is.False);
        Assert.That(() => args.Flag("--e"), Throws.TypeOf<CommandLineException>().With.Message.Contains("flag --e takes no value"));
        var numbers = new CommandArgs("x", ["--a", "NaN", "--b", "1e309", "--c", "-0.5"]);
        Assert.That(() => numbers.GetDouble("--a", 0), Throws.TypeOf<CommandLineException>().With.Message.Contains("expects a finite number, got 'NaN'"));
        Assert.That(() => numbers.GetDouble("--b", 0), Throws.TypeOf<CommandLineException>().With.Message.Contains("got '1e309'"));
        Assert.That(numbers.GetDouble("--c", 0), Is.EqualTo(-0.5));
        Assert.That(() => new CommandArgs("x", ["--out", ""]).Get("--out"), Throws.TypeOf<CommandLineException>().With.Message.Contains("option --out needs a value"));
        Assert.That(() => new CommandArgs("x", ["--out", "a", "--out", "b"]), Throws.TypeOf<CommandLineException>().With.Message.Contains("option --out is given twice"));
        // Backends are checked before any work; loss weights cannot be negative.
        var err = new StringWriter();
        Assert.That(Cli.Run(["eval", "--run", "nowhere", "--compare", "foo"], TextWriter.Null, err), Is.EqualTo(2));
        Assert.That(err.ToString(), Does.Contain("--compare: unknown backend 'foo'"));
        Assert.That(() => new Tdsm.Training.TrainConfig(Margin: -1).Validated(), Throws.ArgumentException.With.Message.Contains("margin (the triplet margin τ) must be 0 or more, got -1"));
        // A dataset larger than any disk (17 PB) is refused before a byte is written.
        string big = Path.Combine(Path.GetTempPath(), "tdsm-big-" + Guid.NewGuid().ToString("N"));
        err = new StringWriter();
        Assert.That(Cli.Run(["synth", "--out", big, "--samples-per-class", "2000000000", "--frames", "300"], TextWriter.Null, err), Is.EqualTo(2));
        Assert.That(err.ToString(), Does.Contain("the data would take 17280000.0 GB"));
        Assert.That(Directory.Exists(big), Is.False);
    }

    /// <summary>Sizes that cannot be used are refused up front (--chunk 0 looped writing empty chunks), and a malformed
    /// run report is an error naming it.</summary>
    [Test]
    public void BadSizesAndReportsAreErrorsNotCrashesOrHangs()
    {
        var dir = Path.Combine(Path.GetTempPath(), "tdsm-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var err = new StringWriter();
            Assert.That(Cli.Run(["ntu-preprocess", "--raw", dir, "--out", Path.Combine(dir, "o"), "--chunk", "0"], TextWriter.Null, err), Is.EqualTo(2));
            Assert.That(err.ToString(), Does.Contain("--chunk must be a positive number of samples, got 0"));
            err = new StringWriter();
            Assert.That(Cli.Run(["ntu-preprocess", "--raw", dir, "--out", Path.Combine(dir, "o"), "--frames", "-1"], TextWriter.Null, err), Is.EqualTo(2));
            Assert.That(err.ToString(), Does.Contain("--frames must be 1 to 10000"));
            File.WriteAllText(Path.Combine(dir, "report.json"), "{");
            foreach (var command in new[] { "eval", "export" })
            {
                err = new StringWriter();
                string[] args = command == "eval"
                    ? ["eval", "--run", dir, "--features", dir, "--text-features", Path.Combine(dir, "t.safetensors"), "--model", Path.Combine(dir, "m.safetensors")]
                    : ["export", "--run", dir, "--out", Path.Combine(dir, "x")];
                int rc = Cli.Run(args, TextWriter.Null, err);
                Assert.That(rc, Is.Not.Zero, command);
                Assert.That(err.ToString(), Does.Not.Contain("   at "), command);
            }
        }
        finally { Directory.Delete(dir, true); }
    }
}
