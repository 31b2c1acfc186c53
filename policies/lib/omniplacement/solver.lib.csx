// OmniPlacement, the per-layer solver: its state, loading a layer, starting from a row, measuring.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;
using ExpertBridge.Core;

/// <summary>
/// The per-layer optimiser. Holds one layer's scenario loads and placement state in flat arrays sized once per
/// rebalance, and scores an operation from the devices it touches only. Scenario 0 is the prediction; 1..K the
/// chunk means. The objective is the weighted scenario peaks (or the percentile form), plus the comm term, plus a
/// tiny sum-of-squares tie-breaker that lets the search leave a plateau where two devices share the peak.
/// </summary>
internal sealed partial class OmniLayerSolver
{
    private const double TieWeight = 1e-3;
    private const int ReceiverCount = 8;
    private const int KickAttempts = 6;
    private const int KickFailures = 1;
    private const int KickRepairs = 6;
    private const double PolishKickAbove = 1.1;
    private const double FirstPhaseKickAbove = 1.06;

    private readonly int _e;
    private readonly int _d;
    private readonly int _s;
    private int _k1;                     // the scenarios scored now: all of them, or 1 in a search's first phase
    private readonly int _scenarioRows;  // scenarios + 1
    private readonly int _nodes;
    private readonly int _devicesPerNode;
    private readonly int _groups;
    private readonly double[] _w;
    private readonly bool _percentile;
    private readonly int _quantileRank;
    private readonly double _commWeight;
    private readonly bool _affinity;
    private readonly int _maxIterations;

    // Layer inputs.
    private readonly double[] _load;     // [k1 * e] per-step load of each expert in each scenario
    private readonly double[] _uw;       // [e] scenario-weighted load
    private readonly int[] _home;        // [e] home node of the expert's group (affinity), else -1
    private readonly double[] _commCost;     // [e] NodeCommCost on a node other than the expert's home
    private readonly double[] _commHomeCost; // [e] NodeCommCost on its home node (the same without group affinity)
    private double _heaviest;            // the highest predicted expert load
    private double _bestEp;
    private double _slack;
    private double _predictedMean;

    // Placement state.
    private readonly int[] _row;         // [d * s]
    private readonly int[] _cnt;         // [e]
    private readonly double[] _share;    // [k1 * e] load / replicas
    private readonly byte[] _onDevice;   // [e * d] replicas of e on device d (0 or 1 when valid)
    private readonly int[] _nodeCnt;     // [e * nodes]
    private readonly double[] _dev;      // [k1 * d]
    private readonly double[] _devW;     // [d]
    private readonly int[] _order;       // [k1 * d] devices by load, descending, per scenario
    private bool _newLayer;              // the orders are still another layer's (SortOrders)
    private readonly double[] _peak;     // [k1]
    private int _used;
    private double _objective;

