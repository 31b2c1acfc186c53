namespace ExpertBridge.Core.Policies;

/// <summary>
/// A faithful port of DeepSeek's expert-parallelism load balancer (deepseek-ai/EPLB, <c>eplb.py</c>):
/// <c>rebalance_experts</c> picks the hierarchical policy when expert groups split evenly over nodes
/// (groups -> nodes by balanced packing, then per node: replicate the experts with the largest per-replica load,
/// then pack the replicas onto the node's devices) and otherwise the global policy, which is the hierarchical one
/// with one group and one node.
/// <para>
/// Parity with the reference is exact, bit for bit, for every input whose float32 group sums are exact (e.g. token
/// counts whose group totals stay below 2^24): loads are rounded to float32 as <c>weight.float()</c> does; per-replica
/// loads are float32 quotients; pack weights accumulate in float32 in the reference's order; ties go the reference's
/// way (<c>max(dim)</c> and Python's <c>min</c> keep the first index; the descending sort is PyTorch's unstable CPU
/// sort, reproduced by <see cref="TorchCpuSort"/>). Group sums are computed in float64 and rounded once, which equals
/// the reference whenever its float32 sum is exact and is the correctly rounded sum otherwise (the reference's own
/// summation order depends on the CPU's vector width). Checked against the reference's own output on tie-heavy inputs
/// at DeepSeek-V3 scale (tests/ExpertBridge.Core.Tests/Data/eplb_reference_cases.json and the script beside it).
/// </para>
/// <para>
/// Known properties kept on purpose: two replicas of one expert may land on one device
/// (<see cref="EplbResult.ColocatedReplicas"/> counts them); the previous placement is ignored
/// (<see cref="MinimalMovement"/> relabels the result to move less).
/// </para>
/// <para>
/// Cost: one pass over the layers; per layer O(E + R log R) with every buffer allocated once per call. The greedy
/// argmax / argmin steps run on tournament trees of packed (float bits, id) keys (<see cref="MinTree"/>), and the sort's
/// partition and final insertion sort are computed without data-dependent branches (<see cref="TorchCpuSort"/>); each
/// gives exactly the reference's choices. The straightforward version of this port stays in the tests as an oracle.
/// </para>
/// </summary>
public static class Eplb
{
    /// <summary>
    /// <c>rebalance_experts(weight, replicas = topology.Slots, groups, topology.Nodes, topology.Devices)</c>.
    /// </summary>
    public static EplbResult Rebalance(LoadMatrix load, Topology topology, int groups)
    {
        ArgumentNullException.ThrowIfNull(topology);
        return Rebalance(load, topology.Slots, groups, topology.Nodes, topology.Devices);
    }

    /// <summary>
    /// <c>rebalance_experts(weight, num_replicas, num_groups, num_nodes, num_gpus)</c> with the reference's argument
    /// rules checked up front: replicas a multiple of devices, devices a multiple of nodes, experts divisible by
    /// groups, replicas &gt;= experts.
    /// </summary>
    public static EplbResult Rebalance(LoadMatrix load, int replicas, int groups, int nodes, int devices)
    {
        ArgumentNullException.ThrowIfNull(load);
        if (devices < 1)
        {
            throw new InputException("--devices", "devices >= 1", $"got {devices}");
        }

        if (replicas < 1 || replicas % devices != 0)
        {
            throw new InputException("replicas", "replicas (physical slots) are a positive multiple of devices", $"{replicas} replicas do not split evenly over {devices} devices");
        }

        var topology = Topology.Create(devices, replicas / devices, nodes);
        var experts = load.Experts;
        if (groups < 1)
        {
            throw new InputException("--groups", "expert groups >= 1", $"got {groups}");
        }

        if (experts % groups != 0)
        {
            throw new InputException("--groups", "experts divisible by groups", $"{experts} experts do not split into {groups} equal groups");
        }

        TrivialPolicy.RequireEnoughSlots(topology, experts);

        var hierarchical = groups % nodes == 0;
        var shape = hierarchical
            ? new Shape(load.Layers, experts, replicas, groups, nodes, devices)
            : new Shape(load.Layers, experts, replicas, 1, 1, devices);
        // Every entry is written below.
        var phy2log = GC.AllocateUninitializedArray<int>(load.Layers * replicas);
        var replicaRank = GC.AllocateUninitializedArray<int>(load.Layers * replicas);
        var logicalCount = GC.AllocateUninitializedArray<int>(load.Layers * experts);
        var colocated = new Workspace(shape).Run(load.Values, phy2log, replicaRank, logicalCount);
        return new EplbResult(new Placement(topology, experts, phy2log, "eplb placement"), replicaRank, logicalCount, hierarchical, colocated);
    }

