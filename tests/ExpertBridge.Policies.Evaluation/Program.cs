using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;
using ExpertBridge.Core.Traces;
using ExpertBridge.Scripting;

// Evaluation harness for the OmniPlacement scripts on the shared trace suite (see docs/policy-evaluation.md).
//   pareto  [--cases=drifting,...] [--cadences=300:300,100:100,50:25] [--layers=N] [key=value ...]
//   static  [--cases=...] [--window=N] [key=value ...]
//   speed   [--cases=drifting] [--cadences=...] [--layers=N] [--verbose] [key=value ...]
// The policies are the real scripts (policies/NAME.csx, compiled by the scripting host): --script=NAME picks the
// OmniPlacement variant (default omniplacement); key=value pairs override its header options.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var mode = args.Length > 0 ? args[0] : "pareto";
string? Flag(string name) => args.FirstOrDefault(a => a.StartsWith($"--{name}=", StringComparison.Ordinal))?[(name.Length + 3)..];
var overrides = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal) && a.Contains('=', StringComparison.Ordinal))
    .Select(a => a.Split('=', 2)).Select(p => new KeyValuePair<string, string>(p[0], p[1])).ToList();
var layers = Flag("layers") is { } l ? int.Parse(l, CultureInfo.InvariantCulture) : 0;
var cases = (Flag("cases") ?? (mode == "static" ? string.Join(',', TraceSuite.All.Select(c => c.Name)) : "drifting")).Split(',').Select(TraceSuite.Get).ToList();
var cadences = (Flag("cadences") ?? "300:300,100:100,50:25").Split(',').Select(c => c.Split(':'))
    .Select(c => (Window: int.Parse(c[0], CultureInfo.InvariantCulture), Interval: int.Parse(c[1], CultureInfo.InvariantCulture))).ToArray();

var policyDirectory = Path.GetFullPath(Flag("policies") ?? Path.Combine(AppContext.BaseDirectory, "../../../../../policies"));
PolicyHost Open(string name, params (string Key, string Value)[] extra) => PolicyResolver.Open(Path.Combine(policyDirectory, name + ".csx"), new ScriptingOptions
{
    Options = new PolicyOptions([.. extra.Select(p => new KeyValuePair<string, string>(p.Key, p.Value)), .. overrides], "command line"),
    DecisionTimeout = TimeSpan.FromMinutes(5),
    PolicyDirectory = policyDirectory,
});

var script = Flag("script") ?? (mode == "static" ? "omniplacement-static" : "omniplacement");

(LoadTrace Trace, TraceCase Case) Load(TraceCase c)
{
    var options = layers > 0 ? c.Options with { Layers = Math.Min(layers, c.Options.Layers) } : c.Options;
    return (TraceGenerator.Generate(options), c);
}

if (mode == "debug")
{
    DebugRun.Run();
    return 0;
}