    // Scratch.
    private readonly int[] _mark;
    private int _stamp;
    private readonly int[] _touchIndex;
    private readonly int[] _touched;
    private readonly double[] _touchDelta; // [d * k1]
    private int _touchCount;
    private OpKind _touchedKind;          // the operation the touched deltas belong to (TouchFor), None if unknown
    private int _touchedExpert;
    private int _touchedSlot;
    private readonly double[] _newPeak;
    private readonly double[] _sortScratch;
    private readonly int[] _repHead;
    private readonly int[] _repNext;
    private readonly int[] _spare;
    private readonly ulong[] _redundantBits; // [slots / 64] slots of experts with two or more replicas (BuildSpareSlots)
    private readonly ulong[] _emptyBits;     // [slots / 64] empty slots
    private readonly double[] _spareBase;
    private readonly double[] _spareSiblings;
    private int _spareCount;
    private bool _spareValid;
    private int _spareFrozenA;
    private int _spareFrozenB;
    private int _spareAllowance;
    private int _firstLevels = -1;
    private bool _lowSet;                 // GainBound: a lower bound on the touched devices' highest new level is given
    private readonly double[] _lowLevel;  // [k1] that bound per scenario
    private readonly double[] _restLevel;
    private readonly int[] _srcDevice = new int[2];
    private readonly int[] _srcScenario = new int[2];
    private readonly int[] _srcReceivers = new int[2];
    private readonly bool[] _srcSlotsReady = new bool[2];
    private double _floor;
    private readonly Candidate[] _cKind;  // the candidate table of FindBest: kind, bound (-infinity once taken), source, ...
    private readonly double[] _cBound;
    private readonly int[] _cSource;
    private readonly int[] _cX;
    private readonly int[] _cSlot;
    private readonly int[] _cPartner;
    private readonly int[] _cIndex;
    private int _candidates;
    private readonly int[] _live;
    private int _liveCount;
    private double _liveSplit;
    private int _sortedStage;
    private int _frozenA = -1;
    private int _frozenB = -1;
    private readonly int[] _items;
    private readonly double[] _itemKeys;
    private readonly int[] _snapshot;
    private readonly int[] _searchStart;
    private readonly int[] _fill;
    private readonly double[] _fillLoad;
    private readonly int[] _recvDevice;
    private readonly double[] _recvGap;
    private readonly double[] _recvLoad;
    private readonly int[] _recvStart;
    private readonly int[] _recvSlot;
    private readonly double[] _recvShare;
    private readonly int[] _rowCount;     // MeasureRow: replicas per expert; CrossNodeShare: nodes per expert
    private readonly int[] _rowDevice;    // MeasureRow: last device seen holding each expert; CrossNodeShare: last node
    private readonly double[] _remoteShare; // [nodes + 1] share of an expert's tokens sent off-node when n nodes hold it

    public OmniLayerSolver(Topology topology, int experts, int scenarios, OmniPlacementSettings settings, int groups)
    {
        _e = experts;
        _d = topology.Devices;
        _s = topology.SlotsPerDevice;
        _nodes = topology.Nodes;
        _devicesPerNode = topology.DevicesPerNode;
        _k1 = scenarios + 1;
        _scenarioRows = _k1;
        _w = new double[_k1];
        var robust = scenarios > 0 ? settings.RobustWeight : 0;
        _w[0] = 1 - robust;
        for (var k = 1; k < _k1; k++)
        {
            _w[k] = robust / scenarios;
        }

        _percentile = settings.Objective == OmniObjective.Percentile && scenarios > 0;
        _quantileRank = Math.Clamp((int)Math.Ceiling(settings.Percentile / 100.0 * scenarios) - 1, 0, Math.Max(0, scenarios - 1));
        _commWeight = _nodes > 1 ? settings.CommWeight : 0;
        _groups = groups;
        _affinity = settings.GroupAffinity && _nodes > 1 && groups > 1 && experts % groups == 0 && groups % _nodes == 0;
        ReplicaCap = Math.Min(_d, settings.MaxReplicas > 0 ? settings.MaxReplicas : _d);
        var slots = _d * _s;
        _maxIterations = settings.MaxIterations > 0 ? settings.MaxIterations : 2 * slots;

        _load = new double[_k1 * _e];
        _uw = new double[_e];
        _home = new int[_e];
        _commCost = new double[_e];
        _commHomeCost = new double[_e];
        _row = new int[slots];
        _cnt = new int[_e];
        _share = new double[_k1 * _e];
        _onDevice = new byte[_e * _d];
        _nodeCnt = new int[_e * _nodes];
        _dev = new double[_k1 * _d];
        _devW = new double[_d];
        _order = new int[_k1 * _d];
        for (var i = 0; i < _order.Length; i++)
        {
            _order[i] = i % _d;
        }

        _peak = new double[_k1];
        _mark = new int[_d];
        _touchIndex = new int[_d];
        _touched = new int[_d];
        _touchDelta = new double[_d * _k1];
        _newPeak = new double[_k1];
        _lowLevel = new double[_k1];
        _restLevel = new double[_k1];
        _sortScratch = new double[_k1];
        _repHead = new int[_e];
        _repNext = new int[slots];
        _spare = new int[slots];
        _redundantBits = new ulong[(slots + 63) / 64];
        _emptyBits = new ulong[(slots + 63) / 64];
        _spareBase = new double[slots];
        _spareSiblings = new double[slots];
        _live = new int[slots];
        _items = new int[slots];
        _itemKeys = new double[slots];
        _snapshot = new int[slots];
        _searchStart = new int[slots];
        _fill = new int[_d];
        _fillLoad = new double[_d];
        _recvDevice = new int[2 * ReceiverCount];
        _recvGap = new double[2 * ReceiverCount];
        _recvLoad = new double[2 * ReceiverCount];
        _recvStart = new int[2 * (ReceiverCount + 1)];
        _recvSlot = new int[2 * ReceiverCount * _s];
        _recvShare = new double[2 * ReceiverCount * _s];
        _rowCount = new int[_e];
        _rowDevice = new int[_e];
        _remoteShare = new double[_nodes + 1];
        for (var n = 0; n <= _nodes; n++)
        {
            _remoteShare[n] = 1.0 - ((double)n / _nodes);
        }

        var candidates = 2 * _s * 5;
        _cKind = new Candidate[candidates];
        _cBound = new double[candidates];
        _cSource = new int[candidates];
        _cX = new int[candidates];
        _cSlot = new int[candidates];
        _cPartner = new int[candidates];
        _cIndex = new int[candidates];
    }