    /// <summary>
    /// <c>balanced_packing</c> for one row: packs <paramref name="weights"/> (n items) into <paramref name="packs"/> packs
    /// of exactly n / packs items each, heaviest item first into the lightest pack that still has room (the first such
    /// pack on ties). Scratch: <paramref name="sorted"/> holds n entries, <paramref name="tree"/>
    /// <see cref="MinTree.Length"/>(packs) keys, <paramref name="packWeight"/> and <paramref name="packFill"/> packs each.
    /// </summary>
    internal static void BalancedPacking(
        ReadOnlySpan<float> weights, int packs, Span<int> packIndex, Span<int> rankInPack,
        Span<SortEntry> sorted, Span<ulong> tree, Span<float> packWeight, Span<int> packFill)
    {
        var n = weights.Length;
        var perPack = n / packs;
        if (perPack == 1)
        {
            for (var i = 0; i < n; i++)
            {
                packIndex[i] = i;
                rankInPack[i] = 0;
            }

            return;
        }

        var order = sorted[..n];
        for (var i = 0; i < n; i++)
        {
            order[i] = new SortEntry(weights[i], i);
        }

        TorchCpuSort.SortDescending(order);

        // Python's min over the packs with room keeps the first minimum: a tournament on (pack weight, pack id).
        // A full pack leaves the tournament.
        tree = tree[..MinTree.Length(packs)];
        var leaves = MinTree.Leaves(tree);
        for (var p = 0; p < packs; p++)
        {
            leaves[p] = MinTree.Lightest(0f, p);
        }

        MinTree.Build(tree, packs);
        var weight = packWeight[..packs];
        weight.Clear();
        var filled = packFill[..packs];
        filled.Clear();
        foreach (var entry in order)
        {
            var item = entry.Item;
            var pack = MinTree.Id(MinTree.Min(tree));
            packIndex[item] = pack;
            var rank = filled[pack];
            rankInPack[item] = rank;
            filled[pack] = ++rank;
            var w = weight[pack] += weights[item];
            MinTree.Replace(tree, pack, rank == perPack ? MinTree.Retired : MinTree.Lightest(w, pack));
        }
    }

    /// <summary>
    /// <c>replicate_experts</c> for one row: slot i &lt; E holds expert i; every further slot goes to the expert with the
    /// largest float32 per-replica load <c>weight / count</c> (the first such expert on ties).
    /// <paramref name="tree"/> holds <see cref="MinTree.Length"/>(E) keys.
    /// </summary>
    internal static void ReplicateExperts(
        ReadOnlySpan<float> weights, Span<int> phy2log, Span<int> rank, Span<int> count, Span<ulong> tree)
    {
        var experts = weights.Length;
        for (var e = 0; e < experts; e++)
        {
            phy2log[e] = e;
            rank[e] = 0;
            count[e] = 1;
        }

        if (phy2log.Length == experts)
        {
            return;
        }

        tree = tree[..MinTree.Length(experts)];
        var leaves = MinTree.Leaves(tree);
        for (var e = 0; e < experts; e++)
        {
            leaves[e] = MinTree.Heaviest(weights[e], e);
        }

        MinTree.Build(tree, experts);
        for (var i = experts; i < phy2log.Length; i++)
        {
            var e = MinTree.Id(MinTree.Min(tree));
            phy2log[i] = e;
            var c = count[e];
            rank[i] = c;
            count[e] = ++c;
            MinTree.Replace(tree, e, MinTree.Heaviest(weights[e] / c, e));
        }
    }

