using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Output;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Verbs;

/// <summary><c>evaluate</c>: the balance of a placement on a load, per layer and in summary.</summary>
internal sealed class EvaluateVerb : Verb
{
    private static readonly CliOption<string> s_placement = Option.InputFile("--placement", "placement file (native, SGLang, TensorRT-LLM or omni format)").AsRequired();
    private static readonly CliOption<string> s_load = Option.InputFile("--load", "load: [layers, experts] or [steps, layers, experts] (summed), .npy or .json").AsRequired();
    private static readonly CliOption<string> s_json = Option.OutputFile("--json", "write the per-layer metrics and summary as JSON ('-' for stdout instead of the table)", allowStdout: true);

    public override string Name => "evaluate";

    public override string Summary => "per-layer balance of a placement on a load: busiest device, mean, imbalance, replicas";

    public override string Description =>
        "Scores a placement on a load (a trace's steps are summed). Device load splits a replicated expert's tokens "
        + "evenly over its replicas; imbalance = busiest device / mean device load; balancedness = mean / busiest; "
        + "BestEP = total / devices, the perfectly balanced bound. Formats without a topology (SGLang) need --devices "
        + "and --slots-per-device. The placement must give every expert a replica; co-located replicas are accepted.";

    public override string Example => "expertbridge evaluate --placement placement.json --load load.npy";

    public override IReadOnlyList<CliOption> Options { get; } =
    [
        s_placement, s_load, SharedOptions.Devices, SharedOptions.SlotsPerDevice, SharedOptions.Nodes, s_json,
    ];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        Topology? topology = null;
        if (args.Has(SharedOptions.Devices) || args.Has(SharedOptions.SlotsPerDevice))
        {
            var missing = args.Has(SharedOptions.Devices) ? SharedOptions.SlotsPerDevice : SharedOptions.Devices;
            if (!args.Has(missing))
            {
                throw new InputException(missing.Name, "--devices and --slots-per-device come together", "missing option");
            }

            topology = SharedOptions.Topology(args);
        }

        var loadPath = args.Get(s_load);
        var placementPath = args.Get(s_placement);
        var trace = LoadFiles.Read(loadPath);
        var placement = PlacementFiles.Read(placementPath, topology, trace.Experts);
        PlacementValidator.EnsureShape(placement, topology ?? placement.Topology, trace.Layers, trace.Experts, placementPath);

        // Placement files may hold co-located replicas (EPLB writes them; the engines accept them): only wasteful.
        PlacementValidator.EnsureValid(placement, placementPath, allowColocatedReplicas: true);

        var report = PlacementMetrics.Evaluate(placement, trace.Sum());
        if (args.TryGet(s_json, out var json))
        {
            var result = new JObject
            {
                ["placement"] = placementPath,
                ["load"] = loadPath,
                ["devices"] = placement.Topology.Devices,
                ["slotsPerDevice"] = placement.Topology.SlotsPerDevice,
                ["layers"] = MetricsOutput.Layers(report),
            };
            MetricsOutput.AddSummary(result, report);
            JsonOutput.Write(json, result, context.Stdout);
            if (json == "-")
            {
                return Cli.Ok;
            }
        }

        var output = context.Stdout;
        output.WriteLine($"{placementPath} on {loadPath}: {trace.Layers} layers x {trace.Experts} experts, {trace.Steps} step(s) summed; {placement.Topology}");
        var table = new TextTable("layer", "max device load", "mean (BestEP)", "imbalance", "balancedness", "replicas");
        foreach (var l in report.Layers)
        {
            table.Add(Fmt.Int(l.Layer), Fmt.Num(l.MaxDeviceLoad, "0.0"), Fmt.Num(l.MeanDeviceLoad, "0.0"), Fmt.Num(l.Imbalance), Fmt.Num(l.Balancedness), Fmt.Int(l.Replicas));
        }

        table.WriteTo(output);
        output.WriteLine();
        MetricsOutput.WriteSummaryTable(output, ("summary", report));
        return Cli.Ok;
    }
}
