using System.Diagnostics;
using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using ExpertBridge.Core.Latency;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;
using ExpertBridge.Core.Traces;
using ExpertBridge.Benchmarks;
using ExpertBridge.Scripting;

// Evaluation harness for the OmniPlacement scripts on the shared trace suite (docs/policy-evaluation.md).
//   pareto [--cases=drifting,...] [--cadences=300:300,100:100,50:25] [--layers=N] [--script=NAME] [--lib=1] [key=value ...]
//       replays EPLB (the built-in, raw), eplb.csx (keep-slots) and the script at each cadence; --lib=1 replays only
//       the library compiled in (with its defaults, omniplacement.csx's header values), for quick A/B of the library.
//   static [--cases=...] [--window=N] [--script=NAME] [key=value ...]
//       fits the script and EPLB on one window and scores both on that window, layer by layer.
//   cpu    [--cases=...] [--cadences=...] [--host=1 [--script=NAME]] [key=value ...]
//       thread CPU time of each decision of one policy instance over a replay, the library compiled in with its
//       defaults (which are omniplacement.csx's header values); key=value pairs override them. With --host=1 the
//       script itself, compiled and loaded by the scripting host as a host runs it (wall time per call, since the host
//       calls the policy on a worker thread: pin the process to one idle core). The runtime does not tier code in
//       collectible contexts: a script's methods are compiled fully optimised at their first call, whatever the
//       process's tiering settings, so --host=1 needs no DOTNET_TieredCompilation=0 to measure optimised code.
//   steady [--cases=...] [--repeat=N] [--only=steady|cold] [key=value ...]
//       thread CPU time of OmniPlacementBenchmarks' calls (a fresh instance per call, window 100): the rebalance at
//       step 500 from the policy's own placement of step 400 (steady) and the first one at step 100 (cold). The last
//       column fingerprints the placement in force and the one decided (SHA-256 of the slot table, 8 hex digits): a pure
//       speed change of the library must leave both unchanged.
//   hindsight --trace=FILE [--every=N] [--from=S] [--dispatch=even|balanced] [--script=NAME] [key=value ...]
//       prices, with the latency model (docs/latency-model.md; DeepSeek-V3, the default H200 table, 32 devices x 9
//       slots on 4 nodes, 8 groups), every N-th step from S on under placements fitted on that step's own loads: the
//       script (omniplacement-static by default) and EPLB, each in hindsight, against trivial, the balanced-load bound
//       and BestEP. What a placement could reach with no prediction error and no movement cost.
// The pareto and static modes run the real scripts (policies/NAME.csx) through the scripting host; key=value pairs
// override their header options. Build with -c Release.
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
var script = Flag("script") ?? (mode == "static" ? "omniplacement-static" : "omniplacement");

PolicyHost Open(string name, IEnumerable<KeyValuePair<string, string>> options) => PolicyResolver.Open(Path.Combine(policyDirectory, name + ".csx"), new ScriptingOptions
{
    Options = new PolicyOptions(options, "command line"),
    DecisionTimeout = TimeSpan.FromMinutes(5),
    PolicyDirectory = policyDirectory,
});

(LoadTrace Trace, TraceCase Case) Load(TraceCase c) =>
    (TraceGenerator.Generate(layers > 0 ? c.Options with { Layers = Math.Min(layers, c.Options.Layers) } : c.Options), c);

