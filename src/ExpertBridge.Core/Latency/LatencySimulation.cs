using System.Globalization;
using System.Text;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;

namespace ExpertBridge.Core.Latency;

/// <summary>Latency of one policy over a replay's scored steps.</summary>
public sealed record PolicyLatency(string Policy, double StepLatencyMeanMs, double StepLatencyP99Ms, double ThroughputTokensPerS, double ComputeMsMean, double CommMsMean, ReplayResult? Replay);

/// <summary>
/// A replay observer that prices every scored step with a <see cref="LatencyModel"/>, and can also record the
/// tokens each physical slot served (the workload the real GPU benchmark executes).
/// </summary>
public sealed class LatencyObserver : IReplayObserver
{
    private readonly LatencyModel _model;
    private readonly List<double> _stepMs = [];
    private readonly List<double> _bestMs = [];
    private readonly List<double> _boundMs = [];
    private readonly List<double> _hindsightMs = [];
    private readonly int _hindsightGroups;
    private readonly int _recordSteps;
    private readonly int _recordLayers;
    private double _tokens;
    private double _compute;
    private double _comm;
    private double _bestCompute;
    private double _bestComm;
    private double _boundCompute;
    private double _boundComm;
    private double _hindsightCompute;
    private double _hindsightComm;

    /// <param name="model">The latency model.</param>
    /// <param name="recordSteps">Scored steps whose per-slot tokens are kept for <see cref="WorkloadTokens"/> (0: none).</param>
    /// <param name="recordLayers">Layers per recorded step.</param>
    /// <param name="hindsightGroups">
    /// When above 0, also price <see cref="Hindsight"/>: every scored step placed by EPLB fitted on that step's own loads
    /// (with this many expert groups), as no predictive policy can.
    /// </param>
    public LatencyObserver(LatencyModel model, int recordSteps = 0, int recordLayers = 0, int hindsightGroups = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _recordSteps = recordSteps;
        _recordLayers = recordLayers;
        _hindsightGroups = hindsightGroups;
    }

    /// <summary>Per recorded step and layer, the integer tokens of each physical slot: [steps][layers * slots].</summary>
    public List<int[]> WorkloadTokens { get; } = [];

    public void OnScoredStep(int stepIndex, Placement placement, ReadOnlySpan<float> counts)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var step = _model.Step(placement, counts);
        _stepMs.Add(step.Millis);
        _compute += step.ComputeMillisOfSlowest;
        _comm += step.CommMillisOfSlowest;
        _tokens += _model.TokensPerStep(counts, placement.LogicalExperts);
        var best = _model.BestEp(placement.Topology, placement.LogicalExperts, counts);
        _bestMs.Add(best.Millis);
        _bestCompute += best.ComputeMillisOfSlowest;
        _bestComm += best.CommMillisOfSlowest;
        var bound = _model.BalancedBound(placement.Topology, placement.LogicalExperts, counts);
        _boundMs.Add(bound.Millis);
        _boundCompute += bound.ComputeMillisOfSlowest;
        _boundComm += bound.CommMillisOfSlowest;
        if (_hindsightGroups > 0)
        {
            var experts = placement.LogicalExperts;
            var values = new double[counts.Length];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = counts[i];
            }

