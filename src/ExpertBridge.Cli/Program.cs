using ExpertBridge.Core;

namespace ExpertBridge.Cli;

/// <summary>Entry point: dispatches verbs; a user mistake is one line on stderr and exit code 2.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                Console.WriteLine("usage: expertbridge <place|evaluate|replay|trace generate> [options]");
                return args.Length == 0 ? 2 : 0;
            }

            throw new InputException(args[0], "a known verb", "unknown verb; see expertbridge --help");
        }
        catch (InputException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 2;
        }
    }
}
