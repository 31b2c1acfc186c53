using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;

namespace ExpertBridge.Core.Tests;

public class ReplayEngineTests
{
    private static readonly Topology s_topology = Topology.Create(devices: 4, slotsPerDevice: 3, nodes: 1, expertBytes: 1000);

    [Fact]
    public void Run_Trivial_ScoresEveryStepFromWindowAndMovesNothing()
    {
        var trace = RandomTrace(steps: 50, layers: 2, experts: 8, seed: 1);

        var r = Replay(trace, new TrivialPolicy(), new ReplayOptions { Window = 10, Interval = 7 });

        Assert.Equal(50, r.Steps);
        Assert.Equal(40, r.ScoredSteps);
        Assert.Equal([10, 17, 24, 31, 38, 45], r.Decisions.Select(d => d.Step));
        Assert.Equal(0, r.Rebalances);
        Assert.Equal(0, r.ExpertsMoved);
        Assert.Equal(0, r.BytesMoved);
        Assert.Equal(40, r.StepImbalance.Count);
        Assert.True(r.ImbalanceMean >= 1);
        Assert.True(r.ImbalanceP99 >= r.ImbalanceMean);
        Assert.InRange(r.BalancednessMean, 1e-9, 1);
    }

    [Fact]
    public void Run_PolicyContext_HoldsExactlyTheWindowBeforeTheStep()
    {
        var trace = RandomTrace(steps: 30, layers: 2, experts: 8, seed: 2);
        var seen = new List<(long Step, int Count, float[] Newest, float[] Oldest)>();
        var policy = new DelegatePolicy("spy", ctx =>
        {
            seen.Add((ctx.Step, ctx.History.Count, ctx.History.GetStep(ctx.History.Count - 1).ToArray(), ctx.History.GetStep(0).ToArray()));
            return PolicyDecision.Keep();
        });

        Replay(trace, policy, new ReplayOptions { Window = 5, Interval = 10 });

        Assert.Equal([5L, 15L, 25L], seen.Select(s => s.Step));
        foreach (var (step, count, newest, oldest) in seen)
        {
            Assert.Equal(5, count);
            Assert.Equal(trace.GetStep((int)step - 1).ToArray(), newest);
            Assert.Equal(trace.GetStep((int)step - 5).ToArray(), oldest);
        }
    }

    [Fact]
    public void Run_Metrics_MatchPlacementMetricsOfEachScoredStep()
    {
        var trace = RandomTrace(steps: 25, layers: 3, experts: 10, seed: 3);
        var placement = TrivialPolicy.Build(s_topology, 3, 10);

        var r = Replay(trace, new TrivialPolicy(), new ReplayOptions { Window = 5, Interval = 5 });

        var imbalance = new List<double>();
        var balancedness = new List<double>();
        var maxPerLayer = new double[3];
        for (var t = 5; t < 25; t++)
        {
            var report = PlacementMetrics.Evaluate(placement, trace.Sum(t, 1));
            imbalance.AddRange(report.Layers.Select(l => l.Imbalance));
            balancedness.AddRange(report.Layers.Select(l => l.Balancedness));
            Assert.Equal(report.ImbalanceMean, r.StepImbalance[t - 5], 9);
            for (var l = 0; l < 3; l++)
            {
                maxPerLayer[l] += report.Layers[l].MaxDeviceLoad / 20;
            }
        }

        Assert.Equal(imbalance.Average(), r.ImbalanceMean, 9);
        Assert.Equal(balancedness.Average(), r.BalancednessMean, 9);
        Assert.Equal(SampleStatistics.Percentile(imbalance.ToArray(), 0.99), r.ImbalanceP99, 9);
        for (var l = 0; l < 3; l++)
        {
            Assert.Equal(maxPerLayer[l], r.LayerMaxLoadMean[l], 6);
        }
    }

    [Fact]
    public void Run_DeviceLayerLoad_SumsToScoredTokensPerLayer()
    {
        var trace = RandomTrace(steps: 20, layers: 2, experts: 12, seed: 4);

        var r = Replay(trace, new HottestFirstPolicy(), new ReplayOptions { Window = 4, Interval = 4 });

        for (var l = 0; l < 2; l++)
        {
            var tokens = trace.Sum(4, 16).LayerTotal(l);
            var carried = Enumerable.Range(0, s_topology.Devices).Sum(d => r.DeviceLoad(d, l));
            Assert.Equal(tokens, carried, 3);
            Assert.Equal(tokens / 16 / s_topology.Devices, r.LayerBestEpMean[l], 6);
        }
    }

