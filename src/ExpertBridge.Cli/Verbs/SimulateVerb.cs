using ExpertBridge.Cli.Arguments;
using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using ExpertBridge.Core.Latency;
using ExpertBridge.Core.Replay;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Verbs;

/// <summary>
/// <c>simulate</c>: replays a trace with each policy as <c>replay</c> does and prices every scored step with the
/// calibrated latency model (docs/latency-model.md): step latency, p99 and throughput per policy, with trivial and
/// the BestEP bound. Can export the per-slot workload the real GPU benchmark runs (tests/gpu/moe-bench).
/// </summary>
internal sealed class SimulateVerb : Verb
{
    private static readonly CliOption<string> s_trace = Option.InputFile("--trace", "load trace [steps, layers, experts]: .npy or .json").AsRequired();
    private static readonly CliOption<string> s_model = Option.Text("--model", "NAME", "model preset: deepseek-v3 or small").WithDefault("deepseek-v3");
    private static readonly CliOption<string> s_policies = Option.Text("--policies", "A,B,C", "policies to compare (built-in names or .csx scripts), comma-separated; trivial is always included").AsRequired();
    private static readonly CliOption<string> s_table = Option.InputFile("--gemm-table", "expert GEMM table measured by tests/gpu/gemm-calibrate (default: H200 fp8, 2026-11-28)");
    private static readonly CliOption<double> s_nonMoe = Option.Double("--non-moe-ms", "MS", "non-MoE time per layer (attention, dense parts)", min: 0, max: 1000).WithDefault("the model's");
    private static readonly CliOption<double> s_intra = Option.Double("--intra-node-gbps", "GBPS", "one-way bandwidth per device inside a node", min: 0.001).WithDefault("397");
    private static readonly CliOption<double> s_inter = Option.Double("--inter-node-gbps", "GBPS", "one-way bandwidth per device across nodes", min: 0.001).WithDefault("50");
    private static readonly CliOption<ReplicaDispatch> s_dispatch = Option.Choice(
        "--dispatch",
        "how a replicated expert's tokens split over its replicas each step: even (equal shares, as EPLB plans and random replica choice gives) or balanced (per step, the split that minimises the busiest device's tokens, as LP dispatch does: DeepSeek's LPLB, SGLang's lp)",
        new Dictionary<string, ReplicaDispatch> { ["even"] = ReplicaDispatch.Even, ["balanced"] = ReplicaDispatch.Balanced })
        .WithDefault("even");
    private static readonly CliOption<string> s_json = Option.OutputFile("--json", "write the results as JSON to F ('-' for stdout instead of the table)", allowStdout: true);
    private static readonly CliOption<string> s_export = Option.OutputFile("--export-workload", "write the per-slot tokens of the first scored steps for tests/gpu/moe-bench");
    private static readonly CliOption<int> s_exportSteps = Option.Int("--export-steps", "N", "scored steps to export", min: 1, max: 100000).WithDefault("50");
    private static readonly CliOption<int> s_exportLayers = Option.Int("--export-layers", "N", "layers per exported step", min: 1, max: 10000).WithDefault("all");

    public override string Name => "simulate";

    public override string Summary => "replay policies and price every step with the calibrated latency model (ms, tokens/s, BestEP)";

    public override string Description =>
        "Replays the trace with each policy exactly as `replay` does, and turns every scored step into latency: per MoE "
        + "layer each device's expert compute (measured expert-FFN time for its tokens) plus dispatch and combine, the "
        + "layer waits for its slowest device, plus a per-layer non-MoE constant. Reports stepLatencyMeanMs, "
        + "stepLatencyP99Ms and throughputTokensPerS per policy, trivial always, and two references: eplbHindsight (EPLB "
        + "fitted on each step's own loads: what a placement of this topology reaches without prediction error), "
        + "balancedBound (the step's own routed load spread perfectly over the devices: no placement beats it) and BestEP "
        + "(uniform routing). --dispatch says how a replicated expert's tokens split over its replicas each step."
        + Environment.NewLine + Environment.NewLine
        + "JSON: {\"dispatch\", \"policies\": [{\"policy\", \"stepLatencyMeanMs\", \"stepLatencyP99Ms\", \"throughputTokensPerS\", ...}], \"eplbHindsight\": {...}, \"balancedBound\": {...}, \"bestEp\": {...}}.";

    public override string Example => "expertbridge simulate --trace decode.npy --model deepseek-v3 --devices 32 --slots-per-device 9 --nodes 4 --groups 8 --policies eplb,policies/omniplacement.csx --window 100 --interval 100 --json sim.json";

    public override IReadOnlyList<CliOption> Options { get; } =
    [
        s_trace, s_model, s_policies,
        SharedOptions.Devices.AsRequired(), SharedOptions.SlotsPerDevice.AsRequired(), SharedOptions.Nodes, SharedOptions.Groups,
        SharedOptions.Window, SharedOptions.Interval, s_dispatch, s_table, s_nonMoe, s_intra, s_inter, SharedOptions.PolicyOption, SharedOptions.PolicyTimeout, SharedOptions.AllowColocated,
        s_json, s_export, s_exportSteps, s_exportLayers,
    ];

