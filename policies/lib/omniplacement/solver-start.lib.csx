// OmniPlacement, the per-layer solver: the greedy start and the anchored rebuild.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;
using System.Collections.Generic;

internal sealed partial class OmniLayerSolver
{
    /// <summary>
    /// Greedy start, joint in counts and placement: the replica counts are a prefix of the "next replica to the largest
    /// per-replica load" sequence, and the prefix length is chosen by packing: for several totals between one replica
    /// per expert and the allowance, LPT places the replicas (descending load, onto the least-loaded device with a free
    /// slot and no replica of that expert; with group affinity an expert's first replica goes to its group's home
    /// node when there is room), and the total whose busiest device is lightest wins. More replicas are not always
    /// better under a slot limit: FlashLB's case packs to 200 with 12 replicas and to 232 with all 16.
    /// </summary>
    public void StartFromScratch(int allowance)
    {
        _spareValid = false;
        var full = Math.Min(allowance, _row.Length);
        var spare = full - _e;
        var bestTotal = full;
        var bestPeak = double.PositiveInfinity;
        var tries = Math.Min(spare, 8);
        for (var t = tries; t >= 0; t--)
        {
            var total = _e + (tries == 0 ? 0 : (int)((long)spare * t / tries));
            var peak = PackGreedy(total);
            if (peak < bestPeak * (1 - 1e-12))
            {
                (bestPeak, bestTotal) = (peak, total);
            }
        }

        PackGreedy(bestTotal);
        StartFromRow(_row);
    }

    /// <summary>Counts for <paramref name="total"/> replicas, then LPT into <see cref="_row"/>; returns the busiest device's load.</summary>
    private double PackGreedy(int total)
    {
        var target = TargetCounts(total);
        var n = 0;
        for (var e = 0; e < _e; e++)
        {
            for (var r = 0; r < target[e]; r++)
            {
                _items[n] = e;
                _itemKeys[n] = -_uw[e] / target[e];
                n++;
            }
        }

        // Stable order: descending per-replica load, then expert id.
        Array.Sort(_itemKeys, _items, 0, n);
        SortTiesByExpert(n);

        Array.Fill(_row, -1);
        Array.Clear(_onDevice);
        Array.Clear(_fill);
        Array.Clear(_fillLoad);
        Array.Clear(_cnt);
        for (var i = 0; i < n; i++)
        {
            var e = _items[i];
            var best = -1;
            if (_affinity && _cnt[e] == 0)
            {
                best = LeastLoaded(e, _home[e] * _devicesPerNode, (_home[e] + 1) * _devicesPerNode);
            }

            if (best < 0)
            {
                best = LeastLoaded(e, 0, _d);
            }

            if (best < 0)
            {
                continue; // every device with room already holds this expert: one replica fewer
            }

            _row[(best * _s) + _fill[best]] = e;
            _fill[best]++;
            _fillLoad[best] -= _itemKeys[i];
            _onDevice[(e * _d) + best] = 1;
            _cnt[e]++;
        }

        // The loads with the counts actually placed (a skipped replica leaves its siblings heavier).
        Array.Clear(_fillLoad);
        for (var slot = 0; slot < _row.Length; slot++)
        {
            var e = _row[slot];
            if (e >= 0)
            {
                _fillLoad[slot / _s] += _uw[e] / _cnt[e];
            }
        }

        var peak = 0.0;
        foreach (var v in _fillLoad)
        {
            peak = Math.Max(peak, v);
        }

        return peak;
    }

    private void SortTiesByExpert(int n)
    {
        var i = 0;
        while (i < n)
        {
            var j = i + 1;
            while (j < n && _itemKeys[j] == _itemKeys[i])
            {
                j++;
            }

            if (j - i > 1)
            {
                Array.Sort(_items, i, j - i);
            }

            i = j;
        }
    }

    private int LeastLoaded(int e, int from, int to)
    {
        var best = -1;
        for (var d = from; d < to; d++)
        {
            if (_fill[d] < _s && _onDevice[(e * _d) + d] == 0 && (best < 0 || _fillLoad[d] < _fillLoad[best]))
            {
                best = d;
            }
        }

        return best;
    }

