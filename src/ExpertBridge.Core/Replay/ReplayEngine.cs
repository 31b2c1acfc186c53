using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Replay;

/// <summary>
/// The predictive replay every placement policy is judged by. Starts from the trivial placement; at steps
/// W, W + I, W + 2I, ... the policy sees the W steps before that step and the placement in force, and returns a
/// placement or keeps the current one; every step from W on is scored with the placement in force at that step.
/// Pure: no I/O, no statics; the trace is read in place and the history is fed one step at a time.
/// </summary>
public static class ReplayEngine
{
    /// <summary>Replays <paramref name="trace"/> on <paramref name="topology"/> with <paramref name="policy"/>.</summary>
    /// <exception cref="InputException">The options do not fit the trace, or the policy returned an invalid placement.</exception>
    /// <exception cref="PolicyFailedException">The policy threw something other than <see cref="InputException"/>.</exception>
    public static ReplayResult Run(
        LoadTrace trace,
        Topology topology,
        IPlacementPolicy policy,
        ReplayOptions options,
        IProgress<ReplayProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(trace);

        var run = new ReplayRun(trace, topology, policy, options, progress, cancellation);
        return run.Execute();
    }

    /// <summary>The state of one replay; allocated once, reused for every step.</summary>
    private sealed class ReplayRun
    {
        private readonly LoadTrace _trace;
        private readonly Topology _topology;
        private readonly IPlacementPolicy _policy;
        private readonly ReplayOptions _options;
        private readonly IProgress<ReplayProgress>? _progress;
        private readonly CancellationToken _cancellation;
        private readonly IReadOnlyList<long> _layerBytes;
        private readonly LoadHistory _history;
        private readonly int _layers;
        private readonly int _experts;
        private readonly int _devices;

        // Replica counts of the placement in force, [layers, experts]; refreshed when the placement changes.
        private readonly int[] _replicaCounts;
        private readonly double[] _deviceLoads;

        // Per (scored step, layer) imbalance and balancedness; per layer sums over scored steps; per (device, layer) sums.
        private readonly double[] _imbalance;
        private readonly double[] _balancedness;
        private readonly double[] _layerMaxSum;
        private readonly double[] _layerMeanSum;
        private readonly double[] _deviceLayerLoad;
        private readonly List<ReplayDecision> _decisions = [];
        private Placement _current;

        public ReplayRun(LoadTrace trace, Topology topology, IPlacementPolicy policy, ReplayOptions options, IProgress<ReplayProgress>? progress, CancellationToken cancellation)
        {
            _trace = trace;
            _topology = topology;
            _policy = policy;
            _options = options;
            _progress = progress;
            _cancellation = cancellation;
            _layers = trace.Layers;
            _experts = trace.Experts;
            _devices = topology.Devices;
            _layerBytes = options.LayerExpertBytes ?? Enumerable.Repeat(topology.ExpertBytes, _layers).ToArray();
            _history = new LoadHistory(_layers, _experts, options.Window);
            _current = TrivialPolicy.Build(topology, _layers, _experts);
            _replicaCounts = new int[_layers * _experts];
            _deviceLoads = new double[_devices];
            var scored = trace.Steps - options.Window;
            _imbalance = new double[scored * _layers];
            _balancedness = new double[scored * _layers];
            _layerMaxSum = new double[_layers];
            _layerMeanSum = new double[_layers];
            _deviceLayerLoad = new double[_devices * _layers];
            RefreshReplicaCounts();
        }

        public ReplayResult Execute()
        {
            var steps = _trace.Steps;
            var window = _options.Window;
            var reportEvery = Math.Max(1, steps / 200);
            for (var t = 0; t < steps; t++)
            {
                _cancellation.ThrowIfCancellationRequested();
                var counts = _trace.GetStep(t);
                if (t >= window)
                {
                    if ((t - window) % _options.Interval == 0)
                    {
                        Decide(t);
                    }

                    Score(t, counts);
                }

                _history.Record(counts);
                if (_progress is not null && ((t + 1) % reportEvery == 0 || t + 1 == steps))
                {
                    _progress.Report(new ReplayProgress(_policy.Name, t + 1, steps));
                }
            }

            return new ReplayResult(_policy.Name, steps, window, _options.Interval, _devices, _decisions, _imbalance, _balancedness, _layerMaxSum, _layerMeanSum, _deviceLayerLoad);
        }

        private void Decide(int step)
        {
            var context = new PolicyContext(_topology, _history, _current, _options.PolicyOptions, _options.ExpertGroups, _layerBytes, step, _cancellation);
            var decision = PolicyInvocation.Decide(_policy, context, out var millis);
            if (decision.Placement is null)
            {
                _decisions.Add(new ReplayDecision(step, false, 0, 0, millis, decision.Reason));
                return;
            }

            PolicyInvocation.EnsureValid(_policy, context, decision, _options.AllowColocatedReplicas);
            var next = decision.Placement;
            // Semantics of moves and bytes live in PlacementDiff; one diff per decision, not per step.
            var diff = PlacementDiff.Compute(_current, next, _layerBytes);
            var moved = diff.ExpertsMoved;
            var bytes = diff.BytesMoved;
            _decisions.Add(new ReplayDecision(step, moved > 0, moved, bytes, millis, decision.Reason));
            if (moved > 0)
            {
                _current = next;
                RefreshReplicaCounts();
            }
        }

        private void Score(int step, ReadOnlySpan<float> counts)
        {
            var row = (step - _options.Window) * _layers;
            for (var l = 0; l < _layers; l++)
            {
                var replicas = _replicaCounts.AsSpan(l * _experts, _experts);
                PlacementMetrics.DeviceLoads(_current, l, counts.Slice(l * _experts, _experts), replicas, _deviceLoads);
                var balance = PlacementMetrics.Summarise(l, _deviceLoads, replicas);
                _imbalance[row + l] = balance.Imbalance;
                _balancedness[row + l] = balance.Balancedness;
                _layerMaxSum[l] += balance.MaxDeviceLoad;
                _layerMeanSum[l] += balance.MeanDeviceLoad;
                for (var d = 0; d < _devices; d++)
                {
                    _deviceLayerLoad[(d * _layers) + l] += _deviceLoads[d];
                }
            }

            _options.Observer?.OnScoredStep(step, _current, counts);
        }

        private void RefreshReplicaCounts()
        {
            Array.Clear(_replicaCounts);
            var phy2log = _current.Phy2Log;
            var slots = _current.Slots;
            for (var i = 0; i < phy2log.Length; i++)
            {
                var e = phy2log[i];
                if (e >= 0)
                {
                    _replicaCounts[(i / slots * _experts) + e]++;
                }
            }
        }
    }
}
