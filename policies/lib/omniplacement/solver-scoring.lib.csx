// OmniPlacement, the per-layer solver: gain bounds, exact scoring, applying writes, device orders.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;

internal sealed partial class OmniLayerSolver
{
    /// <summary>
    /// Upper bounds on the gain (minus the objective change) of a swap, a re-replication and a drop, at a fraction of
    /// the exact scoring's cost: candidates whose bound cannot beat the best one found are not scored. Valid for the
    /// peak-sum objective (see <see cref="GainBound"/>).
    /// </summary>
    private double SwapGainBound(int a, int x, int b, int y)
    {
        _stamp++;
        _mark[a] = _stamp;
        _mark[b] = _stamp;
        for (var k = 0; k < _k1; k++)
        {
            var shift = (x >= 0 ? _share[(k * _e) + x] : 0) - (y >= 0 ? _share[(k * _e) + y] : 0);
            _lowLevel[k] = Math.Max(_dev[(k * _d) + a] - shift, _dev[(k * _d) + b] + shift);
        }

        _lowSet = true;
        var comm = a / _devicesPerNode != b / _devicesPerNode ? 2 * ((x >= 0 ? _load[x] : 0) + (y >= 0 ? _load[y] : 0)) : 0;
        return GainBound(_devW[a] + _devW[b], comm);
    }

    /// <summary>The bound for x's new replica in slot j (occupant f), x taken from its replica on device a.</summary>
    private double ReplicateGainBound(int a, int x, int j, int f)
    {
        _stamp++;
        // Lower bounds on the new levels: a (f may add to it), the receiving device b, f's other replicas.
        var c = _cnt[x];
        var b = j / _s;
        for (var k = 0; k < _k1; k++)
        {
            var load = _load[(k * _e) + x];
            _lowLevel[k] = Math.Max(
                _dev[(k * _d) + a] + ((load / (c + 1)) - (load / c)),
                _dev[(k * _d) + b] - (f >= 0 ? _share[(k * _e) + f] : 0) + (load / (c + 1)));
        }

        if (f >= 0)
        {
            var cf = _cnt[f];
            for (var slot = _repHead[f]; slot >= 0; slot = _repNext[slot])
            {
                if (slot != j)
                {
                    var d = slot / _s;
                    var holdsX = _onDevice[(x * _d) + d] != 0;
                    for (var k = 0; k < _k1; k++)
                    {
                        var load = _load[(k * _e) + f];
                        var level = _dev[(k * _d) + d] + ((load / (cf - 1)) - (load / cf));
                        if (holdsX)
                        {
                            var lx = _load[(k * _e) + x];
                            level += (lx / (c + 1)) - (lx / c);
                        }

                        _lowLevel[k] = Math.Max(_lowLevel[k], level);
                    }
                }
            }
        }

        _lowSet = true;
        var weight = MarkReplicas(x);
        if (_mark[b] != _stamp)
        {
            _mark[b] = _stamp;
            weight += _devW[b];
        }

        var comm = _load[x];
        if (f >= 0)
        {
            weight += MarkReplicas(f);
            comm += _load[f];
        }

        return GainBound(weight, comm);
    }

    /// <summary>The bound for dropping x's replica on device a (exact lower bounds on every touched device's level).</summary>
    private double DropGainBound(int a, int x)
    {
        _stamp++;
        for (var k = 0; k < _k1; k++)
        {
            _lowLevel[k] = _dev[(k * _d) + a] - _share[(k * _e) + x];
        }

        var c = _cnt[x];
        for (var slot = _repHead[x]; slot >= 0; slot = _repNext[slot])
        {
            var d = slot / _s;
            if (d != a)
            {
                for (var k = 0; k < _k1; k++)
                {
                    var load = _load[(k * _e) + x];
                    _lowLevel[k] = Math.Max(_lowLevel[k], _dev[(k * _d) + d] + ((load / (c - 1)) - (load / c)));
                }
            }
        }

        _lowSet = true;
        return GainBound(MarkReplicas(x), _load[x]);
    }

    /// <summary>Marks the devices holding <paramref name="x"/>; returns their weighted loads' sum (newly marked only).</summary>
    private double MarkReplicas(int x)
    {
        var weight = 0.0;
        for (var slot = _repHead[x]; slot >= 0; slot = _repNext[slot])
        {
            var d = slot / _s;
            if (_mark[d] != _stamp)
            {
                _mark[d] = _stamp;
                weight += _devW[d];
            }
        }

        return weight;
    }

