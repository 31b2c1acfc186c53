// OmniPlacement: the algorithm behind policies/omniplacement*.csx (see those scripts for the idea and the knobs).
// This library holds only using-directives and type declarations, so it compiles both as a script library
// (#load "lib/omniplacement.lib.csx") and as ordinary C# (tests/ExpertBridge.Policies.Tests compiles it directly).
//
// Signals (one pass over the window): the predicted per-step load of every (layer, expert) (bias-corrected EMA, EMA
// plus damped trend, or the mean) and K chunk means of the window, optionally mirrored forward around the prediction.
// Per layer it minimises
//   J = w0 * peak(prediction) + sum_k wk * peak(scenario k)       (objective = peak-sum)
//   J = w0 * peak(prediction) + (1 - w0) * quantile_q(peaks)      (objective = percentile)
// plus a small cross-node dispatch term and a tie-breaker (per-scenario sum of squares) that lets the search leave a
// plateau. Replica counts and device assignment are optimised together: a greedy start that picks the replica total
// by packing, then a local search (swaps and moves between a peak device and cool ones, re-replication, drops, and
// kicks: one more replica of the busiest expert plus the swaps that make room, kept only when the chain pays).
// In adaptive mode the search starts from the placement in force; every slot write must buy a
// predicted gain worth its bytes, a per-rebalance move budget is shared over layers by gain per write, a layer is
// only searched while its predicted imbalance is above a trigger (with hysteresis), and a layer far from balance
// also tries an anchored rebuild.
using System;
using System.Buffers;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using System.Threading;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

/// <summary>How an OmniPlacement instance decides.</summary>
public enum OmniMode
{
    /// <summary>Start from the placement in force; move-aware, budgeted, triggered with hysteresis.</summary>
    Adaptive,

    /// <summary>Fit one pattern from scratch on the whole history at the first call, then keep it.</summary>
    Static,

    /// <summary>Fit from scratch at every call (no move limits), keeping unchanged experts in their slots.</summary>
    Refit,
}

/// <summary>How the per-expert load of the next interval is predicted from the recent series.</summary>
public enum OmniPredictor
{
    /// <summary>Bias-corrected exponential moving average over the window.</summary>
    Ema,

    /// <summary>EMA plus the window's least-squares trend projected over the horizon (damped).</summary>
    Trend,

    /// <summary>Plain window mean.</summary>
    Mean,
}

/// <summary>How the chunk scenarios' peak loads are combined.</summary>
public enum OmniObjective
{
    /// <summary>Weighted sum of each scenario's peak device load.</summary>
    PeakSum,

    /// <summary>The predicted peak plus a high percentile of the scenario peaks.</summary>
    Percentile,
}

/// <summary>OmniPlacement's knobs, parsed from <see cref="PolicyOptions"/> (errors name the key and the rule).</summary>
public sealed record OmniPlacementSettings
{
    public string Name { get; init; } = "omniplacement";

    public OmniMode Mode { get; init; } = OmniMode.Adaptive;

    /// <summary>Steps of history used (0 = all held).</summary>
    public int Window { get; init; }

    public OmniPredictor Predictor { get; init; } = OmniPredictor.Ema;

    /// <summary>EMA weight of the newest step.</summary>
    public double EmaAlpha { get; init; } = 0.05;

    /// <summary>Share of the fitted trend that is extrapolated (Trend predictor).</summary>
    public double TrendDamping { get; init; } = 0.5;

    /// <summary>Steps ahead the prediction aims at (0 = half the interval between calls).</summary>
    public int Horizon { get; init; }

    /// <summary>Chunks of the window scored as scenarios (0 = prediction only).</summary>
    public int Scenarios { get; init; } = 4;

    /// <summary>Weight of the scenario peaks against the predicted peak.</summary>
    public double RobustWeight { get; init; } = 0.3;

    /// <summary>
    /// Scenarios as the past chunks themselves, or mirrored into the future around the prediction
    /// (prediction + (prediction - chunk)): drift seen over the window, replayed forward.
    /// </summary>
    public bool Forecast { get; init; } = true;

    public OmniObjective Objective { get; init; } = OmniObjective.PeakSum;

    /// <summary>Percentile of scenario peaks (Percentile objective).</summary>
    public double Percentile { get; init; } = 90;

    /// <summary>Replicas per expert at most (0 = one per device).</summary>
    public int MaxReplicas { get; init; }

    /// <summary>Redundant replicas over all layers at most (-1 = every spare slot).</summary>
    public int RedundantBudget { get; init; } = -1;

    /// <summary>A redundant replica is only worth a slot while the largest per-replica load exceeds this share of BestEP.</summary>
    public double SplitAbove { get; init; }

    /// <summary>Slot writes per rebalance over all layers, as a share of all slots.</summary>
    public double MoveBudget { get; init; } = 0.5;

    /// <summary>Predicted gain each slot write must buy, as a share of the layer's BestEP (scaled by expert bytes).</summary>
    public double MoveCost { get; init; } = 0.001;

    /// <summary>Predicted imbalance at which an idle layer starts rebalancing.</summary>
    public double Trigger { get; init; } = 1.03;

    /// <summary>Predicted imbalance below which an active layer goes idle again.</summary>
    public double Release { get; init; } = 1.01;

    /// <summary>Weight of cross-node dispatch (tokens per device) against the balance objective.</summary>
    public double CommWeight { get; init; } = 0.02;

    /// <summary>Keep each expert group's first replicas on one node (needs several nodes and expert groups).</summary>
    public bool GroupAffinity { get; init; }

    /// <summary>
    /// Robust imbalance above which a layer the incremental search left behind also tries the anchored rebuild
    /// (far from balance, e.g. the first rebalance after start-up or a workload switch).
    /// </summary>
    public double RebuildAbove { get; init; } = 1.15;



    /// <summary>Local-search iterations per layer at most (0 = 2 x slots).</summary>
    public int MaxIterations { get; init; }