switch (mode)
{
    case "pareto":
        foreach (var (trace, c) in cases.Select(Load))
        {
            foreach (var (w, i) in cadences)
            {
                var replay = new ReplayOptions { Window = w, Interval = i, ExpertGroups = c.Groups };
                if (Flag("lib") is not null)
                {
                    var lib = ReplayEngine.Run(trace, c.Topology, new OmniPlacementPolicy(new PolicyOptions(overrides, "command line")), replay);
                    Console.WriteLine($"| {c.Name} | ({w}, {i}) | lib | {lib.ImbalanceMean:F4} | {lib.ExpertsMoved} |");
                    continue;
                }

                var eplb = ReplayEngine.Run(trace, c.Topology, BuiltInPolicies.TryCreate("eplb")!, replay);
                using var keepSlots = Open("eplb", []);
                var eplbKeep = ReplayEngine.Run(trace, c.Topology, keepSlots, replay);
                using var host = Open(script, overrides);
                var omni = ReplayEngine.Run(trace, c.Topology, host, replay);
                var share = (double)omni.ExpertsMoved / eplb.ExpertsMoved;
                var met = omni.ImbalanceMean <= eplb.ImbalanceMean && share <= 0.25;
                Console.WriteLine($"| {c.Name} | ({w}, {i}) | {eplb.ImbalanceMean:F4} | {eplb.ExpertsMoved} | {eplbKeep.ExpertsMoved} | {omni.ImbalanceMean:F4} | {omni.ExpertsMoved} | {share:P1} | {(met ? "met" : "**not met**")} |");
            }
        }

        break;
    case "static":
        {
            double omniSum = 0, eplbSum = 0, bestSum = 0;
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
                var context = new PolicyContext(c.Topology, history, TrivialPolicy.Build(c.Topology, trace.Layers, trace.Experts), null, c.Groups);
                using var host = Open(script, overrides);
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
                bestSum += b;
                worse += worseHere;
                Console.WriteLine($"| {c.Name} | {trace.Layers} | {e / b:F4} | {o / b:F4} | {1 - (o / e):P2} | {worseHere} |");
            }

            Console.WriteLine($"| all | | {eplbSum / bestSum:F4} | {omniSum / bestSum:F4} | {1 - (omniSum / eplbSum):P2} | {worse} |");
        }

        break;
    case "cpu":
        foreach (var (trace, c) in cases.Select(Load))
        {
            foreach (var (w, i) in cadences)
            {
                var times = new List<double>();
                var viaHost = Flag("host") == "1";
                using var host = viaHost ? Open(script, overrides) : null;
                IPlacementPolicy policy = host ?? (IPlacementPolicy)new OmniPlacementPolicy(new PolicyOptions(overrides, "command line"));
                Func<double> clock = viaHost ? () => Stopwatch.GetTimestamp() * 1000.0 / Stopwatch.Frequency : ThreadClock.Milliseconds;
                var current = TrivialPolicy.Build(c.Topology, trace.Layers, trace.Experts);
                var history = new LoadHistory(trace.Layers, trace.Experts, w);
                var recorded = 0;
                for (var step = w; step < trace.Steps; step += i)
                {
                    for (; recorded < step; recorded++)
                    {
                        history.Record(trace.GetStep(recorded));
                    }

                    var context = new PolicyContext(c.Topology, history, current, null, c.Groups, null, step);
                    var start = clock();
                    current = policy.Decide(context).Placement ?? current;
                    times.Add(clock() - start);
                }

                var later = times.Skip(1).Order().ToList();
                Console.WriteLine($"| {c.Name} | ({w}, {i}) | {times.Count} | {times[0]:F1} | {later[later.Count / 2]:F1} | {later[(int)(later.Count * 0.9)]:F1} | {later[^1]:F1} |");
            }
        }

        break;
    case "steady":
        foreach (var (trace, c) in cases.Select(Load))
        {
            var repeat = Flag("repeat") is { } rs ? int.Parse(rs, CultureInfo.InvariantCulture) : 15;
            var options = new PolicyOptions(overrides, "command line");
            var steady = OmniPlacementCases.Steady(c, trace, options);
            var cold = OmniPlacementCases.Cold(c, trace);
            foreach (var (name, context) in new[] { ("steady", steady), ("cold", cold) })
            {
                if (Flag("only") is { } only && only != name)
                {
                    continue;
                }

                var times = new List<double>();
                OmniPlacementReport? report = null;
                Placement? decided = null;
                for (var r = 0; r < repeat + 2; r++)
                {
                    var policy = new OmniPlacementPolicy(options);
                    var start = ThreadClock.Milliseconds();
                    decided = policy.Decide(context).Placement;
                    var elapsed = ThreadClock.Milliseconds() - start;
                    report = policy.LastReport;
                    if (r >= 2)
                    {
                        times.Add(elapsed);
                    }
                }

                times.Sort();
                Console.WriteLine($"| {c.Name} {name} | {times[times.Count / 2]:F2} | {times[0]:F2} | {report!.LayersTriggered} | {report.SlotWrites} | {report.PredictedImbalanceBefore:F4} -> {report.PredictedImbalanceAfter:F4} | {Fingerprint(context.Current)} -> {Fingerprint(decided ?? context.Current)} |");
            }
        }

        break;
    case "hindsight":
        {
            if (Flag("trace") is not { } tracePath)
            {
                Console.Error.WriteLine("hindsight needs --trace=FILE (a trace of `expertbridge trace generate`)");
                return 2;
            }

            var trace = LoadFiles.Read(tracePath);
            var every = Flag("every") is { } es ? int.Parse(es, CultureInfo.InvariantCulture) : 10;
            var from = Flag("from") is { } fs ? int.Parse(fs, CultureInfo.InvariantCulture) : 50;
            var dispatch = Enum.Parse<ReplicaDispatch>(Flag("dispatch") ?? "balanced", ignoreCase: true);
            var model = MoeModel.FromName("deepseek-v3");
            var topology = Topology.Create(32, 9, 4).WithExpertBytes(model.ExpertBytes);
            const int groups = 8;
            var latency = new LatencyModel(model, GemmTable.Default, new Interconnect(397.0, 50.0), dispatch);
            var trivial = TrivialPolicy.Build(topology, trace.Layers, trace.Experts);
            // Refit: a fit from scratch at every call (static mode would keep its first fit).
            using var host = Open(Flag("script") ?? "omniplacement-static", overrides.Any(o => o.Key == "mode") ? overrides : overrides.Append(new("mode", "refit")));
            var rows = new[] { "trivial", host.Name + " in hindsight", "EPLB in hindsight", "balanced-load bound", "BestEP" };
            var sums = new double[rows.Length];
            var compute = new double[rows.Length];
            var steps = 0;
            for (var step = from; step < trace.Steps; step += every)
            {
                var counts = trace.GetStep(step);
                var history = new LoadHistory(trace.Layers, trace.Experts, 1);
                history.Record(counts);
                var decision = host.Decide(new PolicyContext(topology, history, trivial, null, groups));
                var fitted = decision.Placement ?? throw new InvalidOperationException($"step {step}: {host.Name} kept the trivial placement: {decision.Reason}");
                var eplb = Eplb.Rebalance(history.WindowSum(1), topology, groups).Placement;
                var priced = new[]
                {
                    latency.Step(trivial, counts), latency.Step(fitted, counts), latency.Step(eplb, counts),
                    latency.BalancedBound(topology, trace.Experts, counts), latency.BestEp(topology, trace.Experts, counts),
                };
                for (var r = 0; r < rows.Length; r++)
                {
                    sums[r] += priced[r].Millis;
                    compute[r] += priced[r].ComputeMillisOfSlowest;
                }

                steps++;
            }

            Console.WriteLine($"{steps} steps ({from}, {from + every}, ... of {trace.Steps}), {dispatch.ToString().ToLowerInvariant()} dispatch");
            Console.WriteLine("| placement | step ms (mean) | vs BestEP | compute of the slowest devices, ms |");
            Console.WriteLine("|---|---:|---:|---:|");
            for (var r = 0; r < rows.Length; r++)
            {
                Console.WriteLine($"| {rows[r]} | {sums[r] / steps:F2} | {(sums[r] / sums[^1]) - 1:+0.0%;-0.0%} | {compute[r] / steps:F2} |");
            }
        }

        break;
    default:
        Console.Error.WriteLine($"unknown mode '{mode}' (pareto, static, cpu, steady, hindsight)");
        return 2;
}

return 0;

static string Fingerprint(Placement placement) =>
    Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(placement.CopyPhy2Log().AsSpan())))[..8];
