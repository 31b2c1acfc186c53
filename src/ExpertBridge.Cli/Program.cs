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

        return Cli.Run(args, Console.Out, Console.Error, new CliServices { Cancellation = cancel.Token });
    }
}