    [Fact]
    public void Run_NewPlacement_CountsMovesAndBytesAndScoresTheDecisionStepWithIt()
    {
        var trace = RandomTrace(steps: 12, layers: 1, experts: 8, seed: 5);
        var trivial = TrivialPolicy.Build(s_topology, 1, 8);

        // Swap the experts of slots 0 and 3 (devices 0 and 1): 2 slots change.
        var swapped = trivial.CopyPhy2Log();
        (swapped[0], swapped[3]) = (swapped[3], swapped[0]);
        var next = new Placement(s_topology, 8, swapped);
        var policy = new DelegatePolicy("swap", ctx => ctx.Current.Equals(next) ? PolicyDecision.Keep() : PolicyDecision.Apply(next));

        var r = Replay(trace, policy, new ReplayOptions { Window = 6, Interval = 3 });

        Assert.Equal(1, r.Rebalances);
        Assert.Equal(2, r.ExpertsMoved);
        Assert.Equal(2000, r.BytesMoved);
        Assert.Equal([true, false], r.Decisions.Select(d => d.Applied));
        var expected = PlacementMetrics.Evaluate(next, trace.Sum(6, 1)).ImbalanceMean;
        Assert.Equal(expected, r.StepImbalance[0], 9);
    }

    [Fact]
    public void Run_RebalancingPolicy_BeatsTrivialOnSkewedTrace()
    {
        var trace = RandomTrace(steps: 60, layers: 2, experts: 12, seed: 6, skewed: true);
        var options = new ReplayOptions { Window = 10, Interval = 10 };

        var trivial = Replay(trace, new TrivialPolicy(), options);
        var greedy = Replay(trace, new HottestFirstPolicy(), options);

        Assert.True(greedy.ImbalanceMean < trivial.ImbalanceMean, $"greedy {greedy.ImbalanceMean} vs trivial {trivial.ImbalanceMean}");
        Assert.True(greedy.ExpertsMoved > 0);
    }

