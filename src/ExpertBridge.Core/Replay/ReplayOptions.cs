using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Replay;

/// <summary>
/// How a replay runs: the cadence (window W, interval I), the model's expert groups, the options every policy
/// receives, and whether co-located replicas are allowed. Expert bytes come from <see cref="Topology.ExpertBytes"/>
/// (or <see cref="LayerExpertBytes"/> when layers differ).
/// </summary>
public sealed record ReplayOptions
{
    /// <summary>Steps of history the policy sees and the first step scored (W).</summary>
    public int Window { get; init; } = 100;

    /// <summary>Steps between two policy decisions (I); decisions happen at W, W + I, W + 2I, ...</summary>
    public int Interval { get; init; } = 100;

    /// <summary>Expert groups of the model (DeepSeek-V3: 8); experts must divide evenly into them.</summary>
    public int ExpertGroups { get; init; } = 1;

    /// <summary>Options handed to the policy in every <see cref="PolicyContext"/>.</summary>
    public PolicyOptions PolicyOptions { get; init; } = PolicyOptions.Empty;

    /// <summary>Accept placements that put two replicas of one expert on one device.</summary>
    public bool AllowColocatedReplicas { get; init; }

    /// <summary>One expert's bytes per layer; null means <see cref="Topology.ExpertBytes"/> for every layer.</summary>
    public IReadOnlyList<long>? LayerExpertBytes { get; init; }

    /// <summary>Called for every scored step (the latency model of <c>simulate</c> hooks in here); null for none.</summary>
    public IReplayObserver? Observer { get; init; }

    /// <summary>Throws <see cref="InputException"/> naming the option when these options cannot replay <paramref name="trace"/>.</summary>
    internal void Validate(LoadTrace trace)
    {
        if (Window < 1)
        {
            throw new InputException("--window", "window >= 1 step", $"got {Window}");
        }

        if (Window >= trace.Steps)
        {
            throw new InputException("--window", "window < trace steps (steps from the window on are scored)", $"window {Window} leaves no step to score in a trace of {trace.Steps} steps");
        }

        if (Interval < 1)
        {
            throw new InputException("--interval", "interval >= 1 step", $"got {Interval}");
        }

        if (ExpertGroups < 1 || trace.Experts % ExpertGroups != 0)
        {
            throw new InputException("--groups", "experts divisible by groups", $"{trace.Experts} experts do not split into {ExpertGroups} groups");
        }

        if (LayerExpertBytes is not null)
        {
            if (LayerExpertBytes.Count != trace.Layers)
            {
                throw new InputException("expert bytes", "one byte size per layer", $"got {LayerExpertBytes.Count} sizes for {trace.Layers} layers");
            }

            for (var l = 0; l < LayerExpertBytes.Count; l++)
            {
                if (LayerExpertBytes[l] < 0)
                {
                    throw new InputException("expert bytes", "expert bytes >= 0", $"layer {l} has {LayerExpertBytes[l]}");
                }
            }
        }
    }
}

/// <summary>Sees every scored step of a replay with the placement in force (hook for latency models and reports).</summary>
public interface IReplayObserver
{
    /// <summary>The counts of step <paramref name="stepIndex"/> ([layers, experts] row-major) were served by <paramref name="placement"/>.</summary>
    void OnScoredStep(int stepIndex, Placement placement, ReadOnlySpan<float> counts);
}

/// <summary>Where a replay is: <paramref name="Step"/> steps of <paramref name="Steps"/> done.</summary>
public readonly record struct ReplayProgress(string Policy, int Step, int Steps)
{
    /// <summary>Fraction done, 0 to 1.</summary>
    public double Fraction => Steps > 0 ? (double)Step / Steps : 1.0;
}
