namespace ExpertBridge.Core;

/// <summary>
/// Which logical expert each physical slot holds, per layer: <c>phy2log[layer][slot]</c>, -1 for an empty slot.
/// Immutable; the derived views (replica counts, log2phy) are computed on demand.
/// Shape checks happen at construction; the placement rules (every expert has a replica, ...) are checked by
/// <see cref="PlacementValidator"/>, so a half-built placement can still be inspected and reported.
/// </summary>
public sealed class Placement : IEquatable<Placement>
{
    private readonly int[] _phy2log;

    /// <summary>Wraps <paramref name="phy2log"/> ([layers, topology.Slots] row-major) without copying.</summary>
    public Placement(Topology topology, int logicalExperts, int[] phy2log, string subject = "placement")
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(phy2log);
        if (logicalExperts < 1)
        {
            throw new InputException(subject, "logical experts >= 1", $"got {logicalExperts}");
        }

        if (phy2log.Length == 0 || phy2log.Length % topology.Slots != 0)
        {
            throw new InputException(subject, "each layer has devices x slots-per-device entries", $"{phy2log.Length} entries do not split into layers of {topology.Slots} slots");
        }

        Topology = topology;
        LogicalExperts = logicalExperts;
        Layers = phy2log.Length / topology.Slots;
        _phy2log = phy2log;
    }

    /// <summary>Builds a placement from jagged rows, one per layer.</summary>
    public static Placement FromRows(Topology topology, int logicalExperts, IReadOnlyList<IReadOnlyList<int>> rows, string subject = "placement")
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
        {
            throw new InputException(subject, "at least one layer", "phy2log is empty");
        }

        var flat = new int[rows.Count * topology.Slots];
        for (var l = 0; l < rows.Count; l++)
        {
            if (rows[l].Count != topology.Slots)
            {
                throw new InputException(subject, "each layer has devices x slots-per-device entries", $"layer {l} has {rows[l].Count} slots, the topology has {topology.Slots}");
            }

            for (var s = 0; s < topology.Slots; s++)
            {
                flat[(l * topology.Slots) + s] = rows[l][s];
            }
        }

        return new Placement(topology, logicalExperts, flat, subject);
    }

    public Topology Topology { get; }

    public int Layers { get; }

    public int LogicalExperts { get; }

    public int Slots => Topology.Slots;

    /// <summary>The logical expert in (<paramref name="layer"/>, <paramref name="slot"/>), or -1.</summary>
    public int this[int layer, int slot] => _phy2log[(layer * Slots) + slot];

    /// <summary>One layer's phy2log row.</summary>
    public ReadOnlySpan<int> Layer(int layer) => _phy2log.AsSpan(layer * Slots, Slots);

    /// <summary>All of phy2log, row-major.</summary>
    public ReadOnlySpan<int> Phy2Log => _phy2log;

    /// <summary>Copy of phy2log as jagged rows (for serialisers).</summary>
    public int[][] ToRows()
    {
        var rows = new int[Layers][];
        for (var l = 0; l < Layers; l++)
        {
            rows[l] = Layer(l).ToArray();
        }

        return rows;
    }

    /// <summary>A mutable copy of phy2log, to build a new placement from this one.</summary>
    public int[] CopyPhy2Log() => (int[])_phy2log.Clone();

    /// <summary>Replica count of each logical expert of <paramref name="layer"/> (ids out of range are ignored).</summary>
    public int[] ReplicaCounts(int layer)
    {
        var counts = new int[LogicalExperts];
        CountReplicas(Layer(layer), counts);
        return counts;
    }

    /// <summary>Fills <paramref name="counts"/> with the replicas of each expert in one layer's <paramref name="row"/> (other ids ignored).</summary>
    internal static void CountReplicas(ReadOnlySpan<int> row, Span<int> counts)
    {
        counts.Clear();
        foreach (var e in row)
        {
            if ((uint)e < (uint)counts.Length)
            {
                counts[e]++;
            }
        }
    }

    /// <summary>Physical slots of each logical expert of <paramref name="layer"/>, ascending slot order.</summary>
    public int[][] Log2Phy(int layer)
    {
        var counts = ReplicaCounts(layer);
        var result = new int[LogicalExperts][];
        for (var e = 0; e < LogicalExperts; e++)
        {
            result[e] = new int[counts[e]];
        }

        var fill = new int[LogicalExperts];
        var row = Layer(layer);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e >= 0 && e < LogicalExperts)
            {
                result[e][fill[e]++] = s;
            }
        }

        return result;
    }

    /// <summary>
    /// log2phy padded with -1 to the widest replica count over all layers, [layers, experts, maxReplicas] row-major,
    /// as vLLM and SGLang hold it for their routers.
    /// </summary>
    public (int[] Values, int MaxReplicas) Log2PhyPadded()
    {
        var max = 1;
        for (var l = 0; l < Layers; l++)
        {
            foreach (var c in ReplicaCounts(l))
            {
                max = Math.Max(max, c);
            }
        }

        var values = new int[Layers * LogicalExperts * max];
        Array.Fill(values, -1);
        for (var l = 0; l < Layers; l++)
        {
            var map = Log2Phy(l);
            for (var e = 0; e < LogicalExperts; e++)
            {
                map[e].CopyTo(values, ((l * LogicalExperts) + e) * max);
            }
        }

        return (values, max);
    }

    /// <summary>Returns a placement with <paramref name="layer"/> replaced.</summary>
    public Placement WithLayer(int layer, ReadOnlySpan<int> row)
    {
        if (row.Length != Slots)
        {
            throw new ArgumentException($"row has {row.Length} slots, the topology has {Slots}", nameof(row));
        }

        var copy = CopyPhy2Log();
        row.CopyTo(copy.AsSpan(layer * Slots, Slots));
        return new Placement(Topology, LogicalExperts, copy);
    }

    public bool Equals(Placement? other) =>
        other is not null
        && other.Topology == Topology
        && other.LogicalExperts == LogicalExperts
        && other._phy2log.AsSpan().SequenceEqual(_phy2log);

    public override bool Equals(object? obj) => Equals(obj as Placement);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Topology);
        hash.Add(LogicalExperts);
        foreach (var v in _phy2log)
        {
            hash.Add(v);
        }

        return hash.ToHashCode();
    }
}
