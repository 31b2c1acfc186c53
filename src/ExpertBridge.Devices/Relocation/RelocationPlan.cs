using ExpertBridge.Core;

namespace ExpertBridge.Devices.Relocation;

/// <summary>How an expert reaches its new slot, cheapest first.</summary>
public enum TransferKind
{
    /// <summary>Copy within one device.</summary>
    Local,

    /// <summary>Peer copy between two devices of one process.</summary>
    Peer,

    /// <summary>Collective send/receive between two processes of one node.</summary>
    CrossProcess,

    /// <summary>Collective send/receive between nodes.</summary>
    CrossNode,
}

/// <summary>Where a transfer writes.</summary>
public enum Landing
{
    /// <summary>Straight into the destination slot: the placement in force routes no token there (a free slot).</summary>
    Direct,

    /// <summary>Into a staging buffer on the destination device; copied into the slot at the layer's commit.</summary>
    Staging,
}

/// <summary>One expert moving into one destination slot.</summary>
public sealed record SlotTransfer(
    int Layer,
    int Slot,
    int Expert,
    int SourceSlot,
    int SourceDevice,
    int TargetDevice,
    TransferKind Kind,
    Landing Landing,
    long Bytes);

/// <summary>The transfers of one layer, which commits on its own.</summary>
public sealed class LayerPlan
{
    internal LayerPlan(int layer, int[] currentRow, int[] row, IReadOnlyList<SlotTransfer> transfers)
    {
        Layer = layer;
        CurrentRow = currentRow;
        Row = row;
        Transfers = transfers;
    }

    public int Layer { get; }

    /// <summary>phy2log of the layer in the placement in force when planned.</summary>
    public IReadOnlyList<int> CurrentRow { get; }

    /// <summary>phy2log of the layer after the commit.</summary>
    public IReadOnlyList<int> Row { get; }

    /// <summary>Transfers in destination-slot order (also the order of collective sends and receives).</summary>
    public IReadOnlyList<SlotTransfer> Transfers { get; }

    public long Bytes => Transfers.Sum(t => t.Bytes);
}

/// <summary>
/// The layers that change between two placements, each with its transfers. Pure data: two processes that plan the
/// same pair of placements with the same device locations get the same plan, which is what keeps their collective
/// sends and receives matched.
/// </summary>
public sealed class RelocationPlan
{
    internal RelocationPlan(Placement from, Placement to, IReadOnlyList<LayerPlan> layers, long[] deviceOut, long[] deviceIn, IReadOnlyDictionary<(int Source, int Target), long> links)
    {
        From = from;
        To = to;
        Layers = layers;
        DeviceBytesOut = deviceOut;
        DeviceBytesIn = deviceIn;
        LinkBytes = links;
    }

    public Placement From { get; }

    public Placement To { get; }

    /// <summary>Changed layers in ascending order (the pipelining order).</summary>
    public IReadOnlyList<LayerPlan> Layers { get; }

    public int Transfers => Layers.Sum(l => l.Transfers.Count);

    public long TotalBytes => Layers.Sum(l => l.Bytes);

    /// <summary>Bytes each (global) device sends, counting copies within a device.</summary>
    public IReadOnlyList<long> DeviceBytesOut { get; }

    /// <summary>Bytes each (global) device receives.</summary>
    public IReadOnlyList<long> DeviceBytesIn { get; }

    /// <summary>Bytes per (source device, target device) pair with at least one transfer.</summary>
    public IReadOnlyDictionary<(int Source, int Target), long> LinkBytes { get; }

    public int Count(TransferKind kind) => Layers.Sum(l => l.Transfers.Count(t => t.Kind == kind));

    /// <summary>
    /// The largest number of bytes charged to one bandwidth budget of one device (global devices): copies within a
    /// device count against its within-device budget, other transfers against the between-devices budgets of their
    /// source and target. Under a cap C the move takes at least about this over C.
    /// </summary>
    internal long BusiestBudgetBytes()
    {
        var within = new long[DeviceBytesOut.Count];
        var between = new long[DeviceBytesOut.Count];
        foreach (var t in Layers.SelectMany(l => l.Transfers))
        {
            if (t.Kind == TransferKind.Local)
            {
                within[t.TargetDevice] += t.Bytes;
            }
            else
            {
                between[t.SourceDevice] += t.Bytes;
                between[t.TargetDevice] += t.Bytes;
            }
        }

        return Math.Max(within.DefaultIfEmpty().Max(), between.DefaultIfEmpty().Max());
    }
}

/// <summary>Where a global device (an EP rank of the topology) lives.</summary>
/// <param name="Process">The process (bridge instance) that owns it.</param>
/// <param name="LocalDevice">Its ordinal in that process's runtime.</param>
public readonly record struct DeviceLocation(int Process, int LocalDevice);