    /// <summary>Replicas per expert at most.</summary>
    public int ReplicaCap { get; }

    /// <summary>The layer's perfectly balanced per-device load (scenario-weighted).</summary>
    public double BestEp => _bestEp;

    /// <summary>Predicted imbalance of the state: the prediction's busiest device over its mean (1 = balanced).</summary>
    public double PredictedImbalance => _predictedMean > 0 ? _peak[0] / _predictedMean : 1.0;

    /// <summary>The row the search arrived at.</summary>
    public ReadOnlySpan<int> Row => _row;

    /// <summary>The balance objective of the state (weighted scenario peaks).</summary>
    public double Objective => _objective;

    /// <summary>Scenario-weighted load of expert <paramref name="e"/> of <paramref name="layer"/>.</summary>
    public double WeightedLoad(OmniLoadSignals signals, int layer, int e)
    {
        var size = signals.Layers * signals.Experts;
        var index = (layer * _e) + e;
        var v = _w[0] * signals.Predicted[index];
        for (var k = 1; k < _k1; k++)
        {
            v += _w[k] * signals.Chunks[((k - 1) * size) + index];
        }

        return v;
    }

    /// <summary>Copies layer <paramref name="layer"/>'s scenario loads in and derives group home nodes.</summary>
    public void LoadLayer(OmniLoadSignals signals, int layer)
    {
        _spareValid = false;
        var size = signals.Layers * signals.Experts;
        var offset = layer * _e;
        var predicted = LoadPredicted(signals, layer);
        for (var k = 1; k < _k1; k++)
        {
            var src = signals.Chunks.AsSpan(((k - 1) * size) + offset, _e);
            for (var e = 0; e < _e; e++)
            {
                _load[(k * _e) + e] = src[e];
            }
        }

        double total = 0;
        _heaviest = 0;
        for (var e = 0; e < _e; e++)
        {
            _heaviest = Math.Max(_heaviest, _load[e]);
            double v = 0;
            for (var k = 0; k < _k1; k++)
            {
                v += _w[k] * _load[(k * _e) + e];
            }

            _uw[e] = v;
            total += v;
        }

        _bestEp = total / _d;
        _slack = 1e-9 * Math.Max(_bestEp, 1e-12);
        _predictedMean = predicted / _d;
        _newLayer = true;
        AssignGroupHomes();
        if (_commWeight > 0)
        {
            SetCommCosts();
        }
    }