    /// <summary>
    /// Upper bound on the gain of an operation that changes only the marked devices' loads and keeps each scenario's
    /// total: a scenario's peak falls at most to its busiest unmarked device, and not at all when its peak device is
    /// unmarked; nor below a lower bound on a touched device's new level, when the caller gives one (in
    /// <see cref="_lowLevel"/>, flagged by <see cref="_lowSet"/>, which this resets), and it rises where such a level
    /// exceeds the peak; the tie-breaker falls at most by the marked devices' weighted squares, at most the highest peak times
    /// their weighted loads (<paramref name="markedWeight"/>); the comm term at most by one token share per replica
    /// gained or lost, from <paramref name="commLoad"/>, the predicted load of the experts whose replicas change
    /// (counted once per change).
    /// </summary>
    private double GainBound(double markedWeight, double commLoad)
    {
        var gain = 0.0;
        var highest = 0.0;
        for (var k = 0; k < _k1; k++)
        {
            highest = Math.Max(highest, _peak[k]);
            var p = _order[k * _d];
            if (_mark[p] == _stamp)
            {
                var rest = Math.Max(0, MaxUnmarked(k));
                if (_lowSet)
                {
                    rest = Math.Max(rest, _lowLevel[k]);
                }

                gain += _w[k] * (_peak[k] - rest);
            }
            else if (_lowSet && _lowLevel[k] > _peak[k])
            {
                gain -= _w[k] * (_lowLevel[k] - _peak[k]); // a touched device becomes the new peak
            }
        }

        _lowSet = false;

        var tie = _bestEp > 0 ? TieWeight * highest * markedWeight / (_bestEp * _d) : 0;
        var comm = _commWeight > 0 ? _commWeight * commLoad * ((1.0 / _nodes) + (_affinity ? 1 : 0)) / _d : 0;
        return gain + tie + comm;
    }

    /// <summary>Change in objective when x (on a) and y (on b) trade places; either may be -1 (a move).</summary>
    private double SwapDelta(int a, int x, int b, int y)
    {
        _stamp++;
        _mark[a] = _stamp;
        _mark[b] = _stamp;
        var squares = 0.0;
        for (var k = 0; k < _k1; k++)
        {
            var shift = (x >= 0 ? _share[(k * _e) + x] : 0) - (y >= 0 ? _share[(k * _e) + y] : 0);
            var la = _dev[(k * _d) + a];
            var lb = _dev[(k * _d) + b];
            _newPeak[k] = Math.Max(Math.Max(la - shift, lb + shift), MaxUnmarked(k));
            squares += _w[k] * (Sq(la - shift) - Sq(la) + Sq(lb + shift) - Sq(lb));
        }

        var comm = 0.0;
        if (_commWeight > 0 && a / _devicesPerNode != b / _devicesPerNode)
        {
            var na = a / _devicesPerNode;
            var nb = b / _devicesPerNode;
            if (x >= 0)
            {
                comm += CommChange(x, na, -1) + CommChangeAfter(x, na, nb);
            }

            if (y >= 0)
            {
                comm += CommChange(y, nb, -1) + CommChangeAfter(y, nb, na);
            }
        }

        return Total(squares, comm);
    }

    /// <summary>Change in objective when expert x gets a new replica in slot j, replacing f (or an empty slot).</summary>
    private double ReplicateDelta(int x, int j, int f)
    {
        var b = j / _s;
        BeginTouch();
        var c = _cnt[x];
        for (var slot = _repHead[x]; slot >= 0; slot = _repNext[slot])
        {
            var t = Touch(slot / _s);
            for (var k = 0; k < _k1; k++)
            {
                var load = _load[(k * _e) + x];
                _touchDelta[(t * _k1) + k] += (load / (c + 1)) - (load / c);
            }
        }

        var tb = Touch(b);
        for (var k = 0; k < _k1; k++)
        {
            _touchDelta[(tb * _k1) + k] += _load[(k * _e) + x] / (c + 1);
        }

        var comm = CommChange(x, b / _devicesPerNode, +1);
        if (f >= 0)
        {
            var cf = _cnt[f];
            for (var slot = _repHead[f]; slot >= 0; slot = _repNext[slot])
            {
                var t = Touch(slot / _s);
                var self = slot == j;
                for (var k = 0; k < _k1; k++)
                {
                    var load = _load[(k * _e) + f];
                    _touchDelta[(t * _k1) + k] += self ? -load / cf : (load / (cf - 1)) - (load / cf);
                }
            }

            comm += CommChange(f, b / _devicesPerNode, -1);
        }

        (_touchedKind, _touchedExpert, _touchedSlot) = (OpKind.Replicate, x, j);
        return EvaluateTouched(comm);
    }