    /// <summary>Reads every key this policy knows; unknown keys are ignored (other policies share configs).</summary>
    public static OmniPlacementSettings Parse(PolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var d = new OmniPlacementSettings();
        return new OmniPlacementSettings
        {
            Name = options.GetString("name", d.Name),
            Mode = ParseEnum(options, "mode", d.Mode),
            Window = options.GetInt("window", d.Window, 0),
            Predictor = ParseEnum(options, "predictor", d.Predictor),
            EmaAlpha = options.GetDouble("ema-alpha", d.EmaAlpha, 1e-4, 1),
            TrendDamping = options.GetDouble("trend-damping", d.TrendDamping, 0, 1),
            Horizon = options.GetInt("horizon", d.Horizon, 0),
            Scenarios = options.GetInt("scenarios", d.Scenarios, 0, 64),
            RobustWeight = options.GetDouble("robust-weight", d.RobustWeight, 0, 1),
            Forecast = options.GetBool("forecast-scenarios", d.Forecast),
            Objective = ParseEnum(options, "objective", d.Objective),
            Percentile = options.GetDouble("percentile", d.Percentile, 0, 100),
            MaxReplicas = options.GetInt("max-replicas", d.MaxReplicas, 0),
            RedundantBudget = options.GetInt("redundant-budget", d.RedundantBudget, -1),
            SplitAbove = options.GetDouble("split-above", d.SplitAbove, 0, 100),
            MoveBudget = options.GetDouble("move-budget", d.MoveBudget, 0, 1),
            MoveCost = options.GetDouble("move-cost", d.MoveCost, 0, 10),
            Trigger = options.GetDouble("trigger", d.Trigger, 1, 100),
            Release = options.GetDouble("release", d.Release, 1, 100),
            CommWeight = options.GetDouble("comm-weight", d.CommWeight, 0, 100),
            GroupAffinity = options.GetBool("group-affinity", d.GroupAffinity),
            RebuildAbove = options.GetDouble("rebuild-above", d.RebuildAbove, 1, 100),
            MaxIterations = options.GetInt("max-iterations", d.MaxIterations, 0),
        }.Checked(options.Source);
    }

    private OmniPlacementSettings Checked(string source)
    {
        if (Release > Trigger)
        {
            throw new InputException($"{source}: release", "release <= trigger (hysteresis)", $"release {Release.ToString(CultureInfo.InvariantCulture)} is above trigger {Trigger.ToString(CultureInfo.InvariantCulture)}");
        }

        return this;
    }

    private static string Kebab(string name)
    {
        var text = new System.Text.StringBuilder(name.Length + 4);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && text.Length > 0)
            {
                text.Append('-');
            }

            text.Append(char.ToLowerInvariant(c));
        }

        return text.ToString();
    }

    private static T ParseEnum<T>(PolicyOptions options, string key, T fallback)
        where T : struct, Enum
    {
        var raw = options.GetString(key, "");
        if (raw.Length == 0)
        {
            return fallback;
        }

        if (char.IsLetter(raw[0]) && Enum.TryParse<T>(raw.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var value) && Enum.IsDefined(value))
        {
            return value;
        }

        var names = string.Join(", ", Array.ConvertAll(Enum.GetNames<T>(), Kebab));
        throw new InputException($"{options.Source}: {key}", $"one of {names}", $"'{raw}' is not one of them");
    }
}

/// <summary>What the last decision saw and did (for logs, reports and tests).</summary>
public sealed record OmniPlacementReport(
    long Step,
    int LayersTriggered,
    int LayersChanged,
    int SlotWrites,
    int MoveBudget,
    double PredictedImbalanceBefore,
    double PredictedImbalanceAfter,
    double CrossNodeShareBefore,
    double CrossNodeShareAfter,
    string Reason);

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

/// <summary>
/// Everything the solver reads from the history, computed in one pass over the window: the predicted per-step load
/// and the per-step mean of each of K consecutive chunks, for every (layer, expert).
/// </summary>
internal sealed class OmniLoadSignals
{
    private readonly float[] _chunkBuffer;
    private readonly float[] _emaBuffer;

    private OmniLoadSignals(int layers, int experts, int scenarios, int steps, float[] predicted, float[] chunkBuffer, float[] emaBuffer)
    {
        _chunkBuffer = chunkBuffer;
        _emaBuffer = emaBuffer;
        var chunks = scenarios > 0 ? chunkBuffer : [];
        Layers = layers;
        Experts = experts;
        Scenarios = scenarios;
        Steps = steps;
        Predicted = predicted;
        Chunks = chunks;
    }

    public int Layers { get; }

    public int Experts { get; }

    /// <summary>Chunk scenarios (K), oldest first.</summary>
    public int Scenarios { get; }

    /// <summary>Steps of history read.</summary>
    public int Steps { get; }

    /// <summary>[layers * experts] predicted per-step load (the array may be longer).</summary>
    public float[] Predicted { get; }

    /// <summary>[K * layers * experts] per-step mean of each chunk (the array may be longer).</summary>
    public float[] Chunks { get; }

    /// <summary>
    /// Reads the window once, into buffers rented from the shared array pool (<see cref="Release"/> gives them back):
    /// calls allocate nothing large, also the first call of a policy instance. Fresh arrays (K + 2 floats per (layer,
    /// expert), 356 KB at DeepSeek-V3 scale) cost page faults on their first writes, about 0.4 ms a call.
    /// </summary>
    public static OmniLoadSignals Compute(IReadOnlyLoadHistory history, OmniPlacementSettings settings, int horizon, CancellationToken cancellation)
    {
        var size = history.Layers * history.Experts;
        var n = settings.Window > 0 ? Math.Min(settings.Window, history.Count) : history.Count;
        var start = history.Count - n;
        var k = Math.Min(settings.Scenarios, n);
        var chunkCount = Math.Max(k, 1);
        var chunks = Rent(chunkCount * size);
        var ema = Rent(size);
        var alpha = (float)settings.EmaAlpha;
        var keep = 1f - alpha;
        var width = Vector<float>.Count;
        var vAlpha = new Vector<float>(alpha);
        var vKeep = new Vector<float>(keep);
        for (var s = 0; s < n; s++)
        {
            if ((s & 31) == 0)
            {
                cancellation.ThrowIfCancellationRequested();
            }

            var step = history.GetStep(start + s);
            var acc = chunks.AsSpan((int)((long)s * chunkCount / n) * size, size);
            var i = 0;
            for (; i <= size - width; i += width)
            {
                var x = new Vector<float>(step.Slice(i));
                (new Vector<float>(acc.Slice(i)) + x).CopyTo(acc.Slice(i));
                ((new Vector<float>(ema, i) * vKeep) + (x * vAlpha)).CopyTo(ema, i);
            }

            for (; i < size; i++)
            {
                acc[i] += step[i];
                ema[i] = (ema[i] * keep) + (step[i] * alpha);
            }
        }

        // Chunk sums -> per-step means; chunk c holds steps [c n / K, (c + 1) n / K).
        var lengths = new int[chunkCount];
        for (var c = 0; c < chunkCount; c++)
        {
            lengths[c] = (int)(((long)(c + 1) * n / chunkCount) - ((long)c * n / chunkCount));
            var span = chunks.AsSpan(c * size, size);
            Scale(span, lengths[c] > 0 ? 1f / lengths[c] : 0f, span);
        }

        var predicted = Rent(size);
        switch (settings.Predictor)
        {
            case OmniPredictor.Mean:
                for (var c = 0; c < chunkCount; c++)
                {
                    var w = (float)lengths[c] / n;
                    var span = chunks.AsSpan(c * size, size);
                    for (var i = 0; i < size; i++)
                    {
                        predicted[i] += span[i] * w;
                    }
                }

                break;
            default:
                // Bias-corrected EMA (the zero seed's weight is divided out).
                Scale(ema, (float)(1.0 / (1.0 - Math.Pow(keep, n))), predicted);

                if (settings.Predictor == OmniPredictor.Trend && chunkCount >= 2)
                {
                    AddTrend(predicted, chunks, lengths, n, size, settings, horizon);
                }

                break;
        }

        if (k > 0 && settings.Forecast)
        {
            for (var c = 0; c < chunkCount; c++)
            {
                Mirror(predicted, chunks.AsSpan(c * size, size));
            }
        }

        return new OmniLoadSignals(history.Layers, history.Experts, k, n, predicted, chunks, ema);
    }