    public override int Execute(ParsedArguments args, CliContext context)
    {
        var model = MoeModel.FromName(args.Get(s_model, "deepseek-v3"));
        if (args.TryGet(s_nonMoe, out var nonMoe))
        {
            model = model with { NonMoeMillisPerLayer = nonMoe };
        }

        var topology = SharedOptions.Topology(args).WithExpertBytes(model.ExpertBytes);
        var table = args.TryGet(s_table, out var tablePath) ? GemmTable.Load(tablePath) : GemmTable.Default;
        var interconnect = new Interconnect(args.Get(s_intra, 397.0), args.Get(s_inter, 50.0));
        var dispatch = args.Get(s_dispatch, ReplicaDispatch.Even);
        var names = ParsePolicyList(args.Get(s_policies));
        var policyOptions = context.PolicyOptions;
        using var resolved = ResolvedPolicies.Resolve(context.Policies, names, policyOptions);
        var policies = resolved.Policies;
        var trace = LoadFiles.Read(args.Get(s_trace));
        var exportSteps = args.Has(s_export) ? args.Get(s_exportSteps, 50) : 0;
        var exportLayers = Math.Min(trace.Layers, args.Get(s_exportLayers, trace.Layers));

        var results = new List<PolicyLatency>();
        var workloads = new List<(string, IReadOnlyList<int[]>)>();
        LatencyReferences? references = null;
        var replayOptions = SharedOptions.ReplayOptions(args, trace, policyOptions);
        foreach (var policy in policies)
        {
            // The first replay (trivial) also prices the references: BestEP, the balanced-load bound, EPLB in hindsight.
            var groups = references is null ? replayOptions.ExpertGroups : 0;
            var observer = new LatencyObserver(new LatencyModel(model, table, interconnect, dispatch), exportSteps, exportLayers, groups);
            var options = replayOptions with { Observer = observer };
            using var progress = context.StartProgress($"simulate {policy.Name}");
            var replay = ReplayEngine.Run(trace, topology, policy, options, progress, context.Cancellation);
            results.Add(observer.Result(policy.Name, replay));
            references ??= observer.References();
            workloads.Add((policy.Name, observer.WorkloadTokens));
        }

        if (args.TryGet(s_export, out var exportPath))
        {
            using var writer = new StreamWriter(exportPath);
            var computeOnly = new LatencyModel(model with { NonMoeMillisPerLayer = 0 }, table, interconnect, dispatch);
            MoeWorkload.Write(writer, topology, exportLayers, model, computeOnly, workloads);
        }

        var json = ToJson(results, references!, model, table, topology, dispatch);
        if (args.TryGet(s_json, out var jsonPath))
        {
            JsonOutput.Write(jsonPath, json, context.Stdout);
            if (jsonPath == "-")
            {
                return Cli.Ok;
            }
        }

        context.Stdout.WriteLine($"trace: {trace.Steps} steps x {trace.Layers} layers x {trace.Experts} experts; {topology}; model {model.Name}; GEMM table {table}; {dispatch.ToString().ToLowerInvariant()} replica dispatch");
        WriteTable(results, references!, context.Stdout);
        return Cli.Ok;
    }

    /// <summary>The --policies list with trivial first (the baseline every row is compared with).</summary>
    internal static IReadOnlyList<string> ParsePolicyList(string raw)
    {
        var names = SharedOptions.PolicyList("--policies", raw).ToList();
        names.RemoveAll(n => n.Equals("trivial", StringComparison.OrdinalIgnoreCase));
        names.Insert(0, "trivial");
        return names;
    }

    internal static JObject ToJson(IReadOnlyList<PolicyLatency> results, LatencyReferences references, MoeModel model, GemmTable table, Topology topology, ReplicaDispatch dispatch) => new()
    {
        ["model"] = model.Name,
        ["dispatch"] = dispatch.ToString().ToLowerInvariant(),
        ["gemmTable"] = table.ToString(),
        ["devices"] = topology.Devices,
        ["slotsPerDevice"] = topology.SlotsPerDevice,
        ["nodes"] = topology.Nodes,
        ["policies"] = new JArray(results.Select(ToJson)),
        ["bestEp"] = ToJson(references.BestEp),
        ["eplbHindsight"] = ToJson(references.Hindsight),
        ["balancedBound"] = ToJson(references.BalancedBound),
    };

    private static JObject ToJson(PolicyLatency r)
    {
        var o = new JObject
        {
            ["policy"] = r.Policy,
            ["stepLatencyMeanMs"] = r.StepLatencyMeanMs,
            ["stepLatencyP99Ms"] = r.StepLatencyP99Ms,
            ["throughputTokensPerS"] = r.ThroughputTokensPerS,
            ["computeMsMean"] = r.ComputeMsMean,
            ["commMsMean"] = r.CommMsMean,
        };
        if (r.Replay is { } replay)
        {
            o["imbalanceMean"] = replay.ImbalanceMean;
            o["rebalances"] = replay.Rebalances;
            o["expertsMoved"] = replay.ExpertsMoved;
        }

        return o;
    }

    private static void WriteTable(List<PolicyLatency> results, LatencyReferences references, TextWriter output)
    {
        var bestEp = references.BestEp;
        var trivial = results[0].StepLatencyMeanMs;
        var table = new TextTable("policy", "step ms", "p99 ms", "tokens/s", "vs trivial", "vs BestEP", "imbalance", "experts moved");
        foreach (var r in results.Append(references.Hindsight).Append(references.BalancedBound).Append(bestEp))
        {
            table.Add(
                r.Policy,
                Fmt.Num(r.StepLatencyMeanMs),
                Fmt.Num(r.StepLatencyP99Ms),
                Fmt.Num(r.ThroughputTokensPerS, "0"),
                Percent(r.StepLatencyMeanMs, trivial),
                Percent(r.StepLatencyMeanMs, bestEp.StepLatencyMeanMs),
                r.Replay is null ? "-" : Fmt.Num(r.Replay.ImbalanceMean),
                r.Replay is null ? "-" : Fmt.Int(r.Replay.ExpertsMoved));
        }

        table.WriteTo(output);
    }

    private static string Percent(double value, double baseline) =>
        baseline > 0 ? $"{(value / baseline - 1) * 100:+0.0;-0.0;0.0}%" : "-";
}