    /// <summary>Change in objective when the replica of x in slot i is dropped (its tokens spread over the others).</summary>
    private double DropDelta(int x, int i)
    {
        BeginTouch();
        var c = _cnt[x];
        for (var slot = _repHead[x]; slot >= 0; slot = _repNext[slot])
        {
            var t = Touch(slot / _s);
            for (var k = 0; k < _k1; k++)
            {
                var load = _load[(k * _e) + x];
                _touchDelta[(t * _k1) + k] += slot == i ? -load / c : (load / (c - 1)) - (load / c);
            }
        }

        (_touchedKind, _touchedExpert, _touchedSlot) = (OpKind.Drop, x, i);
        return EvaluateTouched(CommChange(x, i / _s / _devicesPerNode, -1));
    }

    private void BeginTouch()
    {
        _stamp++;
        _touchCount = 0;
        _touchedKind = OpKind.None;
    }

    /// <summary>
    /// Fills the touched devices' load changes of a re-replication or drop, unless the last one scored was that
    /// operation on the state as it is (scored, then applied: <see cref="SortOrders"/> and <see cref="Write"/> forget it).
    /// </summary>
    private void TouchFor(OpKind kind, int x, int slot)
    {
        if (_touchedKind == kind && _touchedExpert == x && _touchedSlot == slot)
        {
            return;
        }

        _ = kind == OpKind.Replicate ? ReplicateDelta(x, slot, _row[slot]) : DropDelta(x, slot);
    }

    private int Touch(int device)
    {
        if (_mark[device] == _stamp)
        {
            return _touchIndex[device];
        }

        _mark[device] = _stamp;
        var t = _touchCount++;
        _touchIndex[device] = t;
        _touched[t] = device;
        for (var k = 0; k < _k1; k++)
        {
            _touchDelta[(t * _k1) + k] = 0;
        }

        return t;
    }

    private double EvaluateTouched(double comm)
    {
        var squares = 0.0;
        for (var t = 0; t < _touchCount; t++)
        {
            var d = _touched[t];
            for (var k = 0; k < _k1; k++)
            {
                var load = _dev[(k * _d) + d];
                squares += _w[k] * (Sq(load + _touchDelta[(t * _k1) + k]) - Sq(load));
            }
        }

        for (var k = 0; k < _k1; k++)
        {
            var m = MaxUnmarked(k);
            for (var t = 0; t < _touchCount; t++)
            {
                m = Math.Max(m, _dev[(k * _d) + _touched[t]] + _touchDelta[(t * _k1) + k]);
            }

            _newPeak[k] = m;
        }

        return Total(squares, comm);
    }

    private double Total(double squares, double comm)
    {
        var objective = BalanceObjective(_newPeak) - _objective;
        var tie = _bestEp > 0 ? TieWeight * squares / (_bestEp * _d) : 0;
        return objective + tie + (_commWeight * comm);
    }

    private double MaxUnmarked(int k)
    {
        var order = _order.AsSpan(k * _d, _d);
        foreach (var d in order)
        {
            if (_mark[d] != _stamp)
            {
                return _dev[(k * _d) + d];
            }
        }

        return double.NegativeInfinity;
    }

    /// <summary>Change in the comm term when expert x gains (+1) or loses (-1) a replica on node n.</summary>
    private double CommChange(int x, int node, int change)
    {
        if (_commWeight <= 0)
        {
            return 0;
        }

        var before = _nodeCnt[(x * _nodes) + node];
        var after = before + change;
        var lost = (before > 0) != (after > 0) ? (after > 0 ? -1 : 1) : 0; // +1: the node no longer has a copy
        return lost * NodeCommCost(x, node);
    }

    /// <summary>
    /// What node n without a copy of expert x adds to the comm term: its tokens of x cross a node (tokens come from
    /// every node), and with group affinity, x away from its group's home node (both values per layer:
    /// <see cref="SetCommCosts"/>).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private double NodeCommCost(int x, int node) => node == _home[x] ? _commHomeCost[x] : _commCost[x];

    /// <summary><see cref="NodeCommCost"/>'s two values per expert, from the layer's predicted loads.</summary>
    private void SetCommCosts()
    {
        for (var x = 0; x < _e; x++)
        {
            var cost = _load[x] / _nodes / _d;
            _commCost[x] = cost;
            _commHomeCost[x] = _affinity ? cost + (_load[x] / _d) : cost;
        }
    }

