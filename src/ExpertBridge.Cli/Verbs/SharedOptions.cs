using ExpertBridge.Cli.Arguments;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;

namespace ExpertBridge.Cli.Verbs;

/// <summary>Options several verbs share, declared once so names, ranges and help agree everywhere.</summary>
internal static class SharedOptions
{
    public static readonly CliOption<int> Devices = Option.Int("--devices", "P", "devices (expert-parallel ranks)", min: 1);

    public static readonly CliOption<int> SlotsPerDevice = Option.Int("--slots-per-device", "S", "expert slots on each device", min: 1);

    public static readonly CliOption<int> Nodes = Option.Int("--nodes", "N", "nodes; devices split evenly over them", min: 1);

    public static readonly CliOption<int> Groups = Option.Int("--groups", "G", "expert groups of the model (DeepSeek-V3: 8); experts must divide evenly", min: 1);

    public static readonly CliOption<long> ExpertBytes = Option.Long("--expert-bytes", "B", "bytes of one expert's weights, for bytes moved", min: 0);

    public static readonly CliOption<KeyValuePair<string, string>> PolicyOption = Option.KeyValue("--option", "policy option passed to every policy, e.g. keep-slots=true").AsRepeatable();

    public static readonly CliOption<int> PolicyTimeout = Option.Int("--policy-timeout-ms", "MS", "time limit of one decision of a policy script; an offline run stops at a decision over it", min: 1, max: 3_600_000).WithDefault("2000");

    public static readonly CliOption<int> Window = Option.Int("--window", "W", "steps of history the policy sees; steps from W on are scored", min: 1).WithDefault("100");

    public static readonly CliOption<int> Interval = Option.Int("--interval", "I", "steps between decisions (at W, W+I, W+2I, ...)", min: 1).WithDefault("the window");

    public static readonly CliOption<bool> AllowColocated = Option.Flag("--allow-colocated", "accept policy placements with two replicas of one expert on one device (policies that make them on purpose, like eplb, say so themselves)");

    /// <summary>What a replay of several policies needs besides the trace and the policies (replay, compare, report).</summary>
    public static IReadOnlyList<CliOption> ReplaySet { get; } =
    [
        Devices.AsRequired(), SlotsPerDevice.AsRequired(), Nodes, Groups, Window, Interval, ExpertBytes, PolicyOption, PolicyTimeout, AllowColocated,
    ];

    /// <summary>The topology from --devices, --slots-per-device, --nodes and --expert-bytes.</summary>
    public static Topology Topology(ParsedArguments args) =>
        Core.Topology.Create(args.Get(Devices), args.Get(SlotsPerDevice), args.Get(Nodes, 1), args.Get(ExpertBytes, 0L));

    /// <summary>The policy options from every --option.</summary>
    public static PolicyOptions PolicyOptions(ParsedArguments args) =>
        args.Has(PolicyOption) ? new PolicyOptions(args.GetAll(PolicyOption), "--option") : Core.Policies.PolicyOptions.Empty;

    /// <summary>
    /// After the verb (called once, by the CLI's dispatch): one warning on stderr per --option key that no policy read
    /// (a misspelt knob, or one no policy of this run has), instead of silently running with the default. Not an
    /// error: one --option list goes to every policy of a comparison, and a key may be meant for only some of them.
    /// </summary>
    public static void WarnUnread(PolicyOptions options, CliContext context)
    {
        foreach (var key in options.Unread)
        {
            context.Stderr.WriteLine($"expertbridge: warning: --option {key}={options.Values[key]}: no policy of this run read it, so it had no effect (check the spelling against the policy's knobs: a script lists them in its header comment)");
        }
    }

    /// <summary>A comma-separated policy list (<c>--policies a,b.csx</c>): trimmed, empties and repeats dropped, at least one.</summary>
    public static IReadOnlyList<string> PolicyList(string option, string raw)
    {
        var names = raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToArray();
        return names.Length > 0 ? names : throw new InputException(option, "at least one policy name", "the list is empty");
    }

    /// <summary>The replay cadence and rules from --window, --interval, --groups and --allow-colocated.</summary>
    public static ReplayOptions ReplayOptions(ParsedArguments args, LoadTrace trace, PolicyOptions policyOptions)
    {
        var window = args.Get(Window, 100);
        return new ReplayOptions
        {
            Window = window,
            Interval = args.Get(Interval, window),
            ExpertGroups = ExpertGroups(args, trace.Experts),
            PolicyOptions = policyOptions,
            AllowColocatedReplicas = args.Has(AllowColocated),
        };
    }

    /// <summary>--groups, checked against the model's experts.</summary>
    public static int ExpertGroups(ParsedArguments args, int experts)
    {
        var groups = args.Get(Groups, 1);
        if (experts % groups != 0)
        {
            throw new InputException("--groups", "experts divisible by groups", $"{experts} experts do not split into {groups} groups");
        }

        return groups;
    }
}