    /// <summary>target = source x factor, element by element (the passes over whole signals are vectorised).</summary>
    private static void Scale(ReadOnlySpan<float> source, float factor, Span<float> target)
    {
        var width = Vector<float>.Count;
        var i = 0;
        for (; i <= source.Length - width; i += width)
        {
            (new Vector<float>(source.Slice(i)) * factor).CopyTo(target.Slice(i));
        }

        for (; i < source.Length; i++)
        {
            target[i] = source[i] * factor;
        }
    }

    /// <summary>
    /// A chunk mirrored forward around the prediction: max(0, 2 x predicted - chunk), element by element
    /// (Vector.Max treats NaN and -0 as Math.Max does).
    /// </summary>
    private static void Mirror(ReadOnlySpan<float> predicted, Span<float> chunk)
    {
        var width = Vector<float>.Count;
        var i = 0;
        for (; i <= chunk.Length - width; i += width)
        {
            Vector.Max(Vector<float>.Zero, (new Vector<float>(predicted.Slice(i)) * 2f) - new Vector<float>(chunk.Slice(i))).CopyTo(chunk.Slice(i));
        }

        for (; i < chunk.Length; i++)
        {
            chunk[i] = Math.Max(0f, (2 * predicted[i]) - chunk[i]);
        }
    }

    /// <summary>Gives the buffers back to the pool: the signals must not be read after.</summary>
    public void Release()
    {
        ArrayPool<float>.Shared.Return(_chunkBuffer);
        ArrayPool<float>.Shared.Return(_emaBuffer);
        ArrayPool<float>.Shared.Return(Predicted);
    }

    /// <summary>A zeroed buffer of at least <paramref name="length"/> floats (the pool's may be longer).</summary>
    private static float[] Rent(int length)
    {
        var buffer = ArrayPool<float>.Shared.Rent(length);
        Array.Clear(buffer, 0, length);
        return buffer;
    }

    private static void AddTrend(float[] predicted, float[] chunks, int[] lengths, int n, int size, OmniPlacementSettings settings, int horizon)
    {
        // Least-squares slope of chunk means against chunk centres; the EMA lags a linear trend by (1 - a) / a steps.
        var count = lengths.Length;
        var centres = new double[count];
        double mean = 0;
        var first = 0;
        for (var c = 0; c < count; c++)
        {
            centres[c] = first + ((lengths[c] - 1) / 2.0);
            first += lengths[c];
            mean += centres[c];
        }

        mean /= count;
        double denominator = 0;
        for (var c = 0; c < count; c++)
        {
            denominator += (centres[c] - mean) * (centres[c] - mean);
        }

        if (denominator <= 0)
        {
            return;
        }

        var lag = Math.Min((1 - settings.EmaAlpha) / settings.EmaAlpha, n / 2.0);
        var reach = settings.TrendDamping * (lag + horizon) / denominator;
        for (var i = 0; i < size; i++)
        {
            double numerator = 0;
            for (var c = 0; c < count; c++)
            {
                numerator += (centres[c] - mean) * chunks[(c * size) + i];
            }

            predicted[i] = (float)Math.Max(0, predicted[i] + (numerator * reach));
        }
    }
}

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

/// <summary>
/// The per-layer optimiser. Holds one layer's scenario loads and placement state in flat arrays sized once per
/// rebalance, and scores an operation from the devices it touches only. Scenario 0 is the prediction; 1..K the
/// chunk means. The objective is the weighted scenario peaks (or the percentile form), plus the comm term, plus a
/// tiny sum-of-squares tie-breaker that lets the search leave a plateau where two devices share the peak.
/// </summary>
internal sealed class OmniLayerSolver
{
    private const double TieWeight = 1e-3;
    private const int ReceiverCount = 8;
    private const int KickAttempts = 6;
    private const int KickFailures = 1;
    private const int KickRepairs = 6;