            var fitted = Eplb.Rebalance(new LoadMatrix(placement.Layers, experts, values), placement.Topology, _hindsightGroups).Placement;
            var hindsight = _model.Step(fitted, counts);
            _hindsightMs.Add(hindsight.Millis);
            _hindsightCompute += hindsight.ComputeMillisOfSlowest;
            _hindsightComm += hindsight.CommMillisOfSlowest;
        }

        if (WorkloadTokens.Count < _recordSteps)
        {
            WorkloadTokens.Add(_model.SlotTokens(placement, counts, Math.Min(_recordLayers, placement.Layers)));
        }
    }

    /// <summary>The result for <paramref name="replay"/>'s policy.</summary>
    public PolicyLatency Result(string policy, ReplayResult? replay) => Summarise(policy, _stepMs, _compute, _comm, replay);

    /// <summary>BestEP over the same steps.</summary>
    public PolicyLatency BestEp() => Summarise("bestEp", _bestMs, _bestCompute, _bestComm, null);

    /// <summary>The balanced-load bound over the same steps (see <see cref="LatencyModel.BalancedBound"/>).</summary>
    public PolicyLatency BalancedBound() => Summarise("balancedBound", _boundMs, _boundCompute, _boundComm, null);

    /// <summary>
    /// EPLB in hindsight over the same steps: each step placed on its own loads (no prediction error, no movement
    /// cost). What balance a placement of this topology can reach on this trace; BestEP's uniform routing is below it.
    /// Empty unless the observer was created with hindsight groups.
    /// </summary>
    public PolicyLatency Hindsight() => Summarise("eplbHindsight", _hindsightMs, _hindsightCompute, _hindsightComm, null);

    private PolicyLatency Summarise(string policy, List<double> ms, double compute, double comm, ReplayResult? replay)
    {
        if (ms.Count == 0)
        {
            return new PolicyLatency(policy, 0, 0, 0, 0, 0, replay);
        }

        var sorted = ms.Order().ToArray();
        var mean = ms.Average();
        var p99 = sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(0.99 * sorted.Length) - 1)];
        var tokensPerStep = _tokens / ms.Count;
        return new PolicyLatency(policy, mean, p99, tokensPerStep / (mean / 1000.0), compute / ms.Count, comm / ms.Count, replay);
    }
}

/// <summary>
/// The workload file the real GPU benchmark (tests/gpu/moe-bench) executes: per policy, the tokens each physical slot
/// serves per step and layer, with the latency model's compute-only prediction for the same tokens.
/// </summary>
public static class MoeWorkload
{
    /// <summary>Writes the text format documented in tests/gpu/moe-bench/moe_bench.cu.</summary>
    public static void Write(TextWriter writer, Topology topology, int layers, MoeModel model, LatencyModel latency, IReadOnlyList<(string Policy, IReadOnlyList<int[]> Steps)> policies)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(latency);
        ArgumentNullException.ThrowIfNull(policies);
        var steps = policies.Count == 0 ? 0 : policies.Min(p => p.Steps.Count);
        var inv = CultureInfo.InvariantCulture;
        writer.WriteLine("ebmoe 1");
        writer.WriteLine(string.Create(inv, $"shape {topology.Devices} {topology.SlotsPerDevice} {layers} {steps} {model.Hidden} {model.ExpertIntermediate}"));
        var slotTokens = new double[topology.SlotsPerDevice];
        foreach (var (policy, recorded) in policies)
        {
            double predicted = 0;
            for (var t = 0; t < steps; t++)
            {
                for (var l = 0; l < layers; l++)
                {
                    double worst = 0;
                    for (var d = 0; d < topology.Devices; d++)
                    {
                        for (var k = 0; k < topology.SlotsPerDevice; k++)
                        {
                            slotTokens[k] = recorded[t][(l * topology.Slots) + topology.SlotOf(d, k)];
                        }

                        worst = Math.Max(worst, latency.DeviceComputeMillis(slotTokens));
                    }

                    predicted += worst;
                }
            }

            writer.WriteLine(string.Create(inv, $"policy {policy.Replace(' ', '_')} {predicted / Math.Max(1, steps):0.######}"));
            var line = new StringBuilder();
            for (var t = 0; t < steps; t++)
            {
                for (var l = 0; l < layers; l++)
                {
                    line.Clear();
                    for (var s = 0; s < topology.Slots; s++)
                    {
                        line.Append(recorded[t][(l * topology.Slots) + s].ToString(inv)).Append(' ');
                    }

                    writer.WriteLine(line.ToString().TrimEnd());
                }
            }
        }
    }
}