/// <summary>Builds relocation plans: picks a source replica for every moved expert and where it lands.</summary>
public static class RelocationPlanner
{
    /// <summary>
    /// Plans the move from <paramref name="current"/> (the placement in force) to <paramref name="next"/>.
    /// For each changed destination slot it takes the cheapest kind of source (same device, then same process, then same
    /// node, then another node) and, among sources of that kind, the one whose device and link have carried the fewest
    /// bytes so far, so that load spreads over replicas; experts with the fewest candidate sources are placed first.
    /// A slot the placement in force routes tokens to is written through a staging buffer, a free slot directly.
    /// </summary>
    /// <param name="current">Placement in force.</param>
    /// <param name="next">Target placement (same shape).</param>
    /// <param name="expertBytes">Bytes of one expert per layer (null: the topology's expert size, or 1 to count experts).</param>
    /// <param name="locations">Location of each global device; null: all devices in process 0 with ordinal = device.</param>
    public static RelocationPlan Plan(Placement current, Placement next, IReadOnlyList<long>? expertBytes = null, IReadOnlyList<DeviceLocation>? locations = null)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        var topology = current.Topology;
        if (current.Layers != next.Layers || current.Slots != next.Slots || current.LogicalExperts != next.LogicalExperts)
        {
            throw new InputException("relocation plan", PlacementValidator.RuleShape,
                $"cannot move {current.Layers}x{current.Slots} ({current.LogicalExperts} experts) to {next.Layers}x{next.Slots} ({next.LogicalExperts} experts)");
        }

        if (locations is not null && locations.Count != topology.Devices)
        {
            throw new InputException("device locations", "one location per device of the topology", $"{locations.Count} locations for {topology.Devices} devices");
        }

        var outBytes = new long[topology.Devices];
        var inBytes = new long[topology.Devices];
        var links = new Dictionary<(int, int), long>();
        var layers = new List<LayerPlan>();
        for (var l = 0; l < current.Layers; l++)
        {
            var from = current.Layer(l);
            var to = next.Layer(l);
            if (from.SequenceEqual(to))
            {
                continue;
            }

            var bytes = expertBytes is not null ? expertBytes[l] : (topology.ExpertBytes > 0 ? topology.ExpertBytes : 1);
            var sources = current.Log2Phy(l);
            var wanted = new List<(int Slot, int Expert)>();
            for (var s = 0; s < to.Length; s++)
            {
                if (to[s] != from[s] && to[s] >= 0)
                {
                    if (to[s] >= current.LogicalExperts || sources[to[s]].Length == 0)
                    {
                        throw new InputException($"layer {l} slot {s}", "every expert of the new placement has a replica in the placement in force",
                            $"expert {to[s]} has no source to copy from");
                    }

                    wanted.Add((s, to[s]));
                }
            }

            // Most constrained first; stable by slot so that every process derives the same order.
            wanted.Sort((a, b) => sources[a.Expert].Length != sources[b.Expert].Length
                ? sources[a.Expert].Length.CompareTo(sources[b.Expert].Length)
                : a.Slot.CompareTo(b.Slot));

            var transfers = new List<SlotTransfer>(wanted.Count);
            foreach (var (slot, expert) in wanted)
            {
                var target = topology.DeviceOf(slot);
                var best = -1;
                var bestKind = TransferKind.CrossNode;
                var bestLoad = long.MaxValue;
                foreach (var candidate in sources[expert])
                {
                    var source = topology.DeviceOf(candidate);
                    var kind = KindOf(topology, locations, source, target);
                    var load = outBytes[source] + links.GetValueOrDefault((source, target));
                    if (best < 0 || kind < bestKind || (kind == bestKind && load < bestLoad))
                    {
                        best = candidate;
                        bestKind = kind;
                        bestLoad = load;
                    }
                }

                var src = topology.DeviceOf(best);
                outBytes[src] += bytes;
                inBytes[target] += bytes;
                links[(src, target)] = links.GetValueOrDefault((src, target)) + bytes;
                var landing = from[slot] >= 0 ? Landing.Staging : Landing.Direct;
                transfers.Add(new SlotTransfer(l, slot, expert, best, src, target, bestKind, landing, bytes));
            }

            transfers.Sort((a, b) => a.Slot.CompareTo(b.Slot));
            layers.Add(new LayerPlan(l, from.ToArray(), to.ToArray(), transfers));
        }

        return new RelocationPlan(current, next, layers, outBytes, inBytes, links);
    }

    private static TransferKind KindOf(Topology topology, IReadOnlyList<DeviceLocation>? locations, int source, int target)
    {
        if (source == target)
        {
            return TransferKind.Local;
        }

        if (topology.NodeOfDevice(source) != topology.NodeOfDevice(target))
        {
            return TransferKind.CrossNode;
        }

        var sameProcess = locations is null || locations[source].Process == locations[target].Process;
        return sameProcess ? TransferKind.Peer : TransferKind.CrossProcess;
    }
}
