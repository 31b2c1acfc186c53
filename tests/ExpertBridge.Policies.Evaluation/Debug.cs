using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Traces;

internal static class DebugRun
{
    public static void Run()
    {
        var topology = Topology.Create(8, 5);
        var trace = TraceGenerator.Generate(new TraceOptions { Layers = 4, Experts = 32, Steps = 100, TokensPerStep = 512, TopK = 4, Skew = 1.2, Seed = 3 });
        var history = new LoadHistory(4, 32, 100);
        for (var s = 0; s < 100; s++)
        {
            history.Record(trace.GetStep(s));
        }

        var policy = new OmniPlacementPolicy();
        var current = TrivialPolicy.Build(topology, 4, 32);
        for (var call = 0; call < 5; call++)
        {
            var d = policy.Decide(new PolicyContext(topology, history, current, step: 100 * (call + 1)));
            Console.WriteLine($"{d.Reason} moved {(d.Placement is null ? 0 : PlacementDiff.CountChanges(current, d.Placement))}");
            if (d.Placement is { } p)
            {
                current = p;
            }
        }
    }
}
