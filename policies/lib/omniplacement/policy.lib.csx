// OmniPlacement, the policy (what a script returns) and the placement diagnostics.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

/// <summary>
/// The OmniPlacement policy. One instance keeps per-layer hysteresis state between calls (and, in static mode, whether
/// its pattern was fitted); everything else is a pure function of the context.
/// </summary>
public sealed class OmniPlacementPolicy : IPlacementPolicy
{
    private readonly PolicyOptions _options;
    private readonly OmniPlacementSettings _settings;
    private bool[] _active = [];
    private double[] _stuck = [];
    private long _lastStep = -1;
    private int _lastInterval;
    private bool _staticDone;

    public OmniPlacementPolicy(PolicyOptions? options = null)
    {
        _options = options ?? PolicyOptions.Empty;
        _settings = OmniPlacementSettings.Parse(_options);
    }

    public string Name => _settings.Name;

    /// <summary>The settings from the constructor's options (a context's options overlay them per call).</summary>
    public OmniPlacementSettings Settings => _settings;

    /// <summary>What the last call to <see cref="Decide"/> saw and did, or null before the first call.</summary>
    public OmniPlacementReport? LastReport { get; private set; }

    public PolicyDecision Decide(PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Cancellation.ThrowIfCancellationRequested();
        var settings = context.Options.Values.Count == 0 ? _settings : OmniPlacementSettings.Parse(_options.With(context.Options));
        var topology = context.Topology;
        var current = context.Current;
        TrivialPolicy.RequireEnoughSlots(topology, context.LogicalExperts);
        PlacementValidator.EnsureShape(current, topology, context.Layers, context.LogicalExperts, "placement in force");
        var history = context.History;
        if (history.Count == 0)
        {
            return Finish(context, settings, null, "no load history yet");
        }

        if (settings.Mode == OmniMode.Static && _staticDone && _active.Length == context.Layers)
        {
            return Finish(context, settings, null, "static pattern in force");
        }

        if (_active.Length != context.Layers)
        {
            _active = new bool[context.Layers];
            _stuck = new double[context.Layers];
            Array.Fill(_stuck, double.NaN);
            _lastStep = -1;
        }

        if (_lastStep >= 0 && context.Step > _lastStep)
        {
            _lastInterval = (int)Math.Min(context.Step - _lastStep, int.MaxValue);
        }

        _lastStep = context.Step;
        var horizon = settings.Horizon > 0 ? settings.Horizon : Math.Max(1, (_lastInterval > 0 ? _lastInterval : Math.Min(history.Count, 100)) / 2);
        var signals = OmniLoadSignals.Compute(history, settings, horizon, context.Cancellation);
        OmniRebalanceOutcome outcome;
        try
        {
            outcome = new OmniRebalancePlanner(context, settings, signals, _active, _stuck).Run();
        }
        finally
        {
            signals.Release();
        }

        if (settings.Mode == OmniMode.Static)
        {
            _staticDone = true;
        }

        return Finish(context, settings, outcome, null);
    }

    private PolicyDecision Finish(PolicyContext context, OmniPlacementSettings settings, OmniRebalanceOutcome? outcome, string? keepReason)
    {
        if (outcome is null)
        {
            LastReport = new OmniPlacementReport(context.Step, 0, 0, 0, 0, 0, 0, 0, 0, keepReason!);
            return PolicyDecision.Keep(keepReason!);
        }

        var reason = outcome.Describe(settings.Mode);
        LastReport = new OmniPlacementReport(context.Step, outcome.LayersTriggered, outcome.LayersChanged, outcome.SlotWrites, outcome.MoveBudget, outcome.ImbalanceBefore, outcome.ImbalanceAfter, outcome.CrossNodeBefore, outcome.CrossNodeAfter, reason);
        return outcome.Placement is null ? PolicyDecision.Keep(reason) : PolicyDecision.Apply(outcome.Placement, reason);
    }
}

/// <summary>Diagnostics that need only a placement and per-expert loads.</summary>
public static class OmniDiagnostics
{
    /// <summary>
    /// Share of the layer's tokens dispatched to another node, when tokens come evenly from every node (data-parallel
    /// attention) and each token uses a replica on its own node when there is one: sum_e load_e (1 - n_e / N) / total,
    /// where n_e is the number of nodes holding expert e. 0 on one node.
    /// </summary>
    public static double CrossNodeShare(Placement placement, int layer, ReadOnlySpan<double> expertLoads)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var topology = placement.Topology;
        if (topology.Nodes <= 1)
        {
            return 0;
        }

        var experts = placement.LogicalExperts;
        var seen = new bool[experts * topology.Nodes];
        var nodesOf = new int[experts];
        var row = placement.Layer(layer);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if ((uint)e < (uint)experts)
            {
                var key = (e * topology.Nodes) + topology.NodeOfSlot(s);
                if (!seen[key])
                {
                    seen[key] = true;
                    nodesOf[e]++;
                }
            }
        }

        double total = 0, remote = 0;
        for (var e = 0; e < experts && e < expertLoads.Length; e++)
        {
            total += expertLoads[e];
            remote += expertLoads[e] * (1.0 - ((double)nodesOf[e] / topology.Nodes));
        }

        return total > 0 ? remote / total : 0;
    }

    /// <summary>
    /// Share of the layer's tokens whose expert has a replica on its group's busiest node: with group-limited routing,
    /// the higher it is, the more of a token's experts sit together on one node. 1 when there is one node or group.
    /// </summary>
    public static double GroupLocality(Placement placement, int layer, ReadOnlySpan<double> expertLoads, int groups)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var topology = placement.Topology;
        var experts = placement.LogicalExperts;
        if (topology.Nodes <= 1 || groups <= 1 || experts % groups != 0)
        {
            return 1;
        }

        var perGroup = experts / groups;
        var onNode = new bool[experts * topology.Nodes];
        var row = placement.Layer(layer);
        for (var s = 0; s < row.Length; s++)
        {
            if ((uint)row[s] < (uint)experts)
            {
                onNode[(row[s] * topology.Nodes) + topology.NodeOfSlot(s)] = true;
            }
        }

        double total = 0, local = 0;
        for (var g = 0; g < groups; g++)
        {
            double best = 0, groupTotal = 0;
            for (var n = 0; n < topology.Nodes; n++)
            {
                double there = 0;
                for (var e = g * perGroup; e < (g + 1) * perGroup; e++)
                {
                    if (onNode[(e * topology.Nodes) + n])
                    {
                        there += expertLoads[e];
                    }
                }

                best = Math.Max(best, there);
            }

            for (var e = g * perGroup; e < (g + 1) * perGroup; e++)
            {
                groupTotal += expertLoads[e];
            }

            total += groupTotal;
            local += best;
        }

        return total > 0 ? local / total : 1;
    }
}