    [Fact]
    public void Run_InvalidPlacement_NamesPolicyStepLayerSlotAndRule()
    {
        var trace = RandomTrace(steps: 10, layers: 2, experts: 8, seed: 7);
        var policy = new DelegatePolicy("broken", ctx =>
        {
            var p = ctx.Current.CopyPhy2Log();
            p[s_topology.Slots + 5] = 42; // layer 1, slot 5
            return PolicyDecision.Apply(new Placement(ctx.Topology, ctx.LogicalExperts, p));
        });

        var ex = Assert.Throws<InputException>(() => Replay(trace, policy, new ReplayOptions { Window = 4, Interval = 4 }));

        Assert.Equal("policy 'broken' at step 4", ex.Subject);
        Assert.Equal(PlacementValidator.RuleIdInRange, ex.Rule);
        Assert.Contains("layer 1 slot 5", ex.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_ColocatedReplicas_RejectedUnlessAllowed()
    {
        var trace = RandomTrace(steps: 10, layers: 1, experts: 8, seed: 8);
        var policy = new DelegatePolicy("colocate", ctx =>
        {
            // Slots 0..2 are device 0: give it experts 0, 1, 1 (expert 1 twice); expert 2 moves to slot 8's spare.
            var p = ctx.Current.CopyPhy2Log();
            p[2] = 1;
            p[8] = 2;
            return PolicyDecision.Apply(new Placement(ctx.Topology, ctx.LogicalExperts, p));
        });

        var ex = Assert.Throws<InputException>(() => Replay(trace, policy, new ReplayOptions { Window = 4, Interval = 4 }));
        Assert.Equal(PlacementValidator.RuleNoColocatedReplicas, ex.Rule);

        var allowed = Replay(trace, policy, new ReplayOptions { Window = 4, Interval = 4, AllowColocatedReplicas = true });
        Assert.Equal(1, allowed.Rebalances);

        // A decision that declares its co-located replicas (as EPLB's do) passes without the option.
        var declaring = new DelegatePolicy("declares", ctx => PolicyDecision.Apply(policy.Decide(ctx).Placement!, "colocated", allowsColocatedReplicas: true));
        Assert.Equal(1, Replay(trace, declaring, new ReplayOptions { Window = 4, Interval = 4 }).Rebalances);
    }

    [Fact]
    public void Run_PolicyThrows_PolicyFailedExceptionNamesPolicyAndStep()
    {
        var trace = RandomTrace(steps: 10, layers: 1, experts: 8, seed: 9);
        var policy = new DelegatePolicy("crash", _ => throw new InvalidOperationException("boom"));

        var ex = Assert.Throws<PolicyFailedException>(() => Replay(trace, policy, new ReplayOptions { Window = 3, Interval = 3 }));

        Assert.Equal("crash", ex.Policy);
        Assert.Equal(3, ex.Step);
        Assert.IsType<InvalidOperationException>(ex.InnerException);
    }

    [Theory]
    [InlineData(0, 5, 1, "--window")]
    [InlineData(10, 5, 1, "--window")]
    [InlineData(4, 0, 1, "--interval")]
    [InlineData(4, 4, 3, "--groups")]
    public void Run_BadOptions_InputExceptionNamesOption(int window, int interval, int groups, string subject)
    {
        var trace = RandomTrace(steps: 10, layers: 1, experts: 8, seed: 10);

        var ex = Assert.Throws<InputException>(() => Replay(trace, new TrivialPolicy(), new ReplayOptions { Window = window, Interval = interval, ExpertGroups = groups }));

        Assert.Equal(subject, ex.Subject);
    }

    [Fact]
    public void Run_FewerSlotsThanExperts_NamesSlotsPerDevice()
    {
        var trace = RandomTrace(steps: 10, layers: 1, experts: 13, seed: 11);

        var ex = Assert.Throws<InputException>(() => Replay(trace, new TrivialPolicy(), new ReplayOptions { Window = 2 }));

        Assert.Equal("--slots-per-device", ex.Subject);
    }

    [Fact]
    public void Run_Cancelled_StopsWithOperationCanceled()
    {
        var trace = RandomTrace(steps: 10, layers: 1, experts: 8, seed: 12);
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => ReplayEngine.Run(trace, s_topology, new TrivialPolicy(), new ReplayOptions { Window = 2 }, cancellation: cts.Token));
    }

    [Fact]
    public void Run_ProgressAndObserver_SeeTheWholeTrace()
    {
        var trace = RandomTrace(steps: 40, layers: 1, experts: 8, seed: 13);
        var reports = new List<ReplayProgress>();
        var observer = new CountingObserver();

        ReplayEngine.Run(trace, s_topology, new TrivialPolicy(), new ReplayOptions { Window = 8, Observer = observer }, new SyncProgress(reports.Add), TestContext.Current.CancellationToken);

        Assert.Equal(new ReplayProgress("trivial", 40, 40), reports[^1]);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.First.Step < p.Second.Step));
        Assert.Equal(Enumerable.Range(8, 32), observer.Steps);
    }

    [Theory]
    [InlineData(new[] { 1.0, 2, 3, 4 }, 0.5, 2.5)]
    [InlineData(new[] { 5.0 }, 0.99, 5)]
    [InlineData(new[] { 1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 0.99, 9.91)]
    public void Percentile_LinearInterpolation_MatchesNumpy(double[] values, double q, double expected)
    {
        Assert.Equal(expected, SampleStatistics.Percentile(values, q), 9);
    }

    private static ReplayResult Replay(LoadTrace trace, IPlacementPolicy policy, ReplayOptions options) =>
        ReplayEngine.Run(trace, s_topology, policy, options, cancellation: TestContext.Current.CancellationToken);

    /// <summary>A random trace; skewed puts most tokens on the first experts.</summary>
    private static LoadTrace RandomTrace(int steps, int layers, int experts, int seed, bool skewed = false)
    {
        var rng = new Random(seed);
        var values = new float[steps * layers * experts];
        for (var i = 0; i < values.Length; i++)
        {
            var e = i % experts;
            var scale = skewed ? 1000.0 / ((e + 1) * (e + 1)) : 100;
            values[i] = (float)Math.Round(scale * (0.5 + rng.NextDouble()));
        }

        return new LoadTrace(steps, layers, experts, values);
    }

    private sealed class DelegatePolicy(string name, Func<PolicyContext, PolicyDecision> decide) : IPlacementPolicy
    {
        public string Name => name;

        public PolicyDecision Decide(PolicyContext context) => decide(context);
    }

    /// <summary>Gives the spare slots to the hottest experts of the window, spread so no device holds two copies.</summary>
    private sealed class HottestFirstPolicy : IPlacementPolicy
    {
        public string Name => "hottest-first";

        public PolicyDecision Decide(PolicyContext context)
        {
            var load = context.History.WindowSum(context.History.Count);
            var t = context.Topology;
            var phy2log = new int[context.Layers * t.Slots];
            for (var l = 0; l < context.Layers; l++)
            {
                var row = load.Layer(l).ToArray();
                var byLoad = Enumerable.Range(0, context.LogicalExperts).OrderByDescending(e => row[e]).ToArray();

                // Snake order over devices: hottest expert on device 0, next on 1, ... then back.
                var order = Enumerable.Range(0, t.SlotsPerDevice).SelectMany(r => Enumerable.Range(0, t.Devices).Select(d => t.SlotOf(r % 2 == 0 ? d : t.Devices - 1 - d, r))).ToArray();
                for (var i = 0; i < order.Length; i++)
                {
                    phy2log[(l * t.Slots) + order[i]] = byLoad[i % byLoad.Length];
                }
            }

            return PolicyDecision.Apply(new Placement(t, context.LogicalExperts, phy2log));
        }
    }

    private sealed class CountingObserver : IReplayObserver
    {
        public List<int> Steps { get; } = [];

        public void OnScoredStep(int stepIndex, Placement placement, ReadOnlySpan<float> counts) => Steps.Add(stepIndex);
    }

    private sealed class SyncProgress(Action<ReplayProgress> report) : IProgress<ReplayProgress>
    {
        public void Report(ReplayProgress value) => report(value);
    }
}
