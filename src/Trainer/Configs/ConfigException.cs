namespace Tdsm.Trainer.Configs;

/// <summary>A bad run config: names the file, the line (1-based, 0 when not known) and what is wrong.</summary>
public sealed class ConfigException(string file, int line, string problem, Exception? inner = null)
    : Exception(line > 0 ? $"{file}:{line}: {problem}" : $"{file}: {problem}", inner)
{
    /// <summary>The config file (or preset name) at fault.</summary>
    public string File { get; } = file;

    /// <summary>1-based line, 0 when not tied to one.</summary>
    public int Line { get; } = line;

    /// <summary>The problem without the location.</summary>
    public string Problem { get; } = problem;
}
