using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;
using ExpertBridge.Core.Traces;
using ExpertBridge.Scripting;

internal static class DebugRun
{
    public static void Run(string policies)
    {
        var r = PolicyCheck.Run(Path.Combine(policies, "omniplacement.csx"), new ScriptingOptions { UseCache = false });
        foreach (var line in r.Lines)
        {
            Console.WriteLine(line);
        }

        foreach (var script in new[] { "omniplacement-static", "omniplacement-incremental" })
        {
            var c = TraceSuite.Get(TraceSuite.DriftingSmall);
            using var host = PolicyResolver.Open(Path.Combine(policies, script + ".csx"), new ScriptingOptions { UseCache = false, DecisionTimeout = TimeSpan.FromMinutes(2) });
            var history = new LoadHistory(4, 32, 50);
            var trace = c.Generate();
            for (var s = 0; s < 50; s++)
            {
                history.Record(trace.GetStep(s));
            }

            var result = ReplayEngine.Run(trace, c.Topology, host, new ReplayOptions { Window = 50, Interval = 25, ExpertGroups = c.Groups });
            Console.WriteLine($"{script}: failed {host.Stats.Failed}");
            foreach (var d in result.Decisions)
            {
                Console.WriteLine($"   {d.Step} {d.Reason}");
            }
        }
    }
}
