namespace Tdsm.Trainer;

/// <summary>One subcommand of the trainer: its name, a one-line summary, a --help text and its body.</summary>
public interface ICommand
{
    string Name { get; }
    string Summary { get; }
    string Help { get; }
    int Run(CommandArgs args, TextWriter stdout, TextWriter stderr);
}

/// <summary>The subcommand table and dispatch. Add a command by adding it to <see cref="Commands"/>.</summary>
public static class Cli
{
    public static readonly IReadOnlyList<ICommand> Commands =
    [
        new ParityCommand(),
        new EncodeTextCommand(),
        new BenchCommand(),
        new TrainCommand(),
        new Pipeline.RunCommand(),
        new EvalCommand(),
        new ExtractCommand(),
        new ExportCommand(),
        new SynthCommand(),
        new SynthFeaturesCommand(),
        new CurvesCommand(),
        new NtuPreprocessCommand(),
        new PretrainEncoderCommand(),
        new BundleCommand(),
    ];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        // No arguments: the default end-to-end run.
        if (args.Length == 0) args = ["run"];
        if (args[0] is "-h" or "--help" or "help")
        {
            PrintUsage(stdout);
            return 0;
        }
        var cmd = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (cmd is null)
        {
            stderr.WriteLine($"unknown command '{args[0]}'.");
            PrintUsage(stderr);
            return 2;
        }
        var rest = args[1..];
        if (rest.Contains("--help") || rest.Contains("-h"))
        {
            stdout.WriteLine(cmd.Help.TrimEnd());
            return 0;
        }
        try
        {
            return cmd.Run(new CommandArgs(cmd.Name, rest), stdout, stderr);
        }
        catch (CommandLineException e)
        {
            stderr.WriteLine($"{cmd.Name}: {e.Message}");
            stderr.WriteLine($"run 'tdsm {cmd.Name} --help' for usage.");
            return 2;
        }
        catch (Configs.ConfigException e)
        {
            // A bad run config or preset name: file, line and problem, like a bad option.
            stderr.WriteLine($"{cmd.Name}: error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is OverflowException or OutOfMemoryException)
        {
            // Sizes whose products overflow or do not fit in memory: a usage problem, not a crash.
            stderr.WriteLine($"{cmd.Name}: error: the sizes asked for are too large ({e.Message.TrimEnd('.')}); check the size and count options");
            return 1;
        }
        catch (Exception e) when (e is Tdsm.Data.DataFormatException or Tdsm.Formats.TensorFormatException or Tdsm.Text.TextModelException
                                   or Tdsm.Data.SkeletonFormatException or IOException or UnauthorizedAccessException or ArgumentException
                                   or Tdsm.Training.TrainingDivergedException or Tdsm.StGcn.StGcnDivergedException)
        {
            // Bad input data, a file that cannot be read or written, or a diverged training run: say what and where,
            // without a stack trace.
            stderr.WriteLine($"{cmd.Name}: error: {e.Message}");
            return 1;
        }
    }

    private static void PrintUsage(TextWriter w)
    {
        w.WriteLine("tdsm — TDSM zero-shot skeleton action recognition (C#, no DL framework)");
        w.WriteLine();
        w.WriteLine("usage: dotnet run --project src/Trainer -c Release -- <command> [options]");
        w.WriteLine();
        w.WriteLine("commands:");
        foreach (var c in Commands) w.WriteLine($"  {c.Name,-18} {c.Summary}");
        w.WriteLine();
        w.WriteLine("'<command> --help' explains each command's options.");
    }
}

/// <summary>A bad command line (unknown option, missing value); reported with the usage hint.</summary>
public sealed class CommandLineException(string message) : Exception(message);

/// <summary>Minimal "--name value" / "--flag" parser; every option must be consumed, so typos are reported.</summary>
public sealed class CommandArgs
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly string _command;

    public CommandArgs(string command, string[] args)
    {
        _command = command;
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal)) throw new CommandLineException($"unexpected argument '{a}'");
            string? value = null;
            int eq = a.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0) { value = a[(eq + 1)..]; a = a[..eq]; }
            else if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) value = args[++i];
            // Given twice, one of the two would be dropped without a word (e.g. two --out folders).
            if (!_options.TryAdd(a, value)) throw new CommandLineException($"option {a} is given twice");
        }
    }

    public string? Get(string name)
    {
        _used.Add(name);
        if (!_options.TryGetValue(name, out var v)) return null;
        return v is null or "" ? throw new CommandLineException($"option {name} needs a value") : v;
    }

    public string Require(string name) => Get(name) ?? throw new CommandLineException($"missing required option {name}");

    /// <summary>A flag: given alone, or as true/false, yes/no, on/off, 1/0 (any other value is a usage error: a
    /// "--resume yes" read as off would silently start a run over).</summary>
    public bool Flag(string name)
    {
        _used.Add(name);
        if (!_options.TryGetValue(name, out var v)) return false;
        return v?.ToLowerInvariant() switch
        {
            null or "true" or "yes" or "on" or "1" => true,
            "false" or "no" or "off" or "0" => false,
            _ => throw new CommandLineException($"flag {name} takes no value (or true/false, yes/no), got '{v}'"),
        };
    }

    public int GetInt(string name, int fallback)
    {
        var s = Get(name);
        if (s is null) return fallback;
        return int.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v
            : throw new CommandLineException($"option {name} expects an integer, got '{s}'");
    }

    /// <summary>The option as an integer, or null when it is not given.</summary>
    public int? GetIntOrNull(string name) => Get(name) is null ? null : GetInt(name, 0);

    /// <summary>A seed option: a non-negative integer up to 2^64 - 1 (a negative or non-numeric value is a usage error).</summary>
    public ulong GetSeed(string name, ulong fallback)
    {
        var s = Get(name);
        if (s is null) return fallback;
        return ulong.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v
            : throw new CommandLineException($"option {name} expects a non-negative integer seed, got '{s}'");
    }

    /// <summary>A seed option for an <see cref="int"/>-seeded generator: 0 to 2^31 - 1.</summary>
    public int GetIntSeed(string name, int fallback)
    {
        ulong v = GetSeed(name, (ulong)fallback);
        return v <= int.MaxValue ? (int)v : throw new CommandLineException($"option {name} expects a seed from 0 to {int.MaxValue}, got {v}");
    }

    public double GetDouble(string name, double fallback)
    {
        var s = Get(name);
        if (s is null) return fallback;
        // Every numeric option is a finite quantity (a learning rate, a margin, a time limit, a noise level).
        return double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v
            : throw new CommandLineException($"option {name} expects a finite number, got '{s}'");
    }

    /// <summary>Call after reading every option: reports any option the command did not ask for.</summary>
    public void EnsureAllUsed()
    {
        var unknown = _options.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0) throw new CommandLineException($"unknown option{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown)} for '{_command}'");
    }
}
