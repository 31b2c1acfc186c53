using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Policies.Tests.Scaffolding;

internal static class DebugRun
{
    public static void Run(string[] args)
    {
        var big = args.Contains("big");
        var topology = big ? Topology.Create(32, 9, 4) : Topology.Create(8, 5, 1);
        var trace = big ? SyntheticTrace.Generate(1, 256, 600, 4096, 8, skew: 1.0, drift: 0.05, seed: 5) : SyntheticTrace.Generate(1, 32, 100, 1024, 4, skew: 1.2, seed: 3);
        
        var current = TrivialPolicy.Build(topology, 1, trace.Experts);
        var load = trace.Sum();
        Console.WriteLine(string.Join(" ", load.Layer(0).ToArray().Select(v => (v / 100).ToString("F0"))));
        var policy = new OmniPlacementPolicy(new PolicyOptions([new("move-budget", "1"), new("move-cost", "0"), new("trigger", "1"), new("release", "1"), new("scenarios", "0"), .. args.Skip(1).Where(a => a.Contains('=')).Select(a => a.Split('=')).Select(p => new KeyValuePair<string, string>(p[0], p[1]))]));
        for (var call = 0; call < 12; call++)
        {
            var history = SyntheticTrace.History(trace, call * 25, 50);
            OmniLayerSolver.DebugOn = call == 4;
            var d = policy.Decide(new PolicyContext(topology, history, current));
            Console.WriteLine(d.Reason);
            if (d.Placement is null)
            {
                continue;
            }

            current = d.Placement;
            var r = PlacementMetrics.Layer(current, 0, load.Layer(0));
            Console.WriteLine($"imbalance on window sum {r.Imbalance:F4}");
            var counts = current.ReplicaCounts(0);
            var ema = history.Ema(0.05).Layer(0).ToArray(); // roughly the policy's prediction
            var devLoad = new double[topology.Devices];
            PlacementMetrics.DeviceLoads(current, 0, ema, counts, devLoad);
            var mean = devLoad.Average();
            var order = Enumerable.Range(0, topology.Devices).OrderByDescending(x => devLoad[x]).ToArray();
            foreach (var dv in order.Take(3).Concat(order.TakeLast(2)))
            {
                Console.WriteLine($"  dev {dv} load {devLoad[dv] / mean:F3}: " + string.Join(" ", current.Layer(0).Slice(dv * topology.SlotsPerDevice, topology.SlotsPerDevice).ToArray().Select(e => e < 0 ? "-" : $"{e}:{ema[e] / counts[e] / mean:F2}x{counts[e]}")));
            }

            Console.WriteLine("  multi: " + string.Join(" ", Enumerable.Range(0, trace.Experts).Where(e => counts[e] > 1).Select(e => $"{e}:{ema[e] / counts[e] / mean:F2}x{counts[e]}")));
            for (var dv = 0; dv < (big ? 0 : 8); dv++)
            {
                Console.WriteLine($"  dev {dv}: " + string.Join(" ", current.Layer(0).Slice(dv * 5, 5).ToArray()));
            }
        }
    }
}
