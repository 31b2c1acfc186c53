using System.Reflection;
using System.Text;
using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Cli.Verbs;
using ExpertBridge.Core;
using ExpertBridge.Scripting;

namespace ExpertBridge.Cli;

/// <summary>What the CLI runs with; tests swap pieces (the policy resolver, the script cache, progress).</summary>
internal sealed record CliServices
{
    /// <summary>The environment variable naming the policy directory (default <c>policies</c>, relative to the working directory).</summary>
    public const string PolicyDirectoryVariable = "EXPERTBRIDGE_POLICY_DIR";

    /// <summary>Resolves <c>--policy</c> values; null: built-ins and scripts, through <see cref="Scripting"/>.</summary>
    public IPolicyResolver? Policies { get; init; }

    /// <summary>
    /// How scripts are compiled (and cached), called and found: bare names are looked up as <c>NAME.csx</c> in
    /// <c>$EXPERTBRIDGE_POLICY_DIR</c>, else <c>policies</c>.
    /// </summary>
    public ScriptingOptions Scripting { get; init; } = new() { PolicyDirectory = DefaultPolicyDirectory() };

    /// <summary>Progress display; null chooses: a bar when stderr is the console and a terminal, else lines.</summary>
    public ProgressMode? Progress { get; init; }

    public CancellationToken Cancellation { get; init; }

    private static string DefaultPolicyDirectory() =>
        Environment.GetEnvironmentVariable(PolicyDirectoryVariable) is { Length: > 0 } dir ? dir : "policies";
}

/// <summary>
/// The <c>expertbridge</c> command line, runnable in process: parse, dispatch to a verb, and turn failures into
/// exit codes. 0 success; 2 a user mistake (one line on stderr: <c>expertbridge: subject: detail (rule: rule)</c>);
/// 1 an internal error (one line; the stack with <c>--verbose</c>); 130 cancelled.
/// </summary>
internal static class Cli
{
    public const int Ok = 0;
    public const int InternalError = 1;
    public const int UserError = 2;
    public const int Cancelled = 130;

    private const string Prefix = "expertbridge: ";

    private static readonly CliOption<bool> s_help = Option.Flag("--help", "show this help (also -h)");
    private static readonly CliOption<bool> s_verbose = Option.Flag("--verbose", "print the stack trace of internal errors");
    private static readonly CliOption<bool> s_quiet = Option.Flag("--quiet", "no progress output");

    /// <summary>Options every verb accepts.</summary>
    internal static IReadOnlyList<CliOption> CommonOptions { get; } = [s_help, s_verbose, s_quiet];

    /// <summary>Every verb, in help order.</summary>
    internal static IReadOnlyList<Verb> Verbs { get; } =
    [
        new PlaceVerb(),
        new EvaluateVerb(),
        new ReplayVerb("replay"),
        new ReplayVerb("compare"),
        new ReportVerb(),
        new TraceGenerateVerb(),
        new SimulateVerb(),
        new ServeVerb(),
        new PolicyCheckVerb(),
        new PolicyListVerb(),
        new ConformanceVerb(),
    ];

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, stdout, stderr, new CliServices());

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CliServices services)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        ArgumentNullException.ThrowIfNull(services);
        var verbose = args.Contains(s_verbose.Name);
        try
        {
            return Dispatch(args, stdout, stderr, services);
        }
        catch (InputException ex)
        {
            stderr.WriteLine(Prefix + OneLine(ex.Message));
            return UserError;
        }
        catch (OperationCanceledException) when (services.Cancellation.IsCancellationRequested)
        {
            stderr.WriteLine(Prefix + "cancelled");
            return Cancelled;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Files that vanish, full disks, permissions: the environment, not a bug; the message names the path.
            stderr.WriteLine(Prefix + OneLine($"{ex.Message} (rule: files can be read and written)"));
            return UserError;
        }
