namespace ExpertBridge.Core.Replay;

/// <summary>One policy decision of a replay: at <paramref name="Step"/>, whether the placement changed and at what cost.</summary>
/// <param name="Step">The step the decision was for (the history held the steps before it).</param>
/// <param name="Applied">True when the placement in force changed.</param>
/// <param name="ExpertsMoved">(layer, slot) pairs whose expert changed.</param>
/// <param name="BytesMoved">Bytes copied: one expert's bytes per slot that received an expert.</param>
/// <param name="PolicyMillis">Wall time of the policy's <c>Decide</c>.</param>
/// <param name="Reason">The policy's reason, as it gave it.</param>
public readonly record struct ReplayDecision(int Step, bool Applied, int ExpertsMoved, long BytesMoved, double PolicyMillis, string Reason);

/// <summary>
/// What one policy did on one trace. Summary fields carry the names of <c>expertbridge replay --json</c>; the series
/// (per scored step, per layer, per device and layer, per decision) feed reports and plots.
/// </summary>
public sealed class ReplayResult
{
    internal ReplayResult(
        string policy,
        int steps,
        int window,
        int interval,
        int devices,
        IReadOnlyList<ReplayDecision> decisions,
        double[] layerStepImbalance,
        double[] layerStepBalancedness,
        double[] layerMaxLoadSum,
        double[] layerMeanLoadSum,
        double[] deviceLayerLoad)
    {
        Policy = policy;
        Steps = steps;
        Window = window;
        Interval = interval;
        Devices = devices;
        Decisions = decisions;
        ScoredSteps = steps - window;
        Layers = layerMaxLoadSum.Length;
        DeviceLayerLoad = deviceLayerLoad;

        foreach (var d in decisions)
        {
            if (d.Applied)
            {
                Rebalances++;
                ExpertsMoved += d.ExpertsMoved;
                BytesMoved += d.BytesMoved;
            }
        }

        PolicyMillisMedian = SampleStatistics.Median(decisions.Select(d => d.PolicyMillis).ToArray());
        ImbalanceMean = SampleStatistics.Mean(layerStepImbalance);
        BalancednessMean = SampleStatistics.Mean(layerStepBalancedness);

        var stepImbalance = new double[ScoredSteps];
        for (var i = 0; i < stepImbalance.Length; i++)
        {
            stepImbalance[i] = SampleStatistics.Mean(layerStepImbalance.AsSpan(i * Layers, Layers));
        }

        for (var l = 0; l < Layers; l++)
        {
            layerMaxLoadSum[l] /= ScoredSteps;
            layerMeanLoadSum[l] /= ScoredSteps;
        }

        StepImbalance = stepImbalance;
        LayerMaxLoadMean = layerMaxLoadSum;
        LayerBestEpMean = layerMeanLoadSum;

        // Sorts in place: the per-(step, layer) values are not kept beyond the percentile.
        ImbalanceP99 = SampleStatistics.PercentileInPlace(layerStepImbalance, 0.99);
    }

    /// <summary>The policy's name.</summary>
    public string Policy { get; }

    /// <summary>Steps in the trace.</summary>
    public int Steps { get; }

    /// <summary>Steps scored: every step from the window on (steps - window).</summary>
    public int ScoredSteps { get; }

    /// <summary>The window W (history length and first scored step).</summary>
    public int Window { get; }

    /// <summary>The interval I between decisions.</summary>
    public int Interval { get; }

    public int Layers { get; }

    public int Devices { get; }

    /// <summary>Decisions that changed the placement in force.</summary>
    public int Rebalances { get; }

    /// <summary>(layer, slot) pairs whose expert changed, summed over rebalances.</summary>
    public long ExpertsMoved { get; }

    /// <summary>Bytes copied, summed over rebalances.</summary>
    public long BytesMoved { get; }

    /// <summary>Mean over scored steps and layers of max / mean device load.</summary>
    public double ImbalanceMean { get; }

    /// <summary>99th percentile (linear interpolation) over scored (step, layer) pairs of max / mean device load.</summary>
    public double ImbalanceP99 { get; }

    /// <summary>Mean over scored steps and layers of mean / max device load.</summary>
    public double BalancednessMean { get; }

    /// <summary>Median wall time of the policy's decisions, in milliseconds.</summary>
    public double PolicyMillisMedian { get; }

    /// <summary>Every decision, keeps included, in step order.</summary>
    public IReadOnlyList<ReplayDecision> Decisions { get; }

    /// <summary>Per scored step (index 0 = step <see cref="Window"/>): imbalance averaged over layers.</summary>
    public IReadOnlyList<double> StepImbalance { get; }

    /// <summary>Per layer: the busiest device's load, averaged over scored steps.</summary>
    public IReadOnlyList<double> LayerMaxLoadMean { get; }

    /// <summary>Per layer: BestEP (mean device load = total / devices), averaged over scored steps.</summary>
    public IReadOnlyList<double> LayerBestEpMean { get; }

    /// <summary>Load each device carried in each layer, summed over scored steps: [devices, layers] row-major.</summary>
    public IReadOnlyList<double> DeviceLayerLoad { get; }

    /// <summary>Load device <paramref name="device"/> carried in <paramref name="layer"/>, summed over scored steps.</summary>
    public double DeviceLoad(int device, int layer) => DeviceLayerLoad[(device * Layers) + layer];
}