    private readonly record struct Shape(int Layers, int Experts, int Replicas, int Groups, int Nodes, int Devices)
    {
        public int GroupSize => Experts / Groups;

        public int GroupsPerNode => Groups / Nodes;

        public int ExpertsPerNode => Experts / Nodes;

        public int ReplicasPerNode => Replicas / Nodes;

        public int DevicesPerNode => Devices / Nodes;

        public int SlotsPerDevice => Replicas / Devices;
    }

    /// <summary>Every buffer one call needs, allocated once; <see cref="Run"/> walks the layers.</summary>
    private sealed class Workspace(Shape shape)
    {
        private readonly Shape _s = shape;
        private readonly float[] _weight = new float[shape.Experts];
        private readonly float[] _groupWeight = new float[shape.Groups];
        private readonly int[] _groupPack = new int[shape.Groups];
        private readonly int[] _groupRank = new int[shape.Groups];
        private readonly int[] _log2mlog = new int[shape.Experts];
        private readonly int[] _mlog2log = new int[shape.Experts];
        private readonly int[] _mlogCount = new int[shape.Experts];
        private readonly float[] _nodeWeight = new float[shape.ExpertsPerNode];
        private readonly int[] _phy2mlog = new int[shape.ReplicasPerNode];
        private readonly int[] _phyRank = new int[shape.ReplicasPerNode];
        private readonly float[] _phyWeight = new float[shape.ReplicasPerNode];
        private readonly int[] _packIndex = new int[shape.ReplicasPerNode];
        private readonly int[] _rankInPack = new int[shape.ReplicasPerNode];
        private readonly SortEntry[] _sorted = new SortEntry[Math.Max(shape.ReplicasPerNode, shape.Groups)];
        private readonly ulong[] _replicaTree = new ulong[MinTree.Length(shape.ExpertsPerNode)];
        private readonly ulong[] _packTree = new ulong[MinTree.Length(Math.Max(shape.Nodes, shape.DevicesPerNode))];
        private readonly float[] _packWeight = new float[Math.Max(shape.Nodes, shape.DevicesPerNode)];
        private readonly int[] _packFill = new int[Math.Max(shape.Nodes, shape.DevicesPerNode)];

        /// <summary>Fills the three outputs; returns the number of co-located replicas.</summary>
        public int Run(ReadOnlySpan<double> load, Span<int> phy2log, Span<int> phyRank, Span<int> logCount)
        {
            var colocated = 0;
            for (var layer = 0; layer < _s.Layers; layer++)
            {
                var row = load.Slice(layer * _s.Experts, _s.Experts);
                for (var e = 0; e < _s.Experts; e++)
                {
                    _weight[e] = (float)row[e];
                }

                PackGroupsToNodes();
                for (var node = 0; node < _s.Nodes; node++)
                {
                    colocated += PlaceNode(node, phy2log.Slice((layer * _s.Replicas) + (node * _s.ReplicasPerNode), _s.ReplicasPerNode), phyRank.Slice((layer * _s.Replicas) + (node * _s.ReplicasPerNode), _s.ReplicasPerNode));
                }

                var counts = logCount.Slice(layer * _s.Experts, _s.Experts);
                for (var e = 0; e < _s.Experts; e++)
                {
                    counts[e] = _mlogCount[_log2mlog[e]];
                }
            }

            return colocated;
        }

        // Step 1: groups -> nodes; node n owns "node-local" experts [n * E/N, (n + 1) * E/N) in group-pack order.
        private void PackGroupsToNodes()
        {
            var size = _s.GroupSize;
            for (var g = 0; g < _s.Groups; g++)
            {
                var sum = 0.0;
                for (var k = 0; k < size; k++)
                {
                    sum += _weight[(g * size) + k];
                }

                _groupWeight[g] = (float)sum;
            }

            BalancedPacking(_groupWeight, _s.Nodes, _groupPack, _groupRank, _sorted, _packTree, _packWeight, _packFill);
            for (var g = 0; g < _s.Groups; g++)
            {
                var baseId = ((_groupPack[g] * _s.GroupsPerNode) + _groupRank[g]) * size;
                for (var k = 0; k < size; k++)
                {
                    _log2mlog[(g * size) + k] = baseId + k;
                    _mlog2log[baseId + k] = (g * size) + k;
                }
            }
        }

