using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Host;

namespace ExpertBridge.Host.Tests;

/// <summary>
/// A small load-aware policy for driving the loop: spare slots go to the experts with the most load per replica, then
/// replicas are packed heaviest first onto the least-loaded device that has room and does not hold that expert.
/// </summary>
internal sealed class GreedyTestPolicy : IPlacementPolicy
{
    public string Name => "greedy-test";

    public PolicyDecision Decide(PolicyContext context)
    {
        var topology = context.Topology;
        var load = context.History.WindowSum(context.History.Count);
        var phy2log = new int[context.Layers * topology.Slots];
        for (var l = 0; l < context.Layers; l++)
        {
            var loads = load.Layer(l).ToArray();
            var replicas = Enumerable.Repeat(1, context.LogicalExperts).ToArray();
            for (var spare = topology.Slots - context.LogicalExperts; spare > 0; spare--)
            {
                var best = -1;
                for (var e = 0; e < replicas.Length; e++)
                {
                    if (replicas[e] < topology.Devices && (best < 0 || loads[e] / replicas[e] > loads[best] / replicas[best]))
                    {
                        best = e; // at most one replica per device
                    }
                }

                replicas[best]++;
            }

            var items = Enumerable.Range(0, replicas.Length)
                .SelectMany(e => Enumerable.Repeat((Expert: e, Load: loads[e] / replicas[e]), replicas[e]))
                .OrderByDescending(x => x.Load).ThenBy(x => x.Expert).ToList();
            var deviceLoad = new double[topology.Devices];
            var used = new int[topology.Devices];
            var holds = new HashSet<(int, int)>();
            foreach (var (expert, share) in items)
            {
                var device = Enumerable.Range(0, topology.Devices)
                    .Where(d => used[d] < topology.SlotsPerDevice && !holds.Contains((d, expert)))
                    .OrderBy(d => deviceLoad[d]).ThenBy(d => d).First();
                phy2log[(l * topology.Slots) + topology.SlotOf(device, used[device]++)] = expert;
                deviceLoad[device] += share;
                holds.Add((device, expert));
            }
        }

        var placement = new Placement(topology, context.LogicalExperts, phy2log);
        return placement.Equals(context.Current) ? PolicyDecision.Keep("balanced") : PolicyDecision.Apply(placement, "greedy");
    }
}

internal sealed class DelegatePolicy(string name, Func<PolicyContext, PolicyDecision> decide) : IPlacementPolicy
{
    public string Name => name;

    public PolicyDecision Decide(PolicyContext context) => decide(context);
}
