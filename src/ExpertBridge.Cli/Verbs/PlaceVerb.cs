using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Verbs;

/// <summary><c>place</c>: run a policy once on a load and write the placement it returns.</summary>
internal sealed class PlaceVerb : Verb
{
    private static readonly CliOption<string> s_policy = Option.Text("--policy", "NAME", "policy: a built-in name or a .csx script").AsRequired();
    private static readonly CliOption<string> s_load = Option.InputFile("--load", "load: [layers, experts] or [steps, layers, experts], .npy or .json").AsRequired();
    private static readonly CliOption<string> s_previous = Option.InputFile("--previous", "the placement in force (any placement format); default: trivial");
    private static readonly CliOption<string> s_out = Option.OutputFile("--out", "where to write the placement").AsRequired();

    private static readonly Dictionary<string, PlacementFormat> s_formats = new(StringComparer.OrdinalIgnoreCase)
    {
        ["native"] = PlacementFormat.Native,
        ["sglang"] = PlacementFormat.Sglang,
        ["trtllm"] = PlacementFormat.TrtLlm,
        ["omni"] = PlacementFormat.Omni,
    };

    private static readonly CliOption<PlacementFormat> s_format = Option.Choice("--format", "placement file format", s_formats).WithDefault("native");

    private static readonly CliOption<int> s_repeat = Option.Int("--repeat", "K", "time the policy: one warm-up run, then K timed runs", min: 1, max: 100_000);
    private static readonly CliOption<string> s_stats = Option.OutputFile("--stats", "write JSON: policyMillisMedian and the placement's metrics ('-' for stdout)", allowStdout: true);

    public override string Name => "place";

    public override string Summary => "run a policy once on a load and write the placement it returns";

    public override string Description =>
        "Runs a policy on a load (all its steps are the history) with the placement in force (--previous, or trivial), "
        + "validates what it returns, writes it in the chosen format, and prints its balance on the load against the "
        + "placement in force. A policy that keeps the current placement writes that one.";

    public override string Example => "expertbridge place --policy eplb --load load.npy --devices 8 --slots-per-device 5 --nodes 2 --groups 4 --out placement.json --repeat 20 --stats stats.json";

    public override IReadOnlyList<CliOption> Options { get; } =
    [
        s_policy, s_load,
        SharedOptions.Devices.AsRequired(), SharedOptions.SlotsPerDevice.AsRequired(), SharedOptions.Nodes, SharedOptions.Groups,
        s_previous, s_out, s_format, s_repeat, s_stats, SharedOptions.ExpertBytes, SharedOptions.PolicyOption, SharedOptions.PolicyTimeout, SharedOptions.AllowColocated,
    ];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        var topology = SharedOptions.Topology(args);
        var policyOptions = context.PolicyOptions;
        using var resolved = ResolvedPolicies.Resolve(context.Policies, [args.Get(s_policy)], policyOptions);
        var policy = resolved.Policies[0];
        var trace = LoadFiles.Read(args.Get(s_load));
        var groups = SharedOptions.ExpertGroups(args, trace.Experts);
        var allowColocated = args.Has(SharedOptions.AllowColocated);
        var current = args.TryGet(s_previous, out var previousPath)
            ? ReadPrevious(previousPath, topology, trace)
            : TrivialPolicy.Build(topology, trace.Layers, trace.Experts);

        var history = new LoadHistory(trace.Layers, trace.Experts, trace.Steps);
        for (var t = 0; t < trace.Steps; t++)
        {
            history.Record(trace.GetStep(t));
        }

        var policyContext = new PolicyContext(topology, history, current, policyOptions, groups, step: trace.Steps, cancellation: context.Cancellation);
        var repeat = args.Get(s_repeat, 1);
        if (args.Has(s_repeat))
        {
            PolicyInvocation.Decide(policy, policyContext, out _);
        }

        // Policies are pure functions of the context: every run returns the same decision; keep the last.
        var millis = new double[repeat];
        var decision = PolicyInvocation.Decide(policy, policyContext, out millis[0]);
        for (var i = 1; i < repeat; i++)
        {
            decision = PolicyInvocation.Decide(policy, policyContext, out millis[i]);
        }

        PolicyInvocation.EnsureValid(policy, policyContext, decision, allowColocated);
        var placed = decision.Placement ?? current;

        var outPath = args.Get(s_out);
        var format = args.Get(s_format, PlacementFormat.Native);
        PlacementFiles.Write(outPath, placed, format);

        var load = trace.Sum();
        var before = PlacementMetrics.Evaluate(current, load);
        var after = PlacementMetrics.Evaluate(placed, load);
        var diff = PlacementDiff.Compute(current, placed);
        var median = SampleStatistics.Median(millis);

        var output = context.Stdout;
        output.WriteLine($"{policy.Name}: {(decision.IsKeep ? "kept the placement in force" : "new placement")} ({decision.Reason}); {trace.Layers} layers x {trace.Experts} experts on {topology}");
        MetricsOutput.WriteSummaryTable(output, (previousPath is null ? "trivial (in force)" : "in force", before), (policy.Name, after));
        output.WriteLine($"experts moved: {Fmt.Int(diff.ExpertsMoved)} ({Fmt.Bytes(diff.BytesMoved)}); policy time {Fmt.Num(median, "0.000")} ms{(repeat > 1 ? $" median of {repeat} runs" : "")}");
        output.WriteLine($"wrote {outPath} ({s_formats.First(f => f.Value == format).Key} format)");

        if (args.TryGet(s_stats, out var statsPath))
        {
            var stats = new JObject
            {
                ["policy"] = policy.Name,
                ["repeat"] = repeat,
                ["policyMillisMedian"] = median,
                ["policyMillisMin"] = millis.Min(),
                ["layers"] = placed.Layers,
                ["logicalExperts"] = placed.LogicalExperts,
                ["devices"] = topology.Devices,
                ["slotsPerDevice"] = topology.SlotsPerDevice,
                ["nodes"] = topology.Nodes,
                ["kept"] = decision.IsKeep,
                ["expertsMoved"] = diff.ExpertsMoved,
                ["bytesMoved"] = diff.BytesMoved,
            };
            MetricsOutput.AddSummary(stats, after);
            JsonOutput.Write(statsPath, stats, output);
        }

        return Cli.Ok;
    }

    private static Placement ReadPrevious(string path, Topology topology, LoadTrace trace)
    {
        var previous = PlacementFiles.Read(path, topology, trace.Experts);
        PlacementValidator.EnsureShape(previous, topology, trace.Layers, trace.Experts, path);

        // A placement in force may hold co-located replicas (EPLB writes them; the engines accept them).
        PlacementValidator.EnsureValid(previous, path, allowColocatedReplicas: true);

        // Keep the caller's topology (nodes, expert bytes): the file may not carry them.
        return new Placement(topology, previous.LogicalExperts, previous.CopyPhy2Log(), path);
    }
}