    /// <summary>Groups onto nodes by LPT of group load, G / N groups per node (as EPLB's hierarchical step 1).</summary>
    private void AssignGroupHomes()
    {
        Array.Fill(_home, -1);
        if (!_affinity)
        {
            return;
        }

        var perGroup = _e / _groups;
        var perNode = _groups / _nodes;
        var groupLoad = new double[_groups];
        var order = new int[_groups];
        for (var g = 0; g < _groups; g++)
        {
            order[g] = g;
            for (var e = g * perGroup; e < (g + 1) * perGroup; e++)
            {
                groupLoad[g] += _uw[e];
            }
        }

        Array.Sort(order, (a, b) => groupLoad[b] != groupLoad[a] ? groupLoad[b].CompareTo(groupLoad[a]) : a.CompareTo(b));
        var nodeLoad = new double[_nodes];
        var nodeCount = new int[_nodes];
        foreach (var g in order)
        {
            var best = -1;
            for (var n = 0; n < _nodes; n++)
            {
                if (nodeCount[n] < perNode && (best < 0 || nodeLoad[n] < nodeLoad[best]))
                {
                    best = n;
                }
            }

            nodeLoad[best] += groupLoad[g];
            nodeCount[best]++;
            for (var e = g * perGroup; e < (g + 1) * perGroup; e++)
            {
                _home[e] = best;
            }
        }
    }

    /// <summary>Loads <paramref name="row"/> as the state; false when it breaks a rule the search relies on.</summary>
    public bool StartFromRow(ReadOnlySpan<int> row)
    {
        _spareValid = false;
        Array.Clear(_cnt);
        Array.Clear(_onDevice);
        Array.Clear(_nodeCnt);
        var valid = true;
        _used = 0;
        for (var device = 0; device < _d; device++)
        {
            var node = device / _devicesPerNode;
            for (var slot = device * _s; slot < (device + 1) * _s; slot++)
            {
                var x = row[slot];
                _row[slot] = x;
                if (x < 0)
                {
                    valid &= x == -1;
                    _row[slot] = -1;
                    continue;
                }

                if (x >= _e)
                {
                    valid = false;
                    _row[slot] = -1;
                    continue;
                }

                valid &= _onDevice[(x * _d) + device] == 0;
                _onDevice[(x * _d) + device]++;
                _nodeCnt[(x * _nodes) + node]++;
                _cnt[x]++;
                _used++;
            }
        }

        foreach (var c in _cnt)
        {
            valid &= c > 0 && c <= ReplicaCap;
        }

        UpdateShares();
        BuildReplicaLists();
        Recompute();
        return valid;
    }

    /// <summary>
    /// Puts back <paramref name="row"/>, a valid row that differs from the state in a few slots (a rolled-back kick's
    /// chain or two-phase search), leaving the state exactly as <see cref="StartFromRow"/> of it would: <see cref="Write"/> undoes the
    /// counts, shares, replica lists (kept in slot order) and spare-slot sets of the changed slots only, and
    /// <see cref="Recompute"/> sums the device loads afresh, as StartFromRow does, so that they are the same bits.
    /// </summary>
    private void Restore(ReadOnlySpan<int> row)
    {
        for (var slot = 0; slot < _row.Length; slot++)
        {
            if (_row[slot] != row[slot])
            {
                Write(slot, row[slot], null);
            }
        }

        Recompute();
    }

    /// <summary>Loads layer <paramref name="layer"/>'s predicted per-expert loads (scenario 0); returns their sum, in expert order.</summary>
    private double LoadPredicted(OmniLoadSignals signals, int layer)
    {
        var offset = layer * _e;
        double predicted = 0;
        for (var e = 0; e < _e; e++)
        {
            _load[e] = signals.Predicted[offset + e];
            predicted += _load[e];
        }

        return predicted;
    }