    /// <summary>The comm change of adding x on node <paramref name="to"/> after it left node <paramref name="from"/>.</summary>
    private double CommChangeAfter(int x, int from, int to)
    {
        if (_commWeight <= 0)
        {
            return 0;
        }

        _nodeCnt[(x * _nodes) + from]--;
        var cost = CommChange(x, to, +1);
        _nodeCnt[(x * _nodes) + from]++;
        return cost;
    }

    /// <summary>Applies <paramref name="op"/> and updates the state incrementally; returns the slot writes.</summary>
    private int Apply(Op op, OmniWriteLog? log)
    {
        switch (op.Kind)
        {
            case OpKind.Swap:
                var a = op.SlotA / _s;
                var b = op.SlotB / _s;
                var x = _row[op.SlotA];
                var y = _row[op.SlotB];
                for (var k = 0; k < _k1; k++)
                {
                    var shift = (x >= 0 ? _share[(k * _e) + x] : 0) - (y >= 0 ? _share[(k * _e) + y] : 0);
                    _dev[(k * _d) + a] -= shift;
                    _dev[(k * _d) + b] += shift;
                }

                Write(op.SlotA, y, log);
                Write(op.SlotB, x, log);
                Refresh(a, b);
                return 2;
            case OpKind.Replicate:
                TouchFor(OpKind.Replicate, op.Expert, op.SlotB);
                AddTouchedDeltas();
                Write(op.SlotB, op.Expert, log);
                SortOrders();
                return 1;
            default:
                TouchFor(OpKind.Drop, op.Expert, op.SlotA);
                AddTouchedDeltas();
                Write(op.SlotA, -1, log);
                SortOrders();
                return 1;
        }
    }

    /// <summary>Adds the touched devices' load changes; refreshes their weighted loads (the others are unchanged).</summary>
    private void AddTouchedDeltas()
    {
        for (var t = 0; t < _touchCount; t++)
        {
            for (var k = 0; k < _k1; k++)
            {
                _dev[(k * _d) + _touched[t]] += _touchDelta[(t * _k1) + k];
            }

            _devW[_touched[t]] = WeightedDeviceLoad(_touched[t]);
        }
    }

    private void Write(int slot, int expert, OmniWriteLog? log)
    {
        var device = slot / _s;
        var node = device / _devicesPerNode;
        var old = _row[slot];
        _spareValid = false;
        _touchedKind = OpKind.None;
        if (old >= 0)
        {
            _cnt[old]--;
            _onDevice[(old * _d) + device]--;
            _nodeCnt[(old * _nodes) + node]--;
            _used--;
            UpdateShare(old);
            UnlinkReplica(old, slot);
        }

        if (expert >= 0)
        {
            _cnt[expert]++;
            _onDevice[(expert * _d) + device]++;
            _nodeCnt[(expert * _nodes) + node]++;
            _used++;
            UpdateShare(expert);
            LinkReplica(expert, slot);
        }

        _row[slot] = expert;
        UpdateSpareBits(slot, old, expert);
        log?.Write(slot, expert);
    }

    /// <summary><see cref="UpdateShare"/> for every expert, scenario by scenario.</summary>
    private void UpdateShares()
    {
        for (var k = 0; k < _k1; k++)
        {
            var load = _load.AsSpan(k * _e, _e);
            var share = _share.AsSpan(k * _e, _e);
            for (var e = 0; e < share.Length; e++)
            {
                share[e] = ShareOf(load[e], _cnt[e]);
            }
        }
    }

    private void UpdateShare(int e)
    {
        var c = _cnt[e];
        for (var k = 0; k < _k1; k++)
        {
            _share[(k * _e) + e] = ShareOf(_load[(k * _e) + e], c);
        }
    }

    /// <summary>Load per replica (most experts have one replica: their share is their load, a division by one skipped).</summary>
    private static double ShareOf(double load, int replicas) => replicas == 1 ? load : replicas > 0 ? load / replicas : 0;

    /// <summary>Weighted loads, orders and peaks after device loads changed (all devices, or just a and b).</summary>
    private void Refresh(int a, int b)
    {
        if (a < 0)
        {
            for (var d = 0; d < _d; d++)
            {
                _devW[d] = WeightedDeviceLoad(d);
            }
        }
        else
        {
            _devW[a] = WeightedDeviceLoad(a);
            _devW[b] = WeightedDeviceLoad(b);
        }

        SortOrders();
    }

    private double WeightedDeviceLoad(int d)
    {
        var v = 0.0;
        for (var k = 0; k < _k1; k++)
        {
            v += _w[k] * _dev[(k * _d) + d];
        }

        return v;
    }