        // Steps 2 and 3 for one node: replicate its experts, pack the replicas onto its devices. Returns how many
        // slots hold an expert that already has a replica on the same device.
        private int PlaceNode(int node, Span<int> phy2log, Span<int> phyRank)
        {
            var perNode = _s.ExpertsPerNode;
            var offset = node * perNode;
            for (var j = 0; j < perNode; j++)
            {
                _nodeWeight[j] = _weight[_mlog2log[offset + j]];
            }

            var count = _mlogCount.AsSpan(offset, perNode);
            ReplicateExperts(_nodeWeight, _phy2mlog, _phyRank, count, _replicaTree);

            for (var i = 0; i < _phy2mlog.Length; i++)
            {
                var m = _phy2mlog[i];
                _phyWeight[i] = _nodeWeight[m] / count[m];
            }

            BalancedPacking(_phyWeight, _s.DevicesPerNode, _packIndex, _rankInPack, _sorted, _packTree, _packWeight, _packFill);
            var slots = _s.SlotsPerDevice;
            for (var i = 0; i < _phy2mlog.Length; i++)
            {
                var p = (_packIndex[i] * slots) + _rankInPack[i];
                phy2log[p] = _mlog2log[offset + _phy2mlog[i]];
                phyRank[p] = _phyRank[i];
            }

            var colocated = 0;
            for (var start = 0; start < phy2log.Length; start += slots)
            {
                for (var k = 1; k < slots; k++)
                {
                    var e = phy2log[start + k];
                    for (var j = start; j < start + k; j++)
                    {
                        if (phy2log[j] == e)
                        {
                            colocated++;
                            break;
                        }
                    }
                }
            }

            return colocated;
        }
    }
}


/// <summary>
/// What <see cref="Eplb.Rebalance(LoadMatrix, Topology, int)"/> returns, as the reference returns it:
/// the placement (<c>phy2log</c>), each slot's replica rank and each expert's replica count (<c>logcnt</c>).
/// </summary>
public sealed class EplbResult
{
    private readonly int[] _replicaRank;
    private readonly int[] _logicalCount;

    internal EplbResult(Placement placement, int[] replicaRank, int[] logicalCount, bool hierarchical, int colocatedReplicas)
    {
        Placement = placement;
        _replicaRank = replicaRank;
        _logicalCount = logicalCount;
        Hierarchical = hierarchical;
        ColocatedReplicas = colocatedReplicas;
    }

    /// <summary>phy2log: the logical expert in each physical slot (device-major), every slot filled.</summary>
    public Placement Placement { get; }

    /// <summary>True when the hierarchical policy ran (groups % nodes == 0); false for the global one.</summary>
    public bool Hierarchical { get; }

    /// <summary>Replica rank of each slot's expert, [layers, slots] row-major (the reference's <c>phyrank</c>).</summary>
    public ReadOnlySpan<int> ReplicaRank => _replicaRank;

    /// <summary>Replica count of each logical expert, [layers, experts] row-major (the reference's <c>logcnt</c>).</summary>
    public ReadOnlySpan<int> LogicalCount => _logicalCount;

    /// <summary>
    /// Slots whose expert already has a replica on the same device, summed over layers. EPLB does not prevent this;
    /// such a placement is valid only with co-located replicas allowed.
    /// </summary>
    public int ColocatedReplicas { get; }

    /// <summary>
    /// The reference's <c>log2phy</c>: [layers, experts, X] row-major with X = the largest replica count; entry r of
    /// expert e is the slot of its replica of rank r, -1 past its count.
    /// </summary>
    public (int[] Values, int MaxReplicas) Log2Phy()
    {
        var max = 1;
        foreach (var c in _logicalCount)
        {
            max = Math.Max(max, c);
        }

        var experts = Placement.LogicalExperts;
        var slots = Placement.Slots;
        var values = new int[Placement.Layers * experts * max];
        Array.Fill(values, -1);
        var phy2log = Placement.Phy2Log;
        for (var i = 0; i < phy2log.Length; i++)
        {
            var layer = i / slots;
            values[((((layer * experts) + phy2log[i]) * max)) + _replicaRank[i]] = i % slots;
        }

        return (values, max);
    }
}
