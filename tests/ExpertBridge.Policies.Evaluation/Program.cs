using System.Diagnostics;
using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Policies.Tests.Scaffolding;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var mode = args.Length > 0 ? args[0] : "pareto";
var opts = args.Skip(1).Where(a => a.Contains('=', StringComparison.Ordinal)).Select(a => a.Split('=', 2)).Select(p => new KeyValuePair<string, string>(p[0], p[1])).ToList();
var small = args.Contains("--small");
var options = new PolicyOptions(opts, "command line");

var topology = small ? Topology.Create(8, 5, 2) : Topology.Create(32, 9, 4);
var layersArg = args.FirstOrDefault(a => a.StartsWith("--layers=", StringComparison.Ordinal));
int layers = layersArg is not null ? int.Parse(layersArg[9..], CultureInfo.InvariantCulture) : small ? 4 : 58, experts = small ? 32 : 256, steps = small ? 600 : 1200, tokens = small ? 1024 : 4096, topK = small ? 4 : 8;

LoadTrace Trace(string regime, int seed) => regime switch
{
    "stable" => SyntheticTrace.Generate(layers, experts, steps, tokens, topK, skew: 1.0, seed: seed),
    "drifting" => SyntheticTrace.Generate(layers, experts, steps, tokens, topK, skew: 1.0, drift: 0.05, seed: seed),
    _ => SyntheticTrace.Generate(layers, experts, steps, tokens, topK, skew: 1.0, drift: 0.02, switchEvery: 200, seed: seed),
};

if (mode == "debug")
{
    DebugRun.Run(args);
    return;
}

(int, int)[] Cadences()
{
    var cadenceArg = args.FirstOrDefault(a => a.StartsWith("--cadences=", StringComparison.Ordinal));
    return (cadenceArg?[11..] ?? "300:300,100:100,50:25").Split(',').Select(c => c.Split(':')).Select(c => (int.Parse(c[0], CultureInfo.InvariantCulture), int.Parse(c[1], CultureInfo.InvariantCulture))).ToArray();
}

