// OmniPlacement, the modes, the settings parsed from the options, and the report of a decision.
// Part of the library that policies/lib/omniplacement.lib.csx loads (the algorithm is described there); only
// using-directives and type declarations, so it also compiles as ordinary C#.
using System;
using System.Globalization;
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
