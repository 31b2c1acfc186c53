using System.Globalization;
using System.Text;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;

namespace ExpertBridge.Core.Latency;

/// <summary>Latency of one policy over a replay's scored steps.</summary>
public sealed record PolicyLatency(string Policy, double StepLatencyMeanMs, double StepLatencyP99Ms, double ThroughputTokensPerS, double ComputeMsMean, double CommMsMean, ReplayResult? Replay);

/// <summary>
/// The references a policy's latency is read against, over the same scored steps: BestEP (uniform routing), the
/// balanced-load bound (<see cref="LatencyModel.BalancedBound"/>: no placement beats it) and EPLB in hindsight (each
/// step placed by EPLB on its own loads: no prediction error, no movement cost).
/// </summary>
public sealed record LatencyReferences(PolicyLatency BestEp, PolicyLatency BalancedBound, PolicyLatency Hindsight);

/// <summary>
/// A replay observer that prices every scored step with a <see cref="LatencyModel"/>, and can also record the
/// tokens each physical slot served (the workload the real GPU benchmark executes) and price the
/// <see cref="LatencyReferences"/>, which do not depend on the policy (one observer of a comparison prices them).
/// </summary>
public sealed class LatencyObserver : IReplayObserver
{
    private readonly LatencyModel _model;
    private readonly Series _policy = new();
    private readonly Series _bestEp = new();
    private readonly Series _bound = new();
    private readonly Series _hindsight = new();
    private readonly int _referenceGroups;
    private readonly int _recordSteps;
    private readonly int _recordLayers;
    private double _tokens;

    /// <param name="model">The latency model.</param>
    /// <param name="recordSteps">Scored steps whose per-slot tokens are kept for <see cref="WorkloadTokens"/> (0: none).</param>
    /// <param name="recordLayers">Layers per recorded step.</param>
    /// <param name="referenceGroups">
    /// When above 0, also price the <see cref="References"/>, EPLB in hindsight with this many expert groups.
    /// </param>
    public LatencyObserver(LatencyModel model, int recordSteps = 0, int recordLayers = 0, int referenceGroups = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _recordSteps = recordSteps;
        _recordLayers = recordLayers;
        _referenceGroups = referenceGroups;
    }

    /// <summary>Per recorded step and layer, the integer tokens of each physical slot: [steps][layers * slots].</summary>
    public List<int[]> WorkloadTokens { get; } = [];

    public void OnScoredStep(int stepIndex, Placement placement, ReadOnlySpan<float> counts)
    {
        ArgumentNullException.ThrowIfNull(placement);
        _policy.Add(_model.Step(placement, counts));
        _tokens += _model.TokensPerStep(counts, placement.LogicalExperts);
        if (_referenceGroups > 0)
        {
            var experts = placement.LogicalExperts;
            _bestEp.Add(_model.BestEp(placement.Topology, experts, counts));
            _bound.Add(_model.BalancedBound(placement.Topology, experts, counts));
            var values = new double[counts.Length];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = counts[i];
            }

            var fitted = Eplb.Rebalance(new LoadMatrix(placement.Layers, experts, values), placement.Topology, _referenceGroups).Placement;
            _hindsight.Add(_model.Step(fitted, counts));
        }

        if (WorkloadTokens.Count < _recordSteps)
        {
            WorkloadTokens.Add(_model.SlotTokens(placement, counts, Math.Min(_recordLayers, placement.Layers)));
        }
    }

    /// <summary>The result for <paramref name="replay"/>'s policy.</summary>
    public PolicyLatency Result(string policy, ReplayResult? replay) => _policy.Summarise(policy, _tokens, replay);

    /// <summary>The references over the same steps; null unless the observer was created with reference groups.</summary>
    public LatencyReferences? References() => _referenceGroups > 0
        ? new LatencyReferences(_bestEp.Summarise("bestEp", _tokens, null), _bound.Summarise("balancedBound", _tokens, null), _hindsight.Summarise("eplbHindsight", _tokens, null))
        : null;

    /// <summary>One priced series of steps: each step's latency, and the slowest devices' compute and comm summed.</summary>
    private sealed class Series
    {
        private readonly List<double> _ms = [];
        private double _compute;
        private double _comm;

        public void Add(StepLatency step)
        {
            _ms.Add(step.Millis);
            _compute += step.ComputeMillisOfSlowest;
            _comm += step.CommMillisOfSlowest;
        }

        public PolicyLatency Summarise(string policy, double tokens, ReplayResult? replay)
        {
            if (_ms.Count == 0)
            {
                return new PolicyLatency(policy, 0, 0, 0, 0, 0, replay);
            }

            var sorted = _ms.Order().ToArray();
            var mean = _ms.Average();
            var p99 = sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(0.99 * sorted.Length) - 1)];
            var tokensPerStep = tokens / _ms.Count;
            return new PolicyLatency(policy, mean, p99, tokensPerStep / (mean / 1000.0), _compute / _ms.Count, _comm / _ms.Count, replay);
        }
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
