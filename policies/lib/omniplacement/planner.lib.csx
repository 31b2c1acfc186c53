// OmniPlacement, one rebalance over all layers: triggers, per-layer searches, the shared move budget.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;
using System.Collections.Generic;
using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

/// <summary>What one rebalance decided.</summary>
internal sealed class OmniRebalanceOutcome
{
    public Placement? Placement { get; init; }

    public int LayersTriggered { get; init; }

    public int LayersChanged { get; init; }

    public int SlotWrites { get; init; }

    public int MoveBudget { get; init; }

    public double ImbalanceBefore { get; init; }

    public double ImbalanceAfter { get; init; }

    public double CrossNodeBefore { get; init; }

    public double CrossNodeAfter { get; init; }

    public string Describe(OmniMode mode)
    {
        var imbalance = string.Create(CultureInfo.InvariantCulture, $"predicted imbalance {ImbalanceBefore:F3} -> {ImbalanceAfter:F3}");
        if (Placement is null)
        {
            return LayersTriggered == 0
                ? string.Create(CultureInfo.InvariantCulture, $"balanced: {imbalance}")
                : string.Create(CultureInfo.InvariantCulture, $"no write buys its cost in {LayersTriggered} triggered layer(s): {imbalance}");
        }

        return mode == OmniMode.Static
            ? string.Create(CultureInfo.InvariantCulture, $"static pattern fitted on {LayersChanged} layer(s), {SlotWrites} slot(s) changed: {imbalance}")
            : string.Create(CultureInfo.InvariantCulture, $"rebalanced {LayersChanged} of {LayersTriggered} triggered layer(s), {SlotWrites} slot write(s) of budget {MoveBudget}: {imbalance}");
    }
}

/// <summary>One rebalance over all layers: triggers, per-layer searches, the shared move budget, the new placement.</summary>
internal sealed class OmniRebalancePlanner
{
    private readonly PolicyContext _context;
    private readonly OmniPlacementSettings _settings;
    private readonly OmniLoadSignals _signals;
    /// <summary>How far a stuck layer's imbalance must rise before it is searched again.</summary>
    private const double StuckMargin = 0.01;

    private readonly bool[] _active;
    private readonly double[] _stuck;

    /// <summary>
    /// <paramref name="active"/> (hysteresis) and <paramref name="stuck"/> (the predicted imbalance at which a layer's
    /// last search found nothing worth its writes, NaN if none) are per-layer state the policy keeps between calls.
    /// </summary>
    public OmniRebalancePlanner(PolicyContext context, OmniPlacementSettings settings, OmniLoadSignals signals, bool[] active, double[] stuck)
    {
        _context = context;
        _settings = settings;
        _signals = signals;
        _active = active;
        _stuck = stuck;
    }

