using ExpertBridge.Scripting;

namespace ExpertBridge.Cli;

/// <summary>Entry point: runs <see cref="Cli"/> on the console; Ctrl+C cancels the running verb.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        // Before any work: a restart compiles ahead, on spare cores, what this build's last start jitted (Roslyn's
        // generic code above all); see JitStartupProfile.
        JitStartupProfile.Start("cli", typeof(Program).Assembly);
        return Cli.Run(args, Console.Out, Console.Error, new CliServices { Cancellation = cancel.Token });
    }
}
