using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Policies.Tests.Scaffolding;

/// <summary>What a replay measured.</summary>
internal sealed record ReplayScore(double ImbalanceMean, int ExpertsMoved, int Rebalances, int Decisions);

/// <summary>
/// The predictive replay in miniature (until Core's ReplayEngine lands): start from the trivial placement; at steps
/// W, W+I, ... the policy sees the W steps before and the placement in force; every step from W on is scored with
/// the placement in force (per layer max / mean device load of that step's counts).
/// </summary>
internal static class MiniReplay
{
    public static ReplayScore Run(LoadTrace trace, Topology topology, IPlacementPolicy policy, int window, int interval, int groups = 1, bool allowColocated = false, Func<Func<PolicyDecision>, PolicyDecision>? timer = null)
    {
        var history = new LoadHistory(trace.Layers, trace.Experts, window);
        var current = TrivialPolicy.Build(topology, trace.Layers, trace.Experts);
        var devices = new double[topology.Devices];
        double imbalance = 0;
        long scored = 0;
        int moved = 0, rebalances = 0, decisions = 0;
        for (var t = 0; t < trace.Steps; t++)
        {
            if (t >= window && (t - window) % interval == 0)
            {
                decisions++;
                var context = new PolicyContext(topology, history, current, null, groups, null, t);
                var decision = timer is null ? policy.Decide(context) : timer(() => policy.Decide(context));
                if (decision.Placement is { } next)
                {
                    PlacementValidator.EnsureValid(next, policy.Name, allowColocated);
                    var changes = PlacementDiff.CountChanges(current, next);
                    moved += changes;
                    rebalances += changes > 0 ? 1 : 0;
                    current = next;
                }
            }

            var step = trace.GetStep(t);
            if (t >= window)
            {
                for (var l = 0; l < trace.Layers; l++)
                {
                    var counts = current.ReplicaCounts(l);
                    PlacementMetrics.DeviceLoads(current, l, step.Slice(l * trace.Experts, trace.Experts), counts, devices);
                    imbalance += PlacementMetrics.Summarise(l, devices, counts).Imbalance;
                }

                scored++;
            }

            history.Record(step);
        }

        return new ReplayScore(imbalance / (scored * trace.Layers), moved, rebalances, decisions);
    }
}