    public OmniRebalanceOutcome Run()
    {
        var topology = _context.Topology;
        var layers = _context.Layers;
        var slots = topology.Slots;
        var current = _context.Current;
        var solver = new OmniLayerSolver(topology, _context.LogicalExperts, _signals.Scenarios, _settings, _context.ExpertGroups);
        var allowance = RedundancyAllowance(solver);
        var staticMode = _settings.Mode != OmniMode.Adaptive;
        var bytes = _context.LayerExpertBytes;
        var meanBytes = MeanPositive(bytes);

        var log = new OmniWriteLog();
        var layerOpsStart = new int[layers + 1];
        var forced = new bool[layers];
        var budget = staticMode ? int.MaxValue : (int)Math.Min(int.MaxValue, Math.Floor(_settings.MoveBudget * layers * slots));
        double before = 0, crossBefore = 0;
        var layerBefore = new double[layers];
        var layerCross = new double[layers];
        var triggered = 0;
        var next = current.CopyPhy2Log();
        for (var l = 0; l < layers; l++)
        {
            _context.Cancellation.ThrowIfCancellationRequested();
            layerOpsStart[l] = log.OpCount;
            solver.LoadLayer(_signals, l);
            var row = current.Layer(l);
            var valid = solver.StartFromRow(row);
            layerBefore[l] = valid ? solver.PredictedImbalance : RawImbalance(solver, row);
            layerCross[l] = solver.CrossNodeShare(row);
            before += layerBefore[l];
            crossBefore += layerCross[l];
            if (staticMode || !valid)
            {
                // Fit from scratch: the static pattern, or a placement in force the search cannot start from.
                solver.StartFromScratch(allowance[l]);
                solver.Search(0, int.MaxValue, allowance[l], 1.0, null, _context.Cancellation);
                solver.KeepSlots(row, next.AsSpan(l * slots, slots));
                forced[l] = !valid;
                triggered++;
                continue;
            }

            var imbalance = solver.PredictedImbalance;
            if (!_active[l] && imbalance >= _settings.Trigger)
            {
                _active[l] = true;
            }
            else if (_active[l] && imbalance <= _settings.Release)
            {
                _active[l] = false;
            }

            if (!_active[l])
            {
                _stuck[l] = double.NaN;
                continue;
            }

            triggered++;
            if (imbalance < _stuck[l] + StuckMargin)
            {
                continue; // the last search at about this imbalance found nothing worth its writes
            }

            var byteScale = meanBytes > 0 && bytes[l] > 0 ? bytes[l] / meanBytes : 1.0;
            var costPerWrite = _settings.MoveCost * solver.BestEp * byteScale;
            var start = solver.Objective;
            var mark = log.OpCount;
            var searched = solver.Search(costPerWrite, budget, allowance[l], _settings.Trigger, log, _context.Cancellation);
            if (solver.PredictedImbalance > _settings.RebuildAbove)
            {
                TryRebuild(solver, row, start, solver.Objective + (costPerWrite * searched), costPerWrite, budget, allowance[l], log, mark);
            }

            _stuck[l] = log.OpCount == mark ? imbalance : double.NaN;
        }

        layerOpsStart[layers] = log.OpCount;
        if (!staticMode)
        {
            ApplyWithinBudget(log, layerOpsStart, budget, next, slots);
            for (var l = 0; l < layers; l++)
            {
                OmniLayerSolver.KeepSlots(current.Layer(l), next.AsSpan(l * slots, slots), topology.SlotsPerDevice);
            }
        }

        // Measure the result on the same signals; update hysteresis for layers that ended below the release level.
        double after = 0, crossAfter = 0;
        var changed = 0;
        var layersWithChange = 0;
        for (var l = 0; l < layers; l++)
        {
            var row = next.AsSpan(l * slots, slots);
            var old = current.Layer(l);
            var layerChanges = 0;
            for (var s = 0; s < slots; s++)
            {
                if (row[s] != old[s])
                {
                    layerChanges++;
                }
            }

            changed += layerChanges;
            layersWithChange += layerChanges > 0 ? 1 : 0;
            if (layerChanges == 0)
            {
                after += layerBefore[l];
                crossAfter += layerCross[l];
                if (_active[l] && layerBefore[l] <= _settings.Release)
                {
                    _active[l] = false;
                }

                continue;
            }

            var measured = solver.MeasureRow(_signals, l, row);
            if (!double.IsNaN(measured))
            {
                after += measured;
                if (_active[l] && measured <= _settings.Release)
                {
                    _active[l] = false;
                }
            }
            else
            {
                after += RawImbalance(solver, row);
            }

            crossAfter += solver.CrossNodeShare(row);
        }

        var placement = changed > 0 ? new Placement(topology, _context.LogicalExperts, next) : null;
        if (placement is not null && staticMode)
        {
            // A fitted pattern only fixes which experts share a device: relabel devices (within nodes when the comm
            // term or group affinity made node membership matter) and slots to copy as little as possible.
            placement = MinimalMovement.Relabel(current, placement, acrossNodes: _settings.CommWeight <= 0 && !_settings.GroupAffinity);
            changed = PlacementDiff.CountChanges(current, placement);
        }

        return new OmniRebalanceOutcome
        {
            Placement = changed > 0 ? placement : null,
            LayersTriggered = triggered,
            LayersChanged = layersWithChange,
            SlotWrites = changed,
            MoveBudget = staticMode ? layers * slots : budget,
            ImbalanceBefore = before / layers,
            ImbalanceAfter = after / layers,
            CrossNodeBefore = crossBefore / layers,
            CrossNodeAfter = crossAfter / layers,
        };
    }

