using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Verbs;

/// <summary>
/// <c>replay</c> (and its alias <c>compare</c>): the predictive replay of one or more policies on one trace, as a
/// table and optionally JSON (one object for one policy, <c>{"results": [...]}</c> for several).
/// </summary>
internal sealed class ReplayVerb : Verb
{
    private static readonly CliOption<string> s_trace = Option.InputFile("--trace", "load trace [steps, layers, experts]: .npy or .json").AsRequired();
    private static readonly CliOption<string> s_policy = Option.Text("--policy", "NAME", "policy to replay: a built-in name or a .csx script; repeat to compare").AsRequired().AsRepeatable();
    private static readonly CliOption<string> s_json = Option.OutputFile("--json", "write the results as JSON to F ('-' for stdout instead of the table)", allowStdout: true);

    private readonly string _name;

    public ReplayVerb(string name)
    {
        _name = name;
    }

    public override string Name => _name;

    public override string Summary => _name == "replay"
        ? "replay a trace: each policy rebalances every I steps from history, scored on the steps that follow"
        : "alias of replay (compare several --policy values on one trace)";

    public override string Description =>
        "Replays a trace the way a serving engine lives it. Every policy starts from the trivial placement; at steps "
        + "W, W+I, W+2I, ... it sees the W steps before that step and the placement in force, and returns a new "
        + "placement or keeps the current one. Every step from W on is scored with the placement in force at that step: "
        + "imbalance = busiest device load / mean device load per layer (a replicated expert's tokens split evenly). "
        + "Several --policy values give a comparison table."
        + Environment.NewLine + Environment.NewLine
        + "JSON fields: policy, steps, scoredSteps, rebalances (decisions that changed the placement), expertsMoved "
        + "((layer, slot) pairs whose expert changed, summed), bytesMoved, imbalanceMean (over scored steps and layers), "
        + "imbalanceP99, balancednessMean, policyMillisMedian.";

    public override string Example => $"expertbridge {_name} --trace trace.npy --policy trivial --policy eplb --devices 8 --slots-per-device 5 --window 100 --interval 50";

    public override IReadOnlyList<CliOption> Options { get; } =
    [s_trace, s_policy, .. SharedOptions.ReplaySet, s_json];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        var topology = SharedOptions.Topology(args);
        var policyOptions = context.PolicyOptions;

        // Resolve every policy before the (possibly long) replays, so a typo fails at once.
        using var resolved = ResolvedPolicies.Resolve(context.Policies, args.GetAll(s_policy), policyOptions);
        var policies = resolved.Policies;
        var trace = LoadFiles.Read(args.Get(s_trace));
        var options = SharedOptions.ReplayOptions(args, trace, policyOptions);
        var results = RunAll(trace, topology, policies, options, context);

        if (args.TryGet(s_json, out var json))
        {
            JsonOutput.Write(json, ToJson(results), context.Stdout);
            if (json == "-")
            {
                return Cli.Ok;
            }
        }

        context.Stdout.WriteLine($"trace: {trace.Steps} steps x {trace.Layers} layers x {trace.Experts} experts; {topology}; window {options.Window}, interval {options.Interval}");
        WriteTable(results, context.Stdout);
        return Cli.Ok;
    }

    /// <summary>Replays every policy in turn, with a progress display for each.</summary>
    internal static IReadOnlyList<ReplayResult> RunAll(LoadTrace trace, Topology topology, IReadOnlyList<IPlacementPolicy> policies, ReplayOptions options, CliContext context)
    {
        var results = new List<ReplayResult>(policies.Count);
        foreach (var policy in policies)
        {
            using var progress = context.StartProgress($"replay {policy.Name}");
            results.Add(ReplayEngine.Run(trace, topology, policy, options, progress, context.Cancellation));
        }

        return results;
    }

    /// <summary>The JSON of the issue: one object for one policy, <c>{"results": [...]}</c> for several.</summary>
    internal static JToken ToJson(IReadOnlyList<ReplayResult> results) =>
        results.Count == 1 ? ToJson(results[0]) : new JObject { ["results"] = new JArray(results.Select(ToJson)) };

    internal static JObject ToJson(ReplayResult r) => new()
    {
        ["policy"] = r.Policy,
        ["steps"] = r.Steps,
        ["scoredSteps"] = r.ScoredSteps,
        ["rebalances"] = r.Rebalances,
        ["expertsMoved"] = r.ExpertsMoved,
        ["bytesMoved"] = r.BytesMoved,
        ["imbalanceMean"] = r.ImbalanceMean,
        ["imbalanceP99"] = r.ImbalanceP99,
        ["balancednessMean"] = r.BalancednessMean,
        ["policyMillisMedian"] = r.PolicyMillisMedian,
    };

    internal static void WriteTable(IReadOnlyList<ReplayResult> results, TextWriter output)
    {
        var table = new TextTable("policy", "imbalance", "p99", "balancedness", "rebalances", "experts moved", "bytes moved", "policy ms");
        foreach (var r in results)
        {
            table.Add(r.Policy, Fmt.Num(r.ImbalanceMean), Fmt.Num(r.ImbalanceP99), Fmt.Num(r.BalancednessMean), Fmt.Int(r.Rebalances), Fmt.Int(r.ExpertsMoved), Fmt.Bytes(r.BytesMoved), Fmt.Num(r.PolicyMillisMedian, "0.00"));
        }

        table.WriteTo(output);
    }
}
