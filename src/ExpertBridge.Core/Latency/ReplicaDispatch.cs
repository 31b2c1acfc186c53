namespace ExpertBridge.Core.Latency;

/// <summary>How a serving engine's dispatch splits one step's tokens of a replicated expert over its replicas.</summary>
public enum ReplicaDispatch
{
    /// <summary>
    /// Each replica serves an equal share (what EPLB plans for, and what random or round-robin replica choice gives
    /// in expectation: vLLM, SGLang's <c>static</c> and <c>dynamic</c> dispatch).
    /// </summary>
    Even,

    /// <summary>
    /// Per step and layer, the whole-token split that minimises the busiest device's routed tokens, given that step's
    /// counts (a linear program over the replicas, as DeepSeek's LPLB and SGLang's <c>lp</c> dispatch solve on the
    /// GPU each step). Solved exactly here as a bottleneck flow: see <see cref="ReplicaSplitter"/>.
    /// </summary>
    Balanced,
}

/// <summary>
/// Splits one layer's per-expert token counts over a placement's physical slots, under a <see cref="ReplicaDispatch"/>.
/// <para>
/// <see cref="ReplicaDispatch.Balanced"/>: experts with replicas on one device only are fixed load on that device;
/// the others are the flow. The smallest busiest-device load L is found by binary search over whole tokens, each
/// candidate checked by a maximum flow (Dinic) from the source through the replicated experts (capacity: their
/// tokens) to the devices holding them and on to the sink (capacity: L minus the device's fixed load); the flow of the
/// smallest feasible L is the split. Tokens of an expert are its count rounded to a whole number. Replicas of one
/// expert on the same device share that device's part evenly.
/// </para>
/// Not thread-safe: the scratch buffers belong to the instance.
/// </summary>
public sealed class ReplicaSplitter
{
    private int[] _replicas = [];
    private long[] _base = [];
    private int[] _variable = [];      // expert -> flow node index, or -1
    private int[] _variableExpert = []; // flow node index -> expert
    private int[] _seen = [];
    private int[] _home = [];          // expert -> the one device all its replicas sit on, or Spread
    private int _variableCount;
    private const int Spread = -2;
    private readonly Graph _graph = new();

    public ReplicaSplitter(ReplicaDispatch dispatch)
    {
        Dispatch = dispatch;
    }

    public ReplicaDispatch Dispatch { get; }

    /// <summary>
    /// Fills <paramref name="slotTokens"/> (one value per slot of <paramref name="row"/>) with the tokens each slot
    /// serves. <paramref name="integral"/> asks for whole tokens under <see cref="ReplicaDispatch.Even"/> too (the
    /// first replicas take the remainder); <see cref="ReplicaDispatch.Balanced"/> always gives whole tokens.
    /// </summary>
    public void Split(Topology topology, ReadOnlySpan<int> row, ReadOnlySpan<float> counts, Span<double> slotTokens, bool integral = false)
    {
        ArgumentNullException.ThrowIfNull(topology);
        if (row.Length != topology.Slots || slotTokens.Length != row.Length)
        {
            throw new ArgumentException($"expected {topology.Slots} slots, got a row of {row.Length} and {slotTokens.Length} outputs");
        }

        CountReplicas(row, counts.Length);
        if (Dispatch == ReplicaDispatch.Balanced)
        {
            SplitBalanced(topology, row, counts, slotTokens);
        }
        else
        {
            SplitEven(row, counts, slotTokens, integral);
        }
    }

    private void CountReplicas(ReadOnlySpan<int> row, int experts)
    {
        if (_replicas.Length != experts)
        {
            _replicas = new int[experts];
            _variable = new int[experts];
            _variableExpert = new int[experts];
            _seen = new int[experts];
            _home = new int[experts];
        }

        Placement.CountReplicas(row, _replicas);
    }

