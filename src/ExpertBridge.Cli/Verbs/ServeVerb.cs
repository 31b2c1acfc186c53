using ExpertBridge.Cli.Arguments;
using ExpertBridge.Host;

namespace ExpertBridge.Cli.Verbs;

/// <summary><c>serve</c>: the bridge host as a daemon beside a server (docs/host.md, "Daemon mode").</summary>
internal sealed class ServeVerb : Verb
{
    private static readonly CliOption<string> s_config = Option.InputFile("--config", "the bridge's JSON config (docs/host.md); backend must be 'none'").AsRequired();

    public override string Name => "serve";

    public override string Summary => "run the bridge host as a daemon: JSON lines on stdin/stdout, metrics on a loopback port";

    public override string Description =>
        "Runs the bridge beside an inference server that does not embed it: the server writes one JSON request per line "
        + "on stdin (step, boundary, mapping, rebalance, reload, stats) and reads one reply per line on stdout; the policy "
        + "is hot-reloaded and Prometheus metrics are served on metrics.port. The daemon cannot reach the server's memory, "
        + "so it runs with backend 'none': the server moves the weights of the layers a boundary reports. Servers that "
        + "should have the bridge move weights embed it through the C ABI (docs/c-abi.md). Ends at the end of stdin.";

    public override string Example => "expertbridge serve --config bridge.json < requests.jsonl";

    public override IReadOnlyList<CliOption> Options { get; } = [s_config];

    public override int Execute(ParsedArguments args, CliContext context) =>
        HostDaemon.Run(args.Get(s_config), Console.In, context.Stdout, cancellation: context.Cancellation);
}
