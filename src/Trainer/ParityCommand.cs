namespace Tdsm.Trainer;

/// <summary>Placeholder wired in the next commit.</summary>
public sealed class ParityCommand : ICommand
{
    public string Name => "parity";
    public string Summary => "check the implementation against a golden fixture";
    public string Help => "usage: parity --fixture FILE [--backend reference|cpu|gpu]";
    public int Run(CommandArgs args, TextWriter stdout, TextWriter stderr)
    {
        stderr.WriteLine("parity: not implemented yet");
        return 2;
    }
}