    private void SplitEven(ReadOnlySpan<int> row, ReadOnlySpan<float> counts, Span<double> slotTokens, bool integral)
    {
        Array.Clear(_seen);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e < 0)
            {
                slotTokens[s] = 0;
            }
            else if (!integral)
            {
                slotTokens[s] = counts[e] / (double)_replicas[e];
            }
            else
            {
                slotTokens[s] = WholeShare(Whole(counts[e]), _replicas[e], _seen[e]++);
            }
        }
    }

    private void SplitBalanced(Topology topology, ReadOnlySpan<int> row, ReadOnlySpan<float> counts, Span<double> slotTokens)
    {
        var devices = topology.Devices;
        if (_base.Length != devices)
        {
            _base = new long[devices];
        }

        Array.Clear(_base);
        Array.Fill(_variable, -1);

        // Experts whose replicas all sit on one device are fixed load there; the rest become flow nodes.
        Array.Fill(_home, -1);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e >= 0)
            {
                var d = topology.DeviceOf(s);
                _home[e] = _home[e] == -1 || _home[e] == d ? d : Spread;
            }
        }

        var variables = 0;
        long flowTokens = 0;
        for (var e = 0; e < counts.Length; e++)
        {
            if (_home[e] == Spread && Whole(counts[e]) > 0)
            {
                _variable[e] = variables;
                _variableExpert[variables++] = e;
                flowTokens += Whole(counts[e]);
            }
        }

        // A fixed expert's tokens count once, on the device of its replicas (however many sit there).
        Array.Clear(_seen);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e >= 0 && _variable[e] < 0 && _seen[e]++ == 0)
            {
                _base[topology.DeviceOf(s)] += Whole(counts[e]);
            }
        }

        _variableCount = variables;
        if (variables > 0)
        {
            Solve(topology, row, counts, variables, flowTokens);
        }

        Assign(topology, row, counts, slotTokens);
    }

    // Builds the flow network and finds the smallest feasible busiest-device load; leaves that flow in the graph.
    private void Solve(Topology topology, ReadOnlySpan<int> row, ReadOnlySpan<float> counts, int variables, long flowTokens)
    {
        var devices = topology.Devices;
        long fixedTotal = 0, fixedMax = 0;
        foreach (var b in _base)
        {
            fixedTotal += b;
            fixedMax = Math.Max(fixedMax, b);
        }

        // Nodes: 0 source, 1 sink, 2.. the replicated experts, then the devices.
        var deviceNode = 2 + variables;
        _graph.Reset(deviceNode + devices);
        for (var v = 0; v < variables; v++)
        {
            _graph.Add(0, 2 + v, Whole(counts[_variableExpert[v]]));
        }

        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e >= 0 && _variable[e] >= 0)
            {
                var d = topology.DeviceOf(s);
                if (!_graph.HasEdge(2 + _variable[e], deviceNode + d))
                {
                    _graph.Add(2 + _variable[e], deviceNode + d, Whole(counts[e]));
                }
            }
        }

        var sinkEdges = _graph.EdgeCount;
        for (var d = 0; d < devices; d++)
        {
            _graph.Add(deviceNode + d, 1, 0);
        }

        // Feasible bounds: the even load over all devices (rounded up) from below, everything on the busiest device
        // plus every replicated expert's tokens from above.
        var lo = Math.Max(fixedMax, (fixedTotal + flowTokens + devices - 1) / devices);
        var hi = fixedMax + flowTokens;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo) / 2);
            if (Feasible(mid, sinkEdges, devices, flowTokens))
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        if (!Feasible(lo, sinkEdges, devices, flowTokens))
        {
            throw new InvalidOperationException($"no feasible split at the busiest-device load {lo}: the upper bound is always feasible");
        }
    }

    private bool Feasible(long level, int sinkEdges, int devices, long flowTokens)
    {
        _graph.ClearFlow();
        for (var d = 0; d < devices; d++)
        {
            _graph.SetCapacity(sinkEdges + (2 * d), level - _base[d]);
        }

        return _graph.MaxFlow(0, 1) == flowTokens;
    }

    // Writes the slot tokens: fixed experts split evenly (whole tokens), replicated ones by the flow into each device,
    // shared evenly by that expert's replicas on the device.
    private void Assign(Topology topology, ReadOnlySpan<int> row, ReadOnlySpan<float> counts, Span<double> slotTokens)
    {
        Array.Clear(_seen);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e < 0)
            {
                slotTokens[s] = 0;
                continue;
            }

            long total;
            int sharers, index;
            if (_variable[e] < 0)
            {
                (total, sharers, index) = (Whole(counts[e]), _replicas[e], _seen[e]++);
            }
            else
            {
                var d = topology.DeviceOf(s);
                total = _graph.FlowOn(2 + _variable[e], 2 + _variableCount + d);
                (sharers, index) = ReplicasOnDevice(topology, row, e, d, s);
            }

            slotTokens[s] = WholeShare(total, sharers, index);
        }
    }

    private static (int Count, int Index) ReplicasOnDevice(Topology topology, ReadOnlySpan<int> row, int expert, int device, int slot)
    {
        int count = 0, index = 0;
        for (var k = 0; k < topology.SlotsPerDevice; k++)
        {
            var s = topology.SlotOf(device, k);
            if (row[s] == expert)
            {
                index = s < slot ? index + 1 : index;
                count++;
            }
        }

        return (count, index);
    }

    private static long Whole(float count) => count <= 0 ? 0 : (long)Math.Round(count);

    // The index-th of `sharers` equal whole-token shares of `total`: the first ones take the remainder.
    private static long WholeShare(long total, int sharers, int index) => (total / sharers) + (index < total % sharers ? 1 : 0);

    /// <summary>A small flow network with Dinic's maximum flow; edges are stored in pairs (forward, reverse).</summary>
    private sealed class Graph
    {
        private int _nodes;
        private int[] _head = [];
        private int[] _level = [];
        private int[] _cursor = [];
        private int[] _queue = [];
        private readonly List<int> _to = [];
        private readonly List<int> _next = [];
        private readonly List<long> _capacity = [];
        private readonly List<long> _flow = [];

        public int EdgeCount => _to.Count;

        public void Reset(int nodes)
        {
            _nodes = nodes;
            if (_head.Length < nodes)
            {
                _head = new int[nodes];
                _level = new int[nodes];
                _cursor = new int[nodes];
                _queue = new int[nodes];
            }

            Array.Fill(_head, -1, 0, nodes);
            _to.Clear();
            _next.Clear();
            _capacity.Clear();
            _flow.Clear();
        }

        public void Add(int from, int to, long capacity)
        {
            Push(from, to, capacity);
            Push(to, from, 0);
        }

        public bool HasEdge(int from, int to) => ForwardEdge(from, to) >= 0;

        public void SetCapacity(int edge, long capacity) => _capacity[edge] = Math.Max(0, capacity);

        public void ClearFlow()
        {
            for (var e = 0; e < _flow.Count; e++)
            {
                _flow[e] = 0;
            }
        }

        public long FlowOn(int from, int to) => ForwardEdge(from, to) is var e and >= 0 ? _flow[e] : 0;

        public long MaxFlow(int source, int sink)
        {
            long total = 0;
            while (Levels(source, sink))
            {
                Array.Copy(_head, _cursor, _nodes);
                long pushed;
                while ((pushed = Augment(source, sink, long.MaxValue)) > 0)
                {
                    total += pushed;
                }
            }

            return total;
        }

        // The forward edge from -> to (edges come in pairs: forward even, reverse odd), or -1.
        private int ForwardEdge(int from, int to)
        {
            for (var e = _head[from]; e >= 0; e = _next[e])
            {
                if (_to[e] == to && (e & 1) == 0)
                {
                    return e;
                }
            }

            return -1;
        }

        private void Push(int from, int to, long capacity)
        {
            _to.Add(to);
            _next.Add(_head[from]);
            _capacity.Add(capacity);
            _flow.Add(0);
            _head[from] = _to.Count - 1;
        }

        private bool Levels(int source, int sink)
        {
            Array.Fill(_level, -1, 0, _nodes);
            int read = 0, write = 0;
            _level[source] = 0;
            _queue[write++] = source;
            while (read < write)
            {
                var u = _queue[read++];
                for (var e = _head[u]; e >= 0; e = _next[e])
                {
                    var v = _to[e];
                    if (_level[v] < 0 && _capacity[e] - _flow[e] > 0)
                    {
                        _level[v] = _level[u] + 1;
                        _queue[write++] = v;
                    }
                }
            }

            return _level[sink] >= 0;
        }

        private long Augment(int u, int sink, long limit)
        {
            if (u == sink)
            {
                return limit;
            }

            for (; _cursor[u] >= 0; _cursor[u] = _next[_cursor[u]])
            {
                var e = _cursor[u];
                var v = _to[e];
                var residual = _capacity[e] - _flow[e];
                if (residual <= 0 || _level[v] != _level[u] + 1)
                {
                    continue;
                }

                var pushed = Augment(v, sink, Math.Min(limit, residual));
                if (pushed > 0)
                {
                    _flow[e] += pushed;
                    _flow[e ^ 1] -= pushed;
                    return pushed;
                }
            }

            return 0;
        }
    }
}