#pragma warning disable CA1031 // The CLI's last line of defence: every failure becomes one line and an exit code.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            stderr.WriteLine(Prefix + OneLine($"internal error: {ex.GetType().Name}: {ex.Message}") + (verbose ? "" : " (--verbose shows the stack trace)"));
            if (verbose)
            {
                stderr.WriteLine(ex.ToString());
            }

            return InternalError;
        }
    }

    private static int Dispatch(string[] args, TextWriter stdout, TextWriter stderr, CliServices services)
    {
        if (args.Length == 0)
        {
            WriteUsage(stderr);
            return UserError;
        }

        if (args[0] is "--help" or "-h" or "help")
        {
            WriteUsage(stdout);
            return Ok;
        }

        if (args[0] == "--version")
        {
            stdout.WriteLine(typeof(Cli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown");
            return Ok;
        }

        var (verb, words) = FindVerb(args);
        var rest = args.Skip(words).ToArray();
        if (rest.Contains("--help") || rest.Contains("-h"))
        {
            WriteHelp(verb, stdout);
            return Ok;
        }

        var parsed = ArgumentParser.Parse(verb.Name, [.. verb.Options, .. CommonOptions], rest);
        var progress = parsed.Has(s_quiet) ? ProgressMode.None
            : services.Progress ?? (ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected ? ProgressMode.Bar : ProgressMode.Lines);
        var scripting = parsed.Has(SharedOptions.PolicyTimeout)
            ? services.Scripting with { DecisionTimeout = TimeSpan.FromMilliseconds(parsed.Get(SharedOptions.PolicyTimeout)) }
            : services.Scripting;
        var policies = services.Policies ?? new ScriptPolicyResolver(scripting);
        var context = new CliContext(stdout, stderr, policies, scripting, SharedOptions.PolicyOptions(parsed), progress, services.Cancellation);
        var code = verb.Execute(parsed, context);
        SharedOptions.WarnUnread(context.PolicyOptions, context);
        return code;
    }

    /// <summary>The verb named by the first one or two words.</summary>
    private static (Verb Verb, int Words) FindVerb(string[] args)
    {
        foreach (var verb in Verbs.OrderByDescending(v => v.Name.Length))
        {
            var words = verb.Name.Split(' ');
            if (args.Length >= words.Length && words.AsSpan().SequenceEqual(args.AsSpan(0, words.Length)))
            {
                return (verb, words.Length);
            }
        }

        var group = Verbs.Where(v => v.Name.StartsWith(args[0] + " ", StringComparison.Ordinal)).Select(v => v.Name).ToArray();
        if (group.Length > 0)
        {
            var given = args.Length > 1 ? $"unknown subcommand '{args[1]}'" : "missing subcommand";
            throw new InputException(args[0], $"one of: {string.Join(", ", group)}", given);
        }

        throw new InputException(args[0], "a verb: " + string.Join(", ", Verbs.Select(v => v.Name)), "unknown verb; see expertbridge --help");
    }

    private static void WriteUsage(TextWriter output)
    {
        output.WriteLine("expertbridge: place and evaluate Mixture-of-Experts expert placements, replay traces against policies,");
        output.WriteLine("check policy scripts, write reports, and check accelerator backends.");
        output.WriteLine();
        output.WriteLine("usage: expertbridge <verb> [options]        help for one verb: expertbridge <verb> --help");
        output.WriteLine();
        output.WriteLine("verbs:");
        var width = Verbs.Max(v => v.Name.Length);
        foreach (var verb in Verbs)
        {
            output.WriteLine($"  {verb.Name.PadRight(width)}  {verb.Summary}");
        }

        output.WriteLine();
        output.WriteLine("every verb also takes --help, --verbose (stack traces of internal errors) and --quiet (no progress).");
        output.WriteLine("exit codes: 0 success, 1 internal error, 2 input error (one line on stderr naming the input and the rule), 130 cancelled.");
    }

    private static void WriteHelp(Verb verb, TextWriter output)
    {
        var options = verb.Options.Concat(CommonOptions).ToArray();
        var usage = new StringBuilder($"usage: expertbridge {verb.Name}");
        foreach (var o in verb.Options.Where(o => o.Required))
        {
            usage.Append(o.Positional ? $" {o.ValueName}{(o.Repeatable ? "..." : "")}" : $" {o.Name} {o.ValueName}");
        }

        usage.Append(" [options]");
        output.WriteLine(usage.ToString());
        output.WriteLine();
        output.WriteLine(verb.Description);
        output.WriteLine();
        output.WriteLine("options:");
        var width = options.Max(o => o.Name.Length + (o.ValueName is null ? 0 : o.ValueName.Length + 1));
        foreach (var o in options)
        {
            var head = o.ValueName is null ? o.Name : $"{o.Name} {o.ValueName}";
            var notes = new List<string>();
            if (o.Required)
            {
                notes.Add("required");
            }

            if (o.Repeatable)
            {
                notes.Add("repeatable");
            }

            if (o.DefaultText is not null)
            {
                notes.Add($"default {o.DefaultText}");
            }

            var suffix = notes.Count > 0 ? $" ({string.Join(", ", notes)})" : "";
            output.WriteLine($"  {head.PadRight(width)}  {o.Help}{suffix}");
        }

        output.WriteLine();
        output.WriteLine("example:");
        output.WriteLine($"  {verb.Example}");
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");
}