switch (mode)
{
    case "pareto":
        var regimesArg = args.FirstOrDefault(a => a.StartsWith("--regimes=", StringComparison.Ordinal));
        foreach (var regime in (regimesArg?[10..] ?? "drifting,switching,stable").Split(','))
        {
            var trace = Trace(regime, 7);
            foreach (var (w, i) in Cadences())
            {
                var sw = Stopwatch.StartNew();
                var e = MiniReplay.Run(trace, topology, new ReferenceEplb(), w, i, allowColocated: true);
                var t1 = sw.Elapsed.TotalSeconds;
                sw.Restart();
                var o = args.Contains("--eplb-only") ? e : MiniReplay.Run(trace, topology, new OmniPlacementPolicy(options), w, i);
                var t2 = sw.Elapsed.TotalSeconds;
                Console.WriteLine($"{regime,-10} ({w},{i}) eplb imb {e.ImbalanceMean:F4} moves {e.ExpertsMoved,7} | omni imb {o.ImbalanceMean:F4} moves {o.ExpertsMoved,7} ({100.0 * o.ExpertsMoved / e.ExpertsMoved:F1}%) {(o.ImbalanceMean <= e.ImbalanceMean && o.ExpertsMoved <= e.ExpertsMoved / 4 ? "MET" : "not met")}  [{t1:F1}s/{t2:F1}s]");
            }
        }

        break;
    case "replay-speed":
        {
            var trace = Trace("drifting", 7);
            foreach (var (w, i) in Cadences())
            {
                var times = new List<double>();
                var score = MiniReplay.Run(trace, topology, new OmniPlacementPolicy(options), w, i, timer: f =>
                {
                    var c0 = ThreadClock.Milliseconds();
                    var d = f();
                    times.Add(ThreadClock.Milliseconds() - c0);
                    if (args.Contains("--verbose"))
                    {
                        Console.WriteLine($"   {d.Reason} [{times[^1]:F1} ms]");
                    }

                    return d;
                });
                var first = times[0];
                times.Sort();
                Console.WriteLine($"({w},{i}) decisions {times.Count} cpu ms: first {first:F1} median {times[times.Count / 2]:F2} p90 {times[(int)(times.Count * 0.9)]:F2} max {times[^1]:F2} | imb {score.ImbalanceMean:F4} moves {score.ExpertsMoved}");
            }
        }

        break;
    case "static":
        double so = 0, se = 0, sb = 0;
        var worse = 0;
        foreach (var regime in new[] { "stable", "drifting", "switching" })
        {
            var trace = Trace(regime, 3);
            var window = 300;
            var history = SyntheticTrace.History(trace, trace.Steps - window, window);
            var load = trace.Sum(trace.Steps - window, window);
            var current = TrivialPolicy.Build(topology, layers, experts);
            var staticOptions = new PolicyOptions([new("mode", "static"), new("predictor", "mean"), new("scenarios", "0"), .. opts]);
            var sw = Stopwatch.StartNew();
            var omni = new OmniPlacementPolicy(staticOptions).Decide(new PolicyContext(topology, history, current)).Placement!;
            var ms = sw.Elapsed.TotalMilliseconds;
            var eplb = ReferenceEplb.Fit(topology, load);
            double o = 0, e = 0, b = 0;
            var worseHere = 0;
            for (var l = 0; l < layers; l++)
            {
                var lo = PlacementMetrics.Layer(omni, l, load.Layer(l));
                var le = PlacementMetrics.Layer(eplb, l, load.Layer(l));
                o += lo.MaxDeviceLoad;
                e += le.MaxDeviceLoad;
                b += lo.BestEp;
                worseHere += lo.MaxDeviceLoad > le.MaxDeviceLoad + 1e-6 ? 1 : 0;
            }

            so += o; se += e; sb += b; worse += worseHere;
            Console.WriteLine($"{regime,-10} omni/bestEP {o / b:F4} eplb/bestEP {e / b:F4} omni/eplb {o / e:F4} layers worse {worseHere} [{ms:F0} ms]");
        }

        Console.WriteLine($"all        omni/bestEP {so / sb:F4} eplb/bestEP {se / sb:F4} omni/eplb {so / se:F4} layers worse {worse}");
        break;
    case "speed":
        {
            var trace = Trace("drifting", 5);
            var window = opts.Find(p => p.Key == "window").Value is { } ws ? int.Parse(ws, CultureInfo.InvariantCulture) : 300;
            var history = SyntheticTrace.History(trace, 0, window);
            var current = TrivialPolicy.Build(topology, layers, experts);
            foreach (var m in (opts.Find(p => p.Key == "modes").Value ?? "static,adaptive-cold,adaptive-warm").Split(','))
            {
                var times = new List<double>();
                Placement? warm = null;
                if (m == "adaptive-warm")
                {
                    warm = ReferenceEplb.Fit(topology, history.WindowSum(window));
                    warm = new OmniPlacementPolicy(new PolicyOptions([new("move-budget", "1"), .. opts])).Decide(new PolicyContext(topology, SyntheticTrace.History(trace, 200, window), current)).Placement ?? current;
                }

                for (var rep = 0; rep < (opts.Any(p => p.Key == "reps") ? 1 : 15); rep++)
                {
                    var policy = new OmniPlacementPolicy(new PolicyOptions(m == "static" ? [new("mode", "static"), .. opts] : [new("move-budget", "1"), .. opts]));
                    var sw = Stopwatch.StartNew();
                    var d = policy.Decide(new PolicyContext(topology, history, warm ?? current));
                    times.Add(sw.Elapsed.TotalMilliseconds);
                    if (rep == 0)
                    {
                        Console.WriteLine($"  {m}: {d.Reason}");
                    }
                }

                times.Sort();
                Console.WriteLine($"{m,-14} median {times[times.Count / 2]:F2} ms  min {times[0]:F2} max {times[^1]:F2}");
            }
        }

        break;
}

Console.WriteLine($"searches {OmniLayerSolver.DebugSearches} iterations {OmniLayerSolver.DebugIterations} evals {OmniLayerSolver.DebugEvals} kicks {OmniLayerSolver.DebugKicks} kept {OmniLayerSolver.DebugKicksKept} findbest {OmniLayerSolver.DebugFindBest} findms {OmniLayerSolver.DebugFindTicks * 1000.0 / System.Diagnostics.Stopwatch.Frequency:F0} buildms {OmniLayerSolver.DebugBuildTicks * 1000.0 / System.Diagnostics.Stopwatch.Frequency:F0}");