    /// <summary>
    /// When the incremental search stays above the trigger (far from balance, e.g. the first rebalance), also try the
    /// anchored rebuild plus search; keep it, as one operation, when it beats the incremental result after move costs.
    /// </summary>
    private void TryRebuild(OmniLayerSolver solver, ReadOnlySpan<int> row, double start, double incremental, double costPerWrite, int budget, int allowance, OmniWriteLog log, int mark)
    {
        solver.StartFromRow(row);
        solver.RebuildAnchored(allowance);
        solver.Search(costPerWrite, budget, allowance, _settings.Trigger, null, _context.Cancellation);
        var rebuilt = solver.Row;
        var writes = 0;
        for (var s = 0; s < row.Length; s++)
        {
            writes += rebuilt[s] != row[s] ? 1 : 0;
        }

        if (writes == 0 || writes > budget || solver.Objective + (costPerWrite * writes) >= incremental)
        {
            return;
        }

        log.Rollback(mark);
        log.BeginOp(((start - solver.Objective) / writes) - costPerWrite);
        for (var s = 0; s < row.Length; s++)
        {
            if (rebuilt[s] != row[s])
            {
                log.Write(s, rebuilt[s]);
            }
        }
    }

    /// <summary>
    /// Inter-layer non-uniform redundancy: every layer needs one slot per expert; the global budget of redundant
    /// replicas goes, one at a time, to the layer whose largest per-replica (predicted) load exceeds its floor
    /// (split-above x BestEP) the most. Layers that are already balanced take none and leave those slots empty.
    /// </summary>
    private int[] RedundancyAllowance(OmniLayerSolver solver)
    {
        var layers = _context.Layers;
        var experts = _context.LogicalExperts;
        var spare = _context.Topology.Slots - experts;
        var result = new int[layers];
        Array.Fill(result, experts);
        if (spare == 0)
        {
            return result;
        }

        var budget = _settings.RedundantBudget < 0 ? (long)spare * layers : _settings.RedundantBudget;
        var cap = solver.ReplicaCap;
        if (budget >= (long)spare * layers && _settings.SplitAbove <= 0)
        {
            // Every spare slot is allowed everywhere: no layer competes for the budget.
            Array.Fill(result, experts + (int)Math.Min(spare, (long)(cap - 1) * experts));
            return result;
        }

        // Per layer: a max-heap of per-replica loads (load, expert) and the replica count per expert.
        var heaps = new PriorityQueue<int, double>[layers];
        var counts = new int[layers * experts];
        var loads = new double[layers * experts];
        var floors = new double[layers];
        var layerQueue = new PriorityQueue<int, double>(layers);
        for (var l = 0; l < layers; l++)
        {
            var heap = new PriorityQueue<int, double>(experts);
            double total = 0;
            for (var e = 0; e < experts; e++)
            {
                var load = solver.WeightedLoad(_signals, l, e);
                loads[(l * experts) + e] = load;
                counts[(l * experts) + e] = 1;
                total += load;
                if (cap > 1)
                {
                    heap.Enqueue(e, -load);
                }
            }

            heaps[l] = heap;
            floors[l] = _settings.SplitAbove * total / _context.Topology.Devices;
            if (heap.TryPeek(out _, out var top) && -top > floors[l])
            {
                layerQueue.Enqueue(l, top + floors[l]);
            }
        }

        while (budget > 0 && layerQueue.TryDequeue(out var layer, out _))
        {
            var heap = heaps[layer];
            var e = heap.Dequeue();
            var key = (layer * experts) + e;
            counts[key]++;
            result[layer]++;
            budget--;
            if (counts[key] < cap)
            {
                heap.Enqueue(e, -loads[key] / counts[key]);
            }

            if (result[layer] - experts < spare && heap.TryPeek(out _, out var top) && -top > floors[layer])
            {
                layerQueue.Enqueue(layer, top + floors[layer]);
            }
        }

        return result;
    }

