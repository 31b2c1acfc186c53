using ExpertBridge.Cli.Arguments;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

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

    public static readonly CliOption<bool> AllowColocated = Option.Flag("--allow-colocated", "accept policy placements with two replicas of one expert on one device (policies that make them on purpose, like eplb, say so themselves)");

    /// <summary>The topology from --devices, --slots-per-device, --nodes and --expert-bytes.</summary>
    public static Topology Topology(ParsedArguments args) =>
        Core.Topology.Create(args.Get(Devices), args.Get(SlotsPerDevice), args.Get(Nodes, 1), args.Get(ExpertBytes, 0L));

    /// <summary>The policy options from every --option.</summary>
    public static PolicyOptions PolicyOptions(ParsedArguments args) =>
        args.Has(PolicyOption) ? new PolicyOptions(args.GetAll(PolicyOption), "--option") : Core.Policies.PolicyOptions.Empty;

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
