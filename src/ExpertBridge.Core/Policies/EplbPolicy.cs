namespace ExpertBridge.Core.Policies;

/// <summary>
/// The <c>eplb</c> built-in: DeepSeek's EPLB (<see cref="Eplb"/>) fitted to the summed load of the last
/// <c>window</c> steps, as vLLM runs it (equal-weight window sum, no decay).
/// Options: <c>window</c> (steps summed; default every step held), <c>groups</c> (expert groups; default the model's,
/// <see cref="PolicyContext.ExpertGroups"/>), <c>keep-slots</c> (default false: the reference's placement as is;
/// true: relabelled by <see cref="MinimalMovement"/> against the placement in force, the movement-aware baseline,
/// with identical device loads).
/// <para>
/// Co-located replicas: EPLB's packing may put two replicas of one expert on one device. The decision says so
/// (<see cref="PolicyDecision.AllowsColocatedReplicas"/>) and the host validates with co-location allowed, rather
/// than a post-pass moving replicas: a swap that keeps every device load exists only between replicas of equal load,
/// so a repair would either be rare or change EPLB's result, and this policy is the faithful baseline. vLLM and
/// SGLang accept such placements.
/// </para>
/// </summary>
public sealed class EplbPolicy : IPlacementPolicy
{
    public string Name => "eplb";

    public PolicyDecision Decide(PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var history = context.History;
        var options = context.Options;
        var window = options.GetInt("window", Math.Max(history.Count, 1), min: 1);
        var groups = options.GetInt("groups", context.ExpertGroups, min: 1);
        var keepSlots = options.GetBool("keep-slots", fallback: false);
        if (history.Count == 0)
        {
            return PolicyDecision.Keep("eplb: no load recorded yet");
        }

        // EPLB itself takes milliseconds; the budget is checked around it rather than inside.
        context.Cancellation.ThrowIfCancellationRequested();
        var result = Eplb.Rebalance(history.WindowSum(window), context.Topology, groups);
        context.Cancellation.ThrowIfCancellationRequested();
        var placement = keepSlots
            ? MinimalMovement.Relabel(context.Current, result.Placement, acrossNodes: !result.Hierarchical)
            : result.Placement;
        if (placement.Equals(context.Current))
        {
            return PolicyDecision.Keep("eplb: placement unchanged");
        }

        var policy = result.Hierarchical ? "hierarchical" : "global";
        var steps = Math.Min(window, history.Count);
        var colocated = result.ColocatedReplicas > 0 ? $", {result.ColocatedReplicas} co-located replica(s)" : "";
        return PolicyDecision.Apply(placement, $"eplb {policy} over {steps} step(s){colocated}", allowsColocatedReplicas: true);
    }
}
