namespace ExpertBridge.Core.Policies;

/// <summary>
/// Movement-aware relabelling, the remedy EPLB's maintainers suggest for its blindness to the placement in force
/// (deepseek-ai/EPLB issue #25): a balancer decides which experts share a device, not which physical device or slot
/// gets them, so any permutation of devices (within a node, to keep node-level decisions intact) and of slots within a
/// device yields a placement with the same per-device multisets of experts, the same replica counts and therefore the
/// same device loads. Among those, this picks one that changes as few (layer, slot) pairs as possible:
/// <list type="number">
/// <item>per layer and node, devices are matched to the proposed devices' contents by a minimum-cost assignment
/// (cost = slots of the device whose expert would change, i.e. experts it would receive when no slot is empty);</item>
/// <item>inside each device, an expert already held in one of its slots stays in that slot; the experts it receives
/// fill the remaining slots in ascending slot order, in the proposed order.</item>
/// </list>
/// The result never changes more slots than <c>proposed</c> itself (the identity relabelling is one of the candidates)
/// and changes none when <c>proposed</c> is a device/slot permutation of <c>current</c>. Deterministic.
/// Cost per layer: O(n^2 S) to build each node's n x n cost matrix plus the assignment (O(n^3) worst case).
/// </summary>
public static class MinimalMovement
{
    /// <summary>
    /// Returns <paramref name="proposed"/> with its devices and slots relabelled to move as little as possible from
    /// <paramref name="current"/>. Devices are permuted within each node unless <paramref name="acrossNodes"/> is true
    /// (sound for placements that ignore nodes, such as EPLB's global policy).
    /// </summary>
    public static Placement Relabel(Placement current, Placement proposed, bool acrossNodes = false)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(proposed);
        var topology = proposed.Topology;
        PlacementValidator.EnsureShape(current, topology, proposed.Layers, proposed.LogicalExperts, "placement in force");
        EnsureIdsInRange(current, "placement in force");
        EnsureIdsInRange(proposed, "proposed placement");

        var slots = topology.SlotsPerDevice;
        var n = acrossNodes ? topology.Devices : topology.DevicesPerNode;
        var cost = new int[n * n];
        var colOfRow = new int[n];
        var solver = new LinearAssignment(n);
        var counts = new int[proposed.LogicalExperts + 1]; // index expert + 1, so an empty slot (-1) counts too
        var taken = new int[slots];
        var used = new bool[slots];
        var kept = new bool[slots];
        var result = new int[proposed.Phy2Log.Length];

        for (var layer = 0; layer < proposed.Layers; layer++)
        {
            var from = current.Layer(layer);
            var to = proposed.Layer(layer);
            var outRow = result.AsSpan(layer * topology.Slots, topology.Slots);
            for (var first = 0; first < topology.Devices; first += n)
            {
                var span = first * slots;
                var fromGroup = from.Slice(span, n * slots);
                var toGroup = to.Slice(span, n * slots);
                BuildCosts(fromGroup, toGroup, n, slots, counts, taken, cost);
                solver.Solve(cost, colOfRow);
                for (var i = 0; i < n; i++)
                {
                    KeepSlots(
                        fromGroup.Slice(i * slots, slots),
                        toGroup.Slice(colOfRow[i] * slots, slots),
                        outRow.Slice(span + (i * slots), slots),
                        used,
                        kept);
                }
            }
        }

        return new Placement(topology, proposed.LogicalExperts, result, "relabelled placement");
    }

    private static void EnsureIdsInRange(Placement placement, string subject)
    {
        var phy2log = placement.Phy2Log;
        for (var i = 0; i < phy2log.Length; i++)
        {
            if (phy2log[i] < -1 || phy2log[i] >= placement.LogicalExperts)
            {
                throw new InputException(subject, PlacementValidator.RuleIdInRange, $"layer {i / placement.Slots} slot {i % placement.Slots} holds expert {phy2log[i]} (experts: {placement.LogicalExperts})");
            }
        }
    }

    // cost[i, j] = slots of current device i that would change if it received proposed device j's experts.
    private static void BuildCosts(ReadOnlySpan<int> from, ReadOnlySpan<int> to, int n, int slots, int[] counts, int[] taken, int[] cost)
    {
        for (var i = 0; i < n; i++)
        {
            var held = from.Slice(i * slots, slots);
            foreach (var e in held)
            {
                counts[e + 1]++;
            }

            for (var j = 0; j < n; j++)
            {
                var matched = 0;
                foreach (var e in to.Slice(j * slots, slots))
                {
                    if (counts[e + 1] > 0)
                    {
                        counts[e + 1]--;
                        taken[matched++] = e;
                    }
                }

                for (var k = 0; k < matched; k++)
                {
                    counts[taken[k] + 1]++;
                }

                cost[(i * n) + j] = slots - matched;
            }

            foreach (var e in held)
            {
                counts[e + 1]--;
            }
        }
    }

    // Experts the device already holds stay in their slots; the rest fill the free slots in order.
    private static void KeepSlots(ReadOnlySpan<int> held, ReadOnlySpan<int> incoming, Span<int> output, bool[] used, bool[] kept)
    {
        Array.Clear(used);
        Array.Clear(kept);
        for (var k = 0; k < held.Length; k++)
        {
            for (var t = 0; t < incoming.Length; t++)
            {
                if (!used[t] && incoming[t] == held[k])
                {
                    used[t] = true;
                    kept[k] = true;
                    output[k] = held[k];
                    break;
                }
            }
        }

        var next = 0;
        for (var k = 0; k < held.Length; k++)
        {
            if (kept[k])
            {
                continue;
            }

            while (used[next])
            {
                next++;
            }

            used[next] = true;
            output[k] = incoming[next];
        }
    }
}