    private readonly int _e;
    private readonly int _d;
    private readonly int _s;
    private readonly int _k1;
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
    private readonly double[] _newPeak;
    private readonly double[] _sortScratch;
    private readonly int[] _repHead;
    private readonly int[] _repNext;
    private readonly int[] _spare;
    private readonly double[] _spareBase;
    private readonly double[] _spareSiblings;
    private int _spareCount;
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
    private readonly Candidate[] _cKind;  // the candidate table of FindBest: kind (None once taken), bound, source, ...
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
        _spareBase = new double[slots];
        _spareSiblings = new double[slots];
        _live = new int[slots];
        _items = new int[slots];
        _itemKeys = new double[slots];
        _snapshot = new int[slots];
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
        for (var e = 0; e < _e; e++)
        {
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
        AssignGroupHomes();
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

        for (var e = 0; e < _e; e++)
        {
            valid &= _cnt[e] > 0 && _cnt[e] <= ReplicaCap;
            UpdateShare(e);
        }

        Recompute();
        return valid;
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

    /// <summary>
    /// Local search from the current state. Each iteration applies the operation with the highest net gain per slot
    /// write: a swap or move between a scenario's peak device and a cool device, a re-replication of a peak device's
    /// expert into a cool device's redundant or empty slot, or dropping a redundant replica from a peak device. When
    /// no single operation pays, it tries a kick: one more replica of the peak device's heaviest expert, followed by
    /// the swaps that make room for it; the chain is kept only when, as a whole, it pays for its writes (else it is
    /// rolled back). Stops when nothing pays more than <paramref name="costPerWrite"/> per write, after
    /// <paramref name="maxWrites"/> writes, or at the iteration cap. Operations go to <paramref name="log"/> when given.
    /// </summary>
    public int Search(double costPerWrite, int maxWrites, int allowance, double kickAbove, OmniWriteLog? log, CancellationToken cancellation)
    {
        var floor = costPerWrite + (1e-9 * Math.Max(_bestEp, 1e-12));
        var written = 0;
        var kicks = 0;
        var failures = 0;
        for (var iteration = 0; iteration < _maxIterations && written < maxWrites; iteration++)
        {
            if ((iteration & 7) == 0)
            {
                cancellation.ThrowIfCancellationRequested();
            }

            var best = FindBest(floor, maxWrites - written, allowance);
            if (best.Kind != OpKind.None)
            {
                log?.BeginOp(best.Ratio - costPerWrite);
                written += Apply(best, log);
                continue;
            }

            if (kicks >= KickAttempts || failures >= KickFailures || PredictedImbalance <= kickAbove)
            {
                break;
            }

            kicks++;
            var spent = TryKick(floor, costPerWrite, maxWrites - written, allowance, log);
            if (spent > 0)
            {
                written += spent;
                failures = 0;
            }
            else
            {
                failures++;
                if (spent < 0)
                {
                    break; // no kick candidate at all
                }

                if (failures >= KickFailures)
                {
                    // The rollback restored the placement in which nothing paid: searching it again would stop here.
                    break;
                }
            }
        }

        return written;
    }

    /// <summary>
    /// One kick (see <see cref="Search"/>): the heaviest splittable replica on the prediction's peak device gets one
    /// more replica on the coolest device that can take it, either in a redundant or empty slot there, or in the slot
    /// of an occupant that is first relocated to a redundant or empty slot elsewhere. Returns the writes spent when the
    /// chain is kept, 0 when it was rolled back, -1 when there is no candidate.
    /// </summary>
    private int TryKick(double floor, double costPerWrite, int writesLeft, int allowance, OmniWriteLog? log)
    {
        if (writesLeft < 4)
        {
            return -1;
        }

        var a = _order[0];
        var x = -1;
        for (var li = 0; li < _s; li++)
        {
            var e = _row[(a * _s) + li];
            if (e >= 0 && _cnt[e] < ReplicaCap && (x < 0 || _share[e] > _share[x]))
            {
                x = e;
            }
        }

        if (x < 0)
        {
            return -1;
        }

        BuildSpareSlots(allowance);
        var split = _load[x] / (_cnt[x] + 1);
        var (target, relocate) = KickTarget(x, a, split);
        if (target < 0)
        {
            return -1;
        }

        Array.Copy(_row, _snapshot, _row.Length);
        var mark = log?.OpCount ?? 0;
        var delta = 0.0;
        var written = 0;
        if (relocate >= 0)
        {
            var y = _row[target];
            delta += ReplicateDelta(y, relocate, _row[relocate]);
            log?.BeginOp(0);
            written += Apply(new Op(OpKind.Replicate, -1, relocate, y, 0), log);
            delta += DropDelta(y, target);
            log?.BeginOp(0);
            written += Apply(new Op(OpKind.Drop, target, -1, y, 0), log);
        }

        delta += ReplicateDelta(x, target, _row[target]);
        log?.BeginOp(0);
        written += Apply(new Op(OpKind.Replicate, -1, target, x, 0), log);
        (_frozenA, _frozenB) = (target, relocate);
        try
        {
            return Repair(mark, delta, written, floor, costPerWrite, writesLeft, allowance, log);
        }
        finally
        {
            (_frozenA, _frozenB) = (-1, -1);
        }
    }

    /// <summary>After a kick: greedy steps (the kicked slots frozen) until the chain pays, else roll back.</summary>
    private int Repair(int mark, double delta, int written, double floor, double costPerWrite, int writesLeft, int allowance, OmniWriteLog? log)
    {
        for (var repair = 0; ; repair++)
        {
            if (-delta / written > floor)
            {
                log?.Merge(mark, (-delta / written) - costPerWrite);
                return written;
            }

            if (repair >= KickRepairs || written >= writesLeft)
            {
                break;
            }

            var best = FindBest(RepairFloor(repair, delta, written, floor), writesLeft - written, allowance);
            if (best.Kind == OpKind.None)
            {
                break;
            }

            delta -= best.Ratio * Writes(best.Kind);
            log?.BeginOp(0);
            written += Apply(best, log);
        }

        StartFromRow(_snapshot);
        log?.Rollback(mark);
        return 0;
    }

    /// <summary>
    /// The floor of a kick's repair search: any gain (the slack) before the last repair, since a later repair may
    /// still make the chain pay. At the last repair only an operation that makes the chain pay can change the
    /// outcome: one that does not is rolled back with the rest, as when none is found. An operation of w writes and
    /// gain per write r pays when r &gt; (floor x (written + w) + delta) / w, which is lowest for a swap (w = 2) while the
    /// chain does not pay yet; the floor is that, less the slack. <see cref="FindBest"/> returns the best operation
    /// above its floor, so the one it returns is the same as with the lower floor whenever that one can pay.
    /// </summary>
    private double RepairFloor(int repair, double delta, int written, double floor) =>
        repair == KickRepairs - 1 ? Math.Max(_slack, (((floor * (written + 2)) + delta) / 2) - _slack) : _slack;

    /// <summary>
    /// Where a kick puts x's new replica: on the coolest device (prediction) that does not hold x, since the repair
    /// sheds that device's other load. On it, the spare slot (redundant or empty) whose loss heats x's competitors
    /// least, or else the slot of its lightest single-replica occupant, which first moves to the spare slot
    /// elsewhere that ends coolest.
    /// </summary>
    private (int Target, int Relocate) KickTarget(int x, int a, double split)
    {
        for (var r = 0; r < Math.Min(ReceiverCount, _d - 1); r++)
        {
            var b = _order[_d - 1 - r];
            if (b == a || _onDevice[(x * _d) + b] != 0)
            {
                continue;
            }

            var target = -1;
            var best = double.PositiveInfinity;
            var lightest = -1;
            for (var lj = 0; lj < _s; lj++)
            {
                var j = (b * _s) + lj;
                var f = _row[j];
                if (f < 0 ? _used < _spareAllowance : _cnt[f] >= 2)
                {
                    var collateral = f < 0 ? 0 : LevelAfterReplicate(0, j, f, split) - (_dev[b] - _share[f] + split);
                    if (collateral < best)
                    {
                        (best, target) = (collateral, j);
                    }
                }
                else if (f >= 0 && (lightest < 0 || _share[f] < _share[_row[lightest]]))
                {
                    lightest = j;
                }
            }

            if (target >= 0)
            {
                return (target, -1);
            }

            if (lightest < 0)
            {
                continue;
            }

            var y = _row[lightest];
            var home = -1;
            var homeLevel = double.PositiveInfinity;
            for (var i = 0; i < _spareCount; i++)
            {
                var h = _spare[i];
                var c = h / _s;
                if (c == b || _row[h] == y || _onDevice[(y * _d) + c] != 0)
                {
                    continue;
                }

                var after = LevelAfterReplicate(0, h, _row[h], _share[y]);
                if (after < homeLevel)
                {
                    (homeLevel, home) = (after, h);
                }
            }

            if (home >= 0)
            {
                return (lightest, home);
            }
        }

        return (-1, -1);
    }

    private enum OpKind
    {
        None,
        Swap,
        Replicate,
        Drop,
    }

    private readonly record struct Op(OpKind Kind, int SlotA, int SlotB, int Expert, double Ratio);

    private static int Writes(OpKind kind) => kind == OpKind.Swap ? 2 : 1;

    private int WorstScenario()
    {
        var worst = -1;
        for (var k = 1; k < _k1; k++)
        {
            if (_w[k] > 0 && (worst < 0 || _w[k] * _peak[k] > _w[worst] * _peak[worst]))
            {
                worst = k;
            }
        }

        return worst;
    }

    /// <summary>
    /// The best operation (highest gain per slot write above <paramref name="floor"/>) that takes load off a source
    /// device: the prediction's peak device, and the peak device of the scenario that weighs most in the objective.
    /// Candidates are screened on the source's scenario k: swaps only with the coolest devices, keeping per replica the
    /// two partners that level the source and the partner's device best; re-replications into the spare slot that
    /// ends coolest; drops of redundant replicas. Each candidate (and each replica's whole swap screen) has an upper
    /// bound on its gain; they are taken in descending order of bound and scored exactly until no bound can beat the
    /// best found (branch and bound). The result is the candidate of the highest ratio, ties to the one first in the
    /// order of the search's earlier form (per source, per replica: swap partners, re-replication, drop).
    /// </summary>
    private Op FindBest(double floor, int writesLeft, int allowance)
    {
        BuildSpareSlots(allowance);
        (_firstLevels, _sortedStage) = (-1, 0);
        _candidates = 0;
        _floor = floor;

        var worst = WorstScenario();
        if (_w[0] > 0)
        {
            AddCandidates(0, _order[0], 0, writesLeft);
        }

        if (worst > 0)
        {
            AddCandidates(1, _order[worst * _d], worst, writesLeft);
        }

        var best = new Op(OpKind.None, -1, -1, -1, floor);
        var bestIndex = -1;
        while (true)
        {
            var pick = -1;
            var top = double.NegativeInfinity;
            for (var c = 0; c < _candidates; c++)
            {
                if (_cKind[c] != Candidate.None && (pick < 0 || _cBound[c] > top))
                {
                    (pick, top) = (c, _cBound[c]);
                }
            }

            if (pick < 0 || (!_percentile && top <= best.Ratio - _slack))
            {
                break;
            }

            var kind = _cKind[pick];
            _cKind[pick] = Candidate.None;
            var x = _cX[pick];
            var index = _cIndex[pick];
            double ratio;
            Op op;
            switch (kind)
            {
                case Candidate.Replicate:
                    ratio = -ReplicateDelta(x, _cSlot[pick], _row[_cSlot[pick]]);
                    op = new Op(OpKind.Replicate, -1, _cSlot[pick], x, ratio);
                    break;
                case Candidate.Drop:
                    ratio = -DropDelta(x, _cSlot[pick]);
                    op = new Op(OpKind.Drop, _cSlot[pick], -1, x, ratio);
                    break;
                case Candidate.Swap:
                    var i = _cSlot[pick];
                    var partner = _cPartner[pick];
                    ratio = -SwapDelta(i / _s, x, partner / _s, _row[partner]) / 2;
                    op = new Op(OpKind.Swap, i, partner, x, ratio);
                    break;
                default: // Candidate.Screen: its swap partners join the table with their own bounds
                    ScreenSwaps(_cSource[pick], _cSlot[pick], x, index);
                    continue;
            }

            if (ratio > best.Ratio || (ratio == best.Ratio && index < bestIndex))
            {
                (best, bestIndex) = (op, index);
            }
        }

        return best;
    }

    /// <summary>A candidate of <see cref="FindBest"/>: an operation to score, or a replica's swap screen to run.</summary>
    private enum Candidate
    {
        None,
        Replicate,
        Drop,
        Screen,
        Swap,
    }

    private void AddCandidate(Candidate kind, double bound, int source, int x, int slot, int partner, int index)
    {
        if (!_percentile && bound <= _floor - _slack)
        {
            return; // cannot pay its writes
        }

        var c = _candidates++;
        _cKind[c] = kind;
        _cBound[c] = _percentile ? double.PositiveInfinity : bound;
        _cSource[c] = source;
        _cX[c] = x;
        _cSlot[c] = slot;
        _cPartner[c] = partner;
        _cIndex[c] = index;
    }

    /// <summary>
    /// The candidates of source <paramref name="source"/> (0 or 1): device <paramref name="a"/>, the peak of scenario
    /// <paramref name="k"/>. Re-replications get their spare slot here (the one that ends coolest on scenario k); swap
    /// screens are run only when taken (<see cref="ScreenSwaps"/>).
    /// </summary>
    private void AddCandidates(int source, int a, int k, int writesLeft)
    {
        var dev = _dev.AsSpan(k * _d, _d);
        _srcDevice[source] = a;
        _srcScenario[source] = k;
        var receivers = writesLeft >= 2 ? ReceiverDevices(source, a, k) : 0;
        _srcReceivers[source] = receivers;
        _srcSlotsReady[source] = false;
        var boundBase = 0.0;
        var heaviest = 0.0;
        var commUnit = _commWeight > 0 ? _commWeight * ((1.0 / _nodes) + (_affinity ? 1 : 0)) / _d : 0;
        if (receivers > 0 && !_percentile)
        {
            // One bound for every swap of a replica: a and all receivers marked at once, the warmest receiver's
            // weight, the heaviest occupant's load; where a is the peak, it falls at most to its load without x.
            _stamp++;
            _mark[a] = _stamp;
            var warmest = 0.0;
            var rb = source * ReceiverCount;
            for (var r = 0; r < receivers; r++)
            {
                var b = _recvDevice[rb + r];
                _mark[b] = _stamp;
                warmest = Math.Max(warmest, _devW[b]);
                for (var lj = 0; lj < _s; lj++)
                {
                    var y = _row[(b * _s) + lj];
                    if (y >= 0)
                    {
                        heaviest = Math.Max(heaviest, _load[y]);
                    }
                }
            }

            boundBase = GainBound(_devW[a] + warmest, 0);
            for (var kk = 0; kk < _k1; kk++)
            {
                _restLevel[kk] = _order[kk * _d] == a ? Math.Max(0, MaxUnmarked(kk)) : double.NaN;
            }
        }

        var levelsReady = false;
        for (var li = 0; li < _s; li++)
        {
            var i = (a * _s) + li;
            var x = _row[i];
            if (x < 0 || i == _frozenA || i == _frozenB)
            {
                continue;
            }

            // The tie-break key: the order in which the search's earlier form met its candidates (per source, per
            // replica: swap partners +0 and +1, re-replication +2, drop +3).
            var index = ((source * _s) + li) * 4;
            if (receivers > 0)
            {
                var bound = _percentile ? 0 : (SwapBoundOf(a, x, boundBase) + (commUnit * 2 * (_load[x] + heaviest))) / 2;
                AddCandidate(Candidate.Screen, bound, source, x, i, -1, index);
            }

            if (_cnt[x] < ReplicaCap)
            {
                // Spare slot levels (scenario k) without x: the slot's device minus its occupant, and the occupant's
                // other replicas after taking over its tokens. Computed once per source device.
                if (!levelsReady)
                {
                    levelsReady = true;
                    if (source == 0)
                    {
                        _firstLevels = k;
                    }

                    // The least split among a's replicas: slots that cannot end below a even with it are left out of
                    // the scans.
                    _liveSplit = double.PositiveInfinity;
                    for (var lj = li; lj < _s; lj++)
                    {
                        var e = _row[(a * _s) + lj];
                        if (e >= 0 && _cnt[e] < ReplicaCap)
                        {
                            _liveSplit = Math.Min(_liveSplit, _load[(k * _e) + e] / (_cnt[e] + 1));
                        }
                    }

                    LiveLevels(k, dev[a]);
                }

                var target = SpareTarget(a, x, k, dev[a], source + 1);
                if (target >= 0)
                {
                    var bound = _percentile ? 0 : ReplicateGainBound(a, x, target, _row[target]);
                    AddCandidate(Candidate.Replicate, bound, source, x, target, -1, index + 2);
                }
            }

            if (_cnt[x] >= 2)
            {
                var bound = _percentile ? 0 : DropGainBound(a, x);
                AddCandidate(Candidate.Drop, bound, source, x, i, -1, index + 3);
            }
        }
    }

    /// <summary>
    /// The spare slot (scenario k) where a new replica of x ends coolest, below <paramref name="limit"/> (ties: the
    /// lower base level), as a scan of the slots sorted by base level finds it; only when two slots tie on both does
    /// the sorted order itself decide (<see cref="SortSpares"/>). -1 when none.
    /// </summary>
    private int SpareTarget(int a, int x, int k, double limit, int stage)
    {
        var split = _load[(k * _e) + x] / (_cnt[x] + 1);
        var target = -1;
        var level = limit;
        var targetBase = double.PositiveInfinity;
        var tied = false;
        for (var u = 0; u < _liveCount; u++)
        {
            var t = _live[u];
            var spareBase = _spareBase[t];
            var after = Math.Max(spareBase + split, _spareSiblings[t]);
            if (after > level || (after == level && (target < 0 || spareBase > targetBase)))
            {
                continue;
            }

            var j = _spare[t];
            var b = j / _s;
            if (b == a || _row[j] == x || _onDevice[(x * _d) + b] != 0)
            {
                continue;
            }

            if (after == level && spareBase == targetBase)
            {
                tied = true;
                continue;
            }

            (level, target, targetBase, tied) = (after, j, spareBase, false);
        }

        if (!tied)
        {
            return target;
        }

        SortSpares(stage, k);
        LiveSpares(limit);
        target = -1;
        level = limit;
        for (var t = 0; t < _spareCount; t++)
        {
            if (_spareBase[t] + split >= level)
            {
                break;
            }

            var after = Math.Max(_spareBase[t] + split, _spareSiblings[t]);
            if (after >= level)
            {
                continue;
            }

            var j = _spare[t];
            var b = j / _s;
            if (b == a || _row[j] == x || _onDevice[(x * _d) + b] != 0)
            {
                continue;
            }

            level = after;
            target = j;
        }

        return target;
    }

    /// <summary>
    /// The spare slots (indices into the levels) that may end below <paramref name="limit"/> with a new replica of
    /// split <see cref="_liveSplit"/> or more: the others can never be a re-replication's target from this source.
    /// </summary>
    private void LiveSpares(double limit)
    {
        _liveCount = 0;
        for (var t = 0; t < _spareCount; t++)
        {
            if (_spareBase[t] + _liveSplit < limit && _spareSiblings[t] < limit)
            {
                _live[_liveCount++] = t;
            }
        }
    }

    /// <summary>
    /// The swap screen of replica x (slot i) of a source device: the two partners over the coolest devices that level
    /// a and the partner's device best on the source's scenario; each becomes a candidate with its own bound.
    /// </summary>
    private void ScreenSwaps(int source, int i, int x, int index)
    {
        var a = _srcDevice[source];
        var k = _srcScenario[source];
        var receivers = _srcReceivers[source];
        var rb = source * ReceiverCount;
        if (!_srcSlotsReady[source])
        {
            ReceiverSlots(source, a, k, receivers);
            _srcSlotsReady[source] = true;
        }

        var load = _dev[(k * _d) + a];
        var ux = _share[(k * _e) + x];
        int first = -1, second = -1;
        double firstTop = double.PositiveInfinity, secondTop = double.PositiveInfinity;
        var held = _onDevice.AsSpan(x * _d, _d);
        for (var r = 0; r < receivers; r++)
        {
            if (held[_recvDevice[rb + r]] != 0)
            {
                continue;
            }

            var gap = _recvGap[rb + r];
            var level = _recvLoad[rb + r];
            if ((load + level) * 0.5 * (1 - 1e-12) >= secondTop)
            {
                break; // no swap with this or a warmer device levels a below the second partner found
            }

            for (var t = _recvStart[rb + source + r]; t < _recvStart[rb + source + r + 1]; t++)
            {
                var shift = ux - _recvShare[t];
                if (shift <= 0 || shift >= gap)
                {
                    continue;
                }

                var top = Math.Max(load - shift, level + shift);
                if (top < firstTop)
                {
                    (second, secondTop) = (first, firstTop);
                    (first, firstTop) = (_recvSlot[t], top);
                }
                else if (top < secondTop)
                {
                    (second, secondTop) = (_recvSlot[t], top);
                }
            }
        }

        if (first >= 0)
        {
            var bound = _percentile ? 0 : SwapGainBound(a, x, first / _s, _row[first]) / 2;
            AddCandidate(Candidate.Swap, bound, source, x, i, first, index);
        }

        if (second >= 0)
        {
            var bound = _percentile ? 0 : SwapGainBound(a, x, second / _s, _row[second]) / 2;
            AddCandidate(Candidate.Swap, bound, source, x, i, second, index + 1);
        }
    }

    /// <summary>The swap screen's bound for x on a: <paramref name="boundBase"/>, less where a cannot fall below its load without x.</summary>
    private double SwapBoundOf(int a, int x, double boundBase)
    {
        var bound = boundBase;
        for (var k = 0; k < _k1; k++)
        {
            var rest = _restLevel[k];
            if (!double.IsNaN(rest))
            {
                var without = _dev[(k * _d) + a] - _share[(k * _e) + x];
                if (without > rest)
                {
                    bound -= _w[k] * (without - rest);
                }
            }
        }

        return bound;
    }

    /// <summary>
    /// The swap partners of source <paramref name="source"/>, device <paramref name="a"/>, on scenario
    /// <paramref name="k"/>: the coolest devices below a (at most <see cref="ReceiverCount"/>), each with its load and
    /// its gap to a. Returns the number of devices; their slots come with <see cref="ReceiverSlots"/>.
    /// </summary>
    private int ReceiverDevices(int source, int a, int k)
    {
        var dev = _dev.AsSpan(k * _d, _d);
        var order = _order.AsSpan(k * _d, _d);
        var rb = source * ReceiverCount;
        var count = 0;
        for (var r = 0; r < Math.Min(ReceiverCount, _d - 1); r++)
        {
            var b = order[_d - 1 - r];
            var gap = dev[a] - dev[b];
            if (gap <= 0)
            {
                break; // the order is by load: the remaining devices are no cooler than a
            }

            _recvDevice[rb + count] = b;
            _recvGap[rb + count] = gap;
            _recvLoad[rb + count] = dev[b];
            count++;
        }

        return count;
    }

    /// <summary>
    /// Per receiver of the source, the slots whose occupant (or emptiness) may trade places with a replica on a, with
    /// the occupant's share on scenario k.
    /// </summary>
    private void ReceiverSlots(int source, int a, int k, int receivers)
    {
        var share = _share.AsSpan(k * _e, _e);
        var rb = source * ReceiverCount;
        var sb = rb + source;
        var n = rb * _s;
        for (var r = 0; r < receivers; r++)
        {
            var b = _recvDevice[rb + r];
            _recvStart[sb + r] = n;
            for (var lj = 0; lj < _s; lj++)
            {
                var j = (b * _s) + lj;
                var y = _row[j];
                if ((y >= 0 && _onDevice[(y * _d) + a] != 0) || j == _frozenA || j == _frozenB)
                {
                    continue;
                }

                _recvSlot[n] = j;
                _recvShare[n] = y >= 0 ? share[y] : 0;
                n++;
            }
        }

        _recvStart[sb + receivers] = n;
    }

    /// <summary>
    /// Puts the spare slots in the order the search's earlier form scanned them for source <paramref name="stage"/>
    /// (1 or 2) of <see cref="FindBest"/>: sorted (unstably) by the first source's base levels when that source
    /// computed them, then by scenario <paramref name="k"/>'s; refills the levels in that order. Needed only to break
    /// exact ties the same way.
    /// </summary>
    private void SortSpares(int stage, int k)
    {
        if (_sortedStage == stage)
        {
            return;
        }

        if (stage == 2 && _sortedStage == 0 && _firstLevels >= 0)
        {
            SpareLevels(_firstLevels);
            Array.Sort(_spareBase, _spare, 0, _spareCount);
        }

        SpareLevels(k);
        Array.Sort(_spareBase, _spare, 0, _spareCount);
        SpareLevels(k);
        _sortedStage = stage;
    }

    /// <summary>
    /// Fills, per spare slot, <see cref="LevelAfterReplicate"/>'s two parts for scenario k: the slot's device without
    /// its occupant, and the occupant's other replicas after taking over its tokens.
    /// </summary>
    private void SpareLevels(int k)
    {
        for (var t = 0; t < _spareCount; t++)
        {
            var j = _spare[t];
            var f = _row[j];
            _spareBase[t] = _dev[(k * _d) + (j / _s)] - (f >= 0 ? _share[(k * _e) + f] : 0);
        }

        for (var t = 0; t < _spareCount; t++)
        {
            var j = _spare[t];
            var f = _row[j];
            var siblings = double.NegativeInfinity;
            if (f >= 0)
            {
                var raise = _share[(k * _e) + f] / (_cnt[f] - 1);
                for (var slot = _repHead[f]; slot >= 0; slot = _repNext[slot])
                {
                    if (slot != j)
                    {
                        siblings = Math.Max(siblings, _dev[(k * _d) + (slot / _s)] + raise);
                    }
                }
            }

            _spareSiblings[t] = siblings;
        }
    }

    /// <summary>
    /// <see cref="SpareLevels"/> and <see cref="LiveSpares"/> in one pass: the occupant's siblings are only computed
    /// for slots whose base level lets them end below <paramref name="limit"/> (the others' are left stale, and only
    /// the live slots are read until the next fill).
    /// </summary>
    private void LiveLevels(int k, double limit)
    {
        _liveCount = 0;
        for (var t = 0; t < _spareCount; t++)
        {
            var j = _spare[t];
            var f = _row[j];
            var spareBase = _dev[(k * _d) + (j / _s)] - (f >= 0 ? _share[(k * _e) + f] : 0);
            _spareBase[t] = spareBase;
            if (spareBase + _liveSplit >= limit)
            {
                continue;
            }

            var siblings = double.NegativeInfinity;
            if (f >= 0)
            {
                var raise = _share[(k * _e) + f] / (_cnt[f] - 1);
                for (var slot = _repHead[f]; slot >= 0; slot = _repNext[slot])
                {
                    if (slot != j)
                    {
                        siblings = Math.Max(siblings, _dev[(k * _d) + (slot / _s)] + raise);
                    }
                }
            }

            _spareSiblings[t] = siblings;
            if (siblings < limit)
            {
                _live[_liveCount++] = t;
            }
        }
    }

    /// <summary>
    /// Scenario-k load of the hottest device a new replica (of per-replica load <paramref name="split"/>) in slot j
    /// leaves behind: j's device, and the devices of f's other replicas, which take over f's tokens.
    /// </summary>
    private double LevelAfterReplicate(int k, int j, int f, double split)
    {
        var b = j / _s;
        if (f < 0)
        {
            return _dev[(k * _d) + b] + split;
        }

        var share = _share[(k * _e) + f];
        var level = _dev[(k * _d) + b] - share + split;
        var raise = share / (_cnt[f] - 1);
        for (var slot = _repHead[f]; slot >= 0; slot = _repNext[slot])
        {
            if (slot != j)
            {
                level = Math.Max(level, _dev[(k * _d) + (slot / _s)] + raise);
            }
        }

        return level;
    }

    /// <summary>Removes <paramref name="slot"/> from expert x's replica list.</summary>
    private void UnlinkReplica(int x, int slot)
    {
        if (_repHead[x] == slot)
        {
            _repHead[x] = _repNext[slot];
            return;
        }

        for (var p = _repHead[x]; p >= 0; p = _repNext[p])
        {
            if (_repNext[p] == slot)
            {
                _repNext[p] = _repNext[slot];
                return;
            }
        }
    }

    /// <summary>Adds <paramref name="slot"/> to expert x's replica list, which stays in ascending slot order.</summary>
    private void LinkReplica(int x, int slot)
    {
        if (_repHead[x] < 0 || _repHead[x] > slot)
        {
            _repNext[slot] = _repHead[x];
            _repHead[x] = slot;
            return;
        }

        var p = _repHead[x];
        while (_repNext[p] >= 0 && _repNext[p] < slot)
        {
            p = _repNext[p];
        }

        _repNext[slot] = _repNext[p];
        _repNext[p] = slot;
    }

    /// <summary>Each expert's replica slots as a list in ascending slot order (then kept up to date by <see cref="Write"/>).</summary>
    private void BuildReplicaLists()
    {
        Array.Fill(_repHead, -1);
        for (var slot = _row.Length - 1; slot >= 0; slot--)
        {
            var x = _row[slot];
            if (x >= 0)
            {
                _repNext[slot] = _repHead[x];
                _repHead[x] = slot;
            }
        }
    }

    /// <summary>Slots a new replica may take: those of redundant replicas, and empty ones while the allowance lasts.</summary>
    private void BuildSpareSlots(int allowance)
    {
        _spareAllowance = allowance;
        _spareCount = 0;
        var empties = _used < allowance;
        for (var slot = 0; slot < _row.Length; slot++)
        {
            var f = _row[slot];
            if ((f >= 0 ? _cnt[f] >= 2 : empties) && slot != _frozenA && slot != _frozenB)
            {
                _spare[_spareCount++] = slot;
            }
        }
    }

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

        return EvaluateTouched(CommChange(x, i / _s / _devicesPerNode, -1));
    }