    /// <summary>
    /// The <see cref="PredictedImbalance"/> that <see cref="LoadLayer"/> then <see cref="StartFromRow"/> would give
    /// <paramref name="row"/> of layer <paramref name="layer"/>, bit for bit (the same sums in the same order), or NaN
    /// where StartFromRow would find the row invalid; without the chunk scenarios, shares, orders and replica lists
    /// those build for a search. Loads only the layer's predicted loads, which <see cref="CrossNodeShare"/> and
    /// <see cref="PredictedImbalanceOf"/> read: a search needs LoadLayer and StartFromRow after it.
    /// </summary>
    public double MeasureRow(OmniLoadSignals signals, int layer, ReadOnlySpan<int> row)
    {
        var predicted = LoadPredicted(signals, layer);

        Array.Clear(_rowCount);
        Array.Fill(_rowDevice, -1);
        for (var device = 0; device < _d; device++)
        {
            for (var slot = device * _s; slot < (device + 1) * _s; slot++)
            {
                var x = row[slot];
                if (x < 0 ? x != -1 : x >= _e || _rowDevice[x] == device)
                {
                    return double.NaN; // not an expert, or two replicas of one expert on a device
                }

                if (x >= 0)
                {
                    _rowDevice[x] = device;
                    _rowCount[x]++;
                }
            }
        }

        foreach (var c in _rowCount)
        {
            if (c == 0 || c > ReplicaCap)
            {
                return double.NaN;
            }
        }

        var peak = double.NegativeInfinity;
        for (var device = 0; device < _d; device++)
        {
            var load = 0.0;
            for (var slot = device * _s; slot < (device + 1) * _s; slot++)
            {
                var x = row[slot];
                if (x >= 0)
                {
                    load += _load[x] / _rowCount[x];
                }
            }

            peak = Math.Max(peak, load);
        }

        var mean = predicted / _d;
        return mean > 0 ? peak / mean : 1.0;
    }

    /// <summary>Predicted (scenario 0) max / mean device load of <paramref name="row"/>, whatever its validity.</summary>
    public double PredictedImbalanceOf(ReadOnlySpan<int> row)
    {
        var counts = new int[_e];
        foreach (var x in row)
        {
            if ((uint)x < (uint)_e)
            {
                counts[x]++;
            }
        }

        var loads = new double[_d];
        double total = 0;
        for (var e = 0; e < _e; e++)
        {
            total += _load[e];
        }

        for (var slot = 0; slot < row.Length; slot++)
        {
            var x = row[slot];
            if ((uint)x < (uint)_e)
            {
                loads[slot / _s] += _load[x] / counts[x];
            }
        }

        double max = 0;
        foreach (var v in loads)
        {
            max = Math.Max(max, v);
        }

        return total > 0 ? max * _d / total : 1.0;
    }

    /// <summary>Cross-node dispatch share of <paramref name="row"/> under the predicted load.</summary>
    public double CrossNodeShare(ReadOnlySpan<int> row)
    {
        if (_nodes <= 1)
        {
            return 0;
        }

        // Per expert, the nodes holding it: the slots are read device by device, so nodes come in ascending order and
        // an expert is on a new node when the last node seen holding it is another one.
        Array.Clear(_rowCount);
        Array.Fill(_rowDevice, -1);
        for (var device = 0; device < _d; device++)
        {
            var node = device / _devicesPerNode;
            for (var slot = device * _s; slot < (device + 1) * _s; slot++)
            {
                var x = row[slot];
                if ((uint)x < (uint)_e && _rowDevice[x] != node)
                {
                    _rowDevice[x] = node;
                    _rowCount[x]++;
                }
            }
        }

        double total = 0, remote = 0;
        for (var e = 0; e < _e; e++)
        {
            total += _load[e];
            remote += _load[e] * _remoteShare[_rowCount[e]];
        }

        return total > 0 ? remote / total : 0;
    }
}