    /// <summary>
    /// Move-aware rebuild from the current state: replica counts as the greedy start would choose them; surplus
    /// replicas leave from the busiest devices; every device keeps its replicas up to BestEP (heaviest that fit first)
    /// and evicts the rest; evicted and new replicas are placed by LPT into the freed slots. Cheaper in writes than a
    /// fit from scratch, and escapes the local optima an incremental search meets far from balance.
    /// </summary>
    public void RebuildAnchored(int allowance)
    {
        var target = TargetCounts(allowance);
        var slots = _row.Length;
        var keep = new bool[slots];
        var kept = new int[_e];
        var load = _fillLoad;
        Array.Clear(load);
        Array.Clear(_fill);

        // Keep at most target[e] replicas of each expert, preferring those on the coolest devices.
        var bySlotLoad = new int[slots];
        for (var slot = 0; slot < slots; slot++)
        {
            bySlotLoad[slot] = slot;
        }

        Array.Sort(bySlotLoad, (p, q) => _devW[p / _s] != _devW[q / _s] ? _devW[p / _s].CompareTo(_devW[q / _s]) : p.CompareTo(q));
        foreach (var slot in bySlotLoad)
        {
            var x = _row[slot];
            if (x >= 0 && kept[x] < target[x])
            {
                keep[slot] = true;
                kept[x]++;
            }
        }

        // Per device: keep the heaviest replicas that fit under BestEP, evict the rest.
        var pending = new List<int>(slots);
        var order = new int[_s];
        for (var d = 0; d < _d; d++)
        {
            var n = 0;
            for (var li = 0; li < _s; li++)
            {
                if (keep[(d * _s) + li])
                {
                    order[n++] = (d * _s) + li;
                }
            }

            Array.Sort(order, 0, n, Comparer<int>.Create((p, q) => Share(target, _row[q]).CompareTo(Share(target, _row[p]))));
            for (var i = 0; i < n; i++)
            {
                var slot = order[i];
                var share = Share(target, _row[slot]);
                if (load[d] + share <= _bestEp || _fill[d] == 0)
                {
                    load[d] += share;
                    _fill[d]++;
                }
                else
                {
                    keep[slot] = false;
                    kept[_row[slot]]--;
                    pending.Add(_row[slot]);
                }
            }
        }

        var placed = (int[])kept.Clone();
        foreach (var e in pending)
        {
            placed[e]++;
        }

        for (var e = 0; e < _e; e++)
        {
            for (var r = placed[e]; r < target[e]; r++)
            {
                pending.Add(e);
            }
        }

        // The new row: kept replicas stay; the rest of the slots are free.
        var next = _snapshot;
        Array.Fill(next, -1);
        Array.Clear(_onDevice);
        for (var slot = 0; slot < slots; slot++)
        {
            if (keep[slot])
            {
                next[slot] = _row[slot];
                _onDevice[(_row[slot] * _d) + (slot / _s)] = 1;
            }
        }

        pending.Sort((p, q) => Share(target, q) != Share(target, p) ? Share(target, q).CompareTo(Share(target, p)) : p.CompareTo(q));
        foreach (var e in pending)
        {
            var best = LeastLoaded(e, 0, _d);
            if (best < 0)
            {
                continue;
            }

            for (var li = 0; li < _s; li++)
            {
                var slot = (best * _s) + li;
                if (next[slot] < 0 && !keep[slot])
                {
                    next[slot] = e;
                    keep[slot] = true;
                    break;
                }
            }

            _onDevice[(e * _d) + best] = 1;
            _fill[best]++;
            load[best] += Share(target, e);
        }

        StartFromRow(next);
    }

    private double Share(int[] counts, int e) => _uw[e] / counts[e];

    /// <summary>Replica counts by largest per-replica load first, within the allowance and the cap.</summary>
    private int[] TargetCounts(int allowance)
    {
        var counts = new int[_e];
        var heap = new PriorityQueue<int, double>(_e);
        for (var e = 0; e < _e; e++)
        {
            counts[e] = 1;
            if (ReplicaCap > 1)
            {
                heap.Enqueue(e, -_uw[e]);
            }
        }

        for (var extra = Math.Min(allowance, _row.Length) - _e; extra > 0 && heap.TryDequeue(out var e, out _); extra--)
        {
            counts[e]++;
            if (counts[e] < ReplicaCap)
            {
                heap.Enqueue(e, -_uw[e] / counts[e]);
            }
        }

        return counts;
    }
}