switch (mode)
{
    case "pareto":
        foreach (var (trace, c) in cases.Select(Load))
        {
            foreach (var (w, i) in cadences)
            {
                var replay = new ReplayOptions { Window = w, Interval = i, ExpertGroups = c.Groups };
                var eplb = ReplayEngine.Run(trace, c.Topology, BuiltInPolicies.TryCreate("eplb")!, replay);
                using var host = Open(script);
                var omni = ReplayEngine.Run(trace, c.Topology, host, replay);
                var share = (double)omni.ExpertsMoved / eplb.ExpertsMoved;
                var met = omni.ImbalanceMean <= eplb.ImbalanceMean && share <= 0.25;
                Console.WriteLine($"{c.Name,-16} ({w},{i}) eplb imbalance {eplb.ImbalanceMean:F4} moves {eplb.ExpertsMoved,7} | omni imbalance {omni.ImbalanceMean:F4} moves {omni.ExpertsMoved,6} ({share:P1}) {(met ? "MET" : "not met")} | omni ms median {omni.PolicyMillisMedian:F1}");
            }
        }

        break;
    case "static":
        {
            double omniSum = 0, eplbSum = 0;
            var worse = 0;
            foreach (var (trace, c) in cases.Select(Load))
            {
                var window = Flag("window") is { } ws ? int.Parse(ws, CultureInfo.InvariantCulture) : trace.Steps;
                var history = new LoadHistory(trace.Layers, trace.Experts, window);
                for (var s = trace.Steps - window; s < trace.Steps; s++)
                {
                    history.Record(trace.GetStep(s));
                }

                var load = history.WindowSum(window);
                var current = TrivialPolicy.Build(c.Topology, trace.Layers, trace.Experts);
                var context = new PolicyContext(c.Topology, history, current, null, c.Groups);
                using var host = Open(script);
                var omni = host.Decide(context).Placement!;
                var eplb = BuiltInPolicies.TryCreate("eplb")!.Decide(context).Placement!;
                double o = 0, e = 0, b = 0;
                var worseHere = 0;
                for (var layer = 0; layer < trace.Layers; layer++)
                {
                    var lo = PlacementMetrics.Layer(omni, layer, load.Layer(layer));
                    var le = PlacementMetrics.Layer(eplb, layer, load.Layer(layer));
                    o += lo.MaxDeviceLoad;
                    e += le.MaxDeviceLoad;
                    b += lo.BestEp;
                    worseHere += lo.MaxDeviceLoad > le.MaxDeviceLoad * (1 + 1e-12) ? 1 : 0;
                }

                omniSum += o;
                eplbSum += e;
                worse += worseHere;
                Console.WriteLine($"{c.Name,-16} busiest device summed over layers: omni/BestEP {o / b:F4} eplb/BestEP {e / b:F4} omni/eplb {o / e:F4} ({(1 - (o / e)):P2} less), layers where omni is busier: {worseHere}");
            }

            Console.WriteLine($"{"all",-16} omni/eplb {omniSum / eplbSum:F4} ({(1 - (omniSum / eplbSum)):P2} less), layers where omni is busier: {worse}");
        }

        break;
    case "speed":
        foreach (var (trace, c) in cases.Select(Load))
        {
            foreach (var (w, i) in cadences)
            {
                var times = new List<double>();
                using var host = Open(script);
                var policy = new TimedPolicy(host, times, args.Contains("--verbose"));
                var result = ReplayEngine.Run(trace, c.Topology, policy, new ReplayOptions { Window = w, Interval = i, ExpertGroups = c.Groups });
                var first = times[0];
                times.Sort();
                Console.WriteLine($"{c.Name} ({w},{i}) {times.Count} decisions, process CPU ms: first {first:F1} median {times[times.Count / 2]:F2} p90 {times[(int)(times.Count * 0.9)]:F2} max {times[^1]:F2} | imbalance {result.ImbalanceMean:F4} moves {result.ExpertsMoved}");
            }
        }

        break;
    default:
        Console.Error.WriteLine($"unknown mode '{mode}' (pareto, static, speed)");
        return 2;
}

return 0;

/// <summary>
/// Wraps a policy and records each decision's process CPU time (the scripting host runs the call on a worker
/// thread; on a shared machine CPU time, unlike wall time, does not count the neighbours' share of the cores).
/// </summary>
internal sealed class TimedPolicy(IPlacementPolicy inner, List<double> times, bool verbose) : IPlacementPolicy
{
    public string Name => inner.Name;

    public PolicyDecision Decide(PolicyContext context)
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        var start = process.TotalProcessorTime;
        var decision = inner.Decide(context);
        process.Refresh();
        times.Add((process.TotalProcessorTime - start).TotalMilliseconds);
        if (verbose)
        {
            Console.WriteLine($"   step {context.Step}: {decision.Reason} [{times[^1]:F1} ms]");
        }

        return decision;
    }
}