    private void BeginTouch()
    {
        _stamp++;
        _touchCount = 0;
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
        var cost = lost * _load[x] / _nodes / _d;
        if (_affinity && node == _home[x] && lost != 0)
        {
            cost += lost * _load[x] / _d;
        }

        return cost;
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
                ReplicateDelta(op.Expert, op.SlotB, _row[op.SlotB]);
                AddTouchedDeltas();
                Write(op.SlotB, op.Expert, log);
                SortOrders();
                return 1;
            default:
                DropDelta(op.Expert, op.SlotA);
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
        log?.Write(slot, expert);
    }

    private void UpdateShare(int e)
    {
        var c = _cnt[e];
        if (c == 1)
        {
            // Most experts have one replica: their share is their load (a division by one, skipped).
            for (var k = 0; k < _k1; k++)
            {
                _share[(k * _e) + e] = _load[(k * _e) + e];
            }

            return;
        }

        for (var k = 0; k < _k1; k++)
        {
            _share[(k * _e) + e] = c > 0 ? _load[(k * _e) + e] / c : 0;
        }
    }

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

    /// <summary>Device loads, orders, peaks and the objective from the row and counts.</summary>
    private void Recompute()
    {
        BuildReplicaLists();
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
        // descending, then devices ascending, is a total order), and after a rolled-back kick (StartFromRow of the
        // snapshot) the previous order is nearly the new one, which the insertion sort then passes over once.
        Refresh(-1, -1);
    }

    /// <summary>Insertion sort per scenario, descending by load then ascending device (orders barely change).</summary>
    private void SortOrders()
    {
        for (var k = 0; k < _k1; k++)
        {
            var order = _order.AsSpan(k * _d, _d);
            var loads = _dev.AsSpan(k * _d, _d);
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