    /// <summary>Device loads, orders, peaks and the objective from the row and shares.</summary>
    private void Recompute()
    {
        Array.Clear(_dev);
        for (var device = 0; device < _d; device++)
        {
            for (var slot = device * _s; slot < (device + 1) * _s; slot++)
            {
                var x = _row[slot];
                if (x < 0)
                {
                    continue;
                }

                for (var k = 0; k < _k1; k++)
                {
                    _dev[(k * _d) + device] += _share[(k * _e) + x];
                }
            }
        }

        // The orders start from the previous ones: the sort's result does not depend on where it starts (loads
        // descending, then devices ascending, is a total order), and after a rolled-back kick (Restore of the
        // snapshot) the previous order is nearly the new one, which the insertion sort then passes over once. On a
        // new layer (LoadLayer) the scenarios after the first start from the first one's order instead.
        Refresh(-1, -1);
    }

    /// <summary>Insertion sort per scenario, descending by load then ascending device (orders barely change).</summary>
    private void SortOrders()
    {
        _touchedKind = OpKind.None;
        for (var k = 0; k < _k1; k++)
        {
            var order = _order.AsSpan(k * _d, _d);
            var loads = _dev.AsSpan(k * _d, _d);
            if (_newLayer && k > 0)
            {
                // A new layer's scenarios are alike: scenario 0's order is nearer to this one's than the last layer's.
                _order.AsSpan(0, _d).CopyTo(order);
            }

            for (var i = 1; i < order.Length; i++)
            {
                var v = order[i];
                var j = i - 1;
                while (j >= 0 && (loads[order[j]] < loads[v] || (loads[order[j]] == loads[v] && order[j] > v)))
                {
                    order[j + 1] = order[j];
                    j--;
                }

                order[j + 1] = v;
            }

            _peak[k] = loads[order[0]];
        }

        _newLayer = false;

        _objective = BalanceObjective(_peak);
    }

    private double BalanceObjective(double[] peaks)
    {
        if (!_percentile)
        {
            var sum = 0.0;
            for (var k = 0; k < _k1; k++)
            {
                sum += _w[k] * peaks[k];
            }

            return sum;
        }

        var count = _k1 - 1;
        Array.Copy(peaks, 1, _sortScratch, 0, count);
        Array.Sort(_sortScratch, 0, count);
        return (_w[0] * peaks[0]) + ((1 - _w[0]) * _sortScratch[_quantileRank]);
    }

    /// <summary>Writes the solver's row into <paramref name="target"/>, then <see cref="KeepSlots(ReadOnlySpan{int}, Span{int}, int)"/>.</summary>
    public void KeepSlots(ReadOnlySpan<int> current, Span<int> target)
    {
        _row.CopyTo(target);
        KeepSlots(current, target, _s);
    }

    /// <summary>
    /// Permutes <paramref name="row"/> within each device so that every expert (or empty slot) a device holds both
    /// in <paramref name="current"/> and in <paramref name="row"/> keeps its slot: unchanged experts never move, and
    /// the number of changed slots can only go down. The others fill the remaining slots in their order.
    /// </summary>
    public static void KeepSlots(ReadOnlySpan<int> current, Span<int> row, int slotsPerDevice)
    {
        Span<int> wanted = stackalloc int[slotsPerDevice];
        Span<bool> taken = stackalloc bool[slotsPerDevice];
        Span<bool> kept = stackalloc bool[slotsPerDevice];
        for (var first = 0; first < row.Length; first += slotsPerDevice)
        {
            var now = current.Slice(first, slotsPerDevice);
            var device = row.Slice(first, slotsPerDevice);
            if (device.SequenceEqual(now))
            {
                continue; // every slot keeps its expert already (most devices of a layer are not touched)
            }

            device.CopyTo(wanted);
            taken.Clear();
            kept.Clear();
            for (var i = 0; i < slotsPerDevice; i++)
            {
                for (var j = 0; j < slotsPerDevice; j++)
                {
                    if (!taken[j] && wanted[j] == now[i])
                    {
                        taken[j] = true;
                        kept[i] = true;
                        break;
                    }
                }
            }

            var next = 0;
            for (var i = 0; i < slotsPerDevice; i++)
            {
                if (kept[i])
                {
                    device[i] = now[i];
                    continue;
                }

                while (taken[next])
                {
                    next++;
                }

                device[i] = wanted[next];
                taken[next] = true;
            }
        }
    }

    private static double Sq(double v) => v * v;
}