    /// <summary>
    /// Shares the move budget over layers: repeatedly takes the next operation (in each layer's search order) with the
    /// highest gain per slot write, while its writes fit. Returns the slot writes spent.
    /// </summary>
    private static int ApplyWithinBudget(OmniWriteLog log, int[] layerOpsStart, int budget, int[] next, int slots)
    {
        var layers = layerOpsStart.Length - 1;
        var cursor = new int[layers];
        var queue = new PriorityQueue<int, double>(layers);
        for (var l = 0; l < layers; l++)
        {
            cursor[l] = layerOpsStart[l];
            if (cursor[l] < layerOpsStart[l + 1])
            {
                queue.Enqueue(l, -log.Ratio(cursor[l]));
            }
        }

        var spent = 0;
        while (queue.TryDequeue(out var layer, out _))
        {
            var op = cursor[layer];
            var writes = log.WriteCount(op);
            if (spent + writes > budget)
            {
                continue; // later ops of this layer depend on this one: the layer stops here
            }

            spent += writes;
            log.Apply(op, next.AsSpan(layer * slots, slots));
            cursor[layer]++;
            if (cursor[layer] < layerOpsStart[layer + 1])
            {
                queue.Enqueue(layer, -log.Ratio(cursor[layer]));
            }
        }

        return spent;
    }

    private static double RawImbalance(OmniLayerSolver solver, ReadOnlySpan<int> row) => solver.PredictedImbalanceOf(row);

    private static double MeanPositive(IReadOnlyList<long> values)
    {
        double sum = 0;
        var count = 0;
        foreach (var v in values)
        {
            if (v > 0)
            {
                sum += v;
                count++;
            }
        }

        return count > 0 ? sum / count : 0;
    }
}

/// <summary>The operations a layer search applied, in order, as slot writes (so a prefix can be replayed).</summary>
internal sealed class OmniWriteLog
{
    private readonly List<int> _opStart = [];
    private readonly List<double> _ratio = [];
    private readonly List<int> _slot = [];
    private readonly List<int> _expert = [];

    public int OpCount => _ratio.Count;

    public void BeginOp(double gainPerWrite)
    {
        _opStart.Add(_slot.Count);
        _ratio.Add(gainPerWrite);
    }

    public void Write(int slot, int expert)
    {
        _slot.Add(slot);
        _expert.Add(expert);
    }

    public double Ratio(int op) => _ratio[op];

    public int WriteCount(int op) => (op + 1 < _opStart.Count ? _opStart[op + 1] : _slot.Count) - _opStart[op];

    /// <summary>Forgets every operation from <paramref name="op"/> on.</summary>
    public void Rollback(int op)
    {
        if (op >= _opStart.Count)
        {
            return;
        }

        var writes = _opStart[op];
        _slot.RemoveRange(writes, _slot.Count - writes);
        _expert.RemoveRange(writes, _expert.Count - writes);
        _opStart.RemoveRange(op, _opStart.Count - op);
        _ratio.RemoveRange(op, _ratio.Count - op);
    }

    /// <summary>Fuses the operations from <paramref name="op"/> on into one (they only pay off together).</summary>
    public void Merge(int op, double gainPerWrite)
    {
        if (op >= _opStart.Count)
        {
            return;
        }

        _opStart.RemoveRange(op + 1, _opStart.Count - op - 1);
        _ratio.RemoveRange(op, _ratio.Count - op);
        _ratio.Add(gainPerWrite);
    }

    public void Apply(int op, Span<int> row)
    {
        var end = _opStart[op] + WriteCount(op);
        for (var i = _opStart[op]; i < end; i++)
        {
            row[_slot[i]] = _expert[i];
        }
    }
}
