using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;
using ExpertBridge.Core.Traces;
using static ExpertBridge.Policies.Tests.Loads;

namespace ExpertBridge.Policies.Tests;

public class OmniPlacementTests
{
    [Fact]
    public void Decide_FlashLbCase_ReachesAtMost205WhereEplbGets232()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 2);
        double[] loads = [600, 560, 120, 120, 20, 10, 10, 10];
        var current = TrivialPolicy.Build(topology, 1, loads.Length);

        var decision = new OmniPlacementPolicy(Static()).Decide(new PolicyContext(topology, History(loads), current));

        Assert.NotNull(decision.Placement);
        Assert.Empty(PlacementValidator.Validate(decision.Placement));
        Assert.InRange(MaxDeviceLoad(decision.Placement, 0, loads), 0, 205);
        var eplb = Eplb.Rebalance(LoadMatrix.FromRows([loads]), topology, 1).Placement;
        Assert.Equal(232, MaxDeviceLoad(eplb, 0, loads), 6);
    }

    [Theory]
    [InlineData(8, 5, 1, 32, 1, "adaptive", "peak-sum")]
    [InlineData(8, 5, 2, 32, 4, "adaptive", "percentile")]
    [InlineData(4, 8, 1, 32, 1, "static", "peak-sum")]
    [InlineData(16, 3, 4, 40, 8, "static", "percentile")]
    [InlineData(6, 4, 2, 17, 1, "adaptive", "peak-sum")]
    [InlineData(8, 4, 2, 32, 4, "refit", "peak-sum")]
    public void Decide_SkewedDriftingLoads_EveryPlacementValid(int devices, int slots, int nodes, int experts, int groups, string mode, string objective)
    {
        var topology = Topology.Create(devices, slots, nodes);
        var trace = Trace(steps: 60, drift: 0.05, seed: devices * slots, layers: 3, experts: experts, skew: 1.4);
        var current = TrivialPolicy.Build(topology, trace.Layers, experts);
        var policy = new OmniPlacementPolicy(Options(("mode", mode), ("objective", objective), ("comm-weight", "0.3"), ("group-affinity", "true"), ("move-budget", "1")));
        var decisions = 0;
        for (var call = 0; call < 3; call++)
        {
            var decision = policy.Decide(new PolicyContext(topology, History(trace, call * 20, 20), current, null, groups, null, call * 20));
            if (decision.Placement is { } next)
            {
                Assert.Empty(PlacementValidator.Validate(next));
                Assert.False(decision.AllowsColocatedReplicas);
                AssertUnchangedExpertsStay(current, next);
                current = next;
                decisions++;
            }
        }

        Assert.True(decisions > 0);
    }

    [Fact]
    public void Decide_StaticSmallSuite_NeverBusierThanEplbOnAnyLayer()
    {
        var worse = new List<string>();
        double omniTotal = 0, eplbTotal = 0;
        foreach (var c in TraceSuite.Small)
        {
            var trace = c.Generate();
            var history = History(trace, 0, trace.Steps);
            var load = history.WindowSum(trace.Steps);
            var context = new PolicyContext(c.Topology, history, TrivialPolicy.Build(c.Topology, trace.Layers, trace.Experts), null, c.Groups);
            var omni = new OmniPlacementPolicy(Static()).Decide(context).Placement!;
            var eplb = BuiltInPolicies.TryCreate("eplb")!.Decide(context).Placement!;
            for (var l = 0; l < trace.Layers; l++)
            {
                var o = MaxDeviceLoad(omni, l, load.Layer(l));
                var e = MaxDeviceLoad(eplb, l, load.Layer(l));
                omniTotal += o;
                eplbTotal += e;
                if (o > e * (1 + 1e-12))
                {
                    worse.Add($"{c.Name} layer {l}: {o} > {e}");
                }
            }
        }

        Assert.Empty(worse);
        Assert.True(omniTotal <= 0.99 * eplbTotal, $"omni {omniTotal} vs eplb {eplbTotal}");
    }

    [Fact]
    public void Decide_UnchangedLoad_SecondCallMovesNothing()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var history = History(Trace(steps: 100, seed: 3), 0, 100);
        var policy = new OmniPlacementPolicy();
        var current = TrivialPolicy.Build(topology, 4, 32);

        // A budget large enough to converge in one call, then the same load with the default budget.
        var first = policy.Decide(new PolicyContext(topology, history, current, Options(("move-budget", "1")), step: 100));
        Assert.NotNull(first.Placement);
        var second = policy.Decide(new PolicyContext(topology, history, first.Placement, step: 200));

        Assert.True(second.IsKeep, second.Reason);
    }

    [Fact]
    public void Decide_RepeatedCallsOnUnchangedLoad_ConvergeThenKeep()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var history = History(Trace(steps: 100, seed: 3), 0, 100);
        var policy = new OmniPlacementPolicy();
        var current = TrivialPolicy.Build(topology, 4, 32);
        var moves = new List<int>();
        for (var call = 0; call < 6; call++)
        {
            var decision = policy.Decide(new PolicyContext(topology, history, current, step: 100 * (call + 1)));
            moves.Add(decision.Placement is null ? 0 : PlacementDiff.CountChanges(current, decision.Placement));
            current = decision.Placement ?? current;
        }

        Assert.True(moves[0] > 0);
        Assert.Equal([0, 0, 0], moves.TakeLast(3));
    }

    [Fact]
    public void Decide_AdaptiveRebalance_ReportsItsWritesAndKeepsUnchangedExperts()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = Trace(steps: 100, seed: 4);
        var current = TrivialPolicy.Build(topology, 4, 32);
        var policy = new OmniPlacementPolicy(Options(("move-budget", "0.1")));

        var decision = policy.Decide(new PolicyContext(topology, History(trace, 0, 100), current));

        Assert.NotNull(decision.Placement);
        var moved = PlacementDiff.CountChanges(current, decision.Placement);
        Assert.Equal(policy.LastReport!.SlotWrites, moved);
        Assert.InRange(moved, 1, (int)(0.1 * 4 * topology.Slots));
        Assert.True(policy.LastReport.PredictedImbalanceAfter < policy.LastReport.PredictedImbalanceBefore);
        AssertUnchangedExpertsStay(current, decision.Placement);
    }

    [Theory]
    [InlineData("0.01")]
    [InlineData("0.03")]
    [InlineData("0.2")]
    public void Decide_MoveBudget_IsRespected(string budget)
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = Trace(steps: 100, seed: 5, layers: 6, skew: 1.5);
        var current = TrivialPolicy.Build(topology, 6, 32);
        var policy = new OmniPlacementPolicy(Options(("move-budget", budget), ("move-cost", "0")));

        var decision = policy.Decide(new PolicyContext(topology, History(trace, 0, 100), current));

        var limit = (int)Math.Floor(double.Parse(budget, System.Globalization.CultureInfo.InvariantCulture) * 6 * topology.Slots);
        var moved = decision.Placement is null ? 0 : PlacementDiff.CountChanges(current, decision.Placement);
        Assert.InRange(moved, 1, limit);
    }

    [Fact]
    public void Decide_IdleLayerBetweenReleaseAndTrigger_StaysIdle()
    {
        // Two devices, predicted imbalance 1.02: above release (1.01), below trigger (1.03). A swap would fix it.
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        double[] loads = [102, 98, 50, 50];
        var current = Placement.FromRows(topology, 4, [[0, 2, 1, 3]]);
        var policy = new OmniPlacementPolicy(Options(("move-cost", "0"), ("scenarios", "0")));

        var decision = policy.Decide(new PolicyContext(topology, History(loads), current));

        Assert.True(decision.IsKeep, decision.Reason);
        Assert.Equal(0, policy.LastReport!.LayersTriggered);
    }

    [Fact]
    public void Decide_ActiveLayerBetweenReleaseAndTrigger_KeepsRebalancing()
    {
        // Triggered at 1.27. A budget of one swap per call: the best swap leaves 1.022 (below the trigger, above the
        // release), so the next call still rebalances because the layer stays active until it is under the release;
        // a fresh (idle) policy keeps that same placement.
        var topology = Topology.Create(devices: 2, slotsPerDevice: 4);
        double[] loads = [39, 28, 24, 22, 20, 18, 17, 10];
        var current = Placement.FromRows(topology, 8, [[0, 1, 2, 3, 4, 5, 6, 7]]);
        var options = Options(("move-cost", "0"), ("scenarios", "0"), ("move-budget", "0.25"));
        var policy = new OmniPlacementPolicy(options);

        var first = policy.Decide(new PolicyContext(topology, History(loads), current));
        Assert.NotNull(first.Placement);
        var afterFirst = PlacementMetrics.Layer(first.Placement, 0, loads).Imbalance;
        var second = policy.Decide(new PolicyContext(topology, History(loads), first.Placement));
        var idle = new OmniPlacementPolicy(options).Decide(new PolicyContext(topology, History(loads), first.Placement));

        Assert.Equal(2, PlacementDiff.CountChanges(current, first.Placement));
        Assert.InRange(afterFirst, 1.011, 1.029);
        Assert.NotNull(second.Placement);
        Assert.Equal(1.0, PlacementMetrics.Layer(second.Placement, 0, loads).Imbalance, 9);
        Assert.True(idle.IsKeep, idle.Reason);
    }

    [Fact]
    public void Decide_LoadAlternatingNearTheTrigger_HysteresisStopsFlapping()
    {
        // Two load states whose balanced placements differ; each is 1.7% to 2.6% off under the other state, below the
        // trigger (1.03). Alternate them call by call after an initial rebalance.
        var topology = Topology.Create(devices: 2, slotsPerDevice: 3);
        double[] a = [49, 28, 55, 41, 46, 11];
        double[] b = [45, 27, 54, 43, 47, 14];

        List<int> MovesPerCall(PolicyOptions options)
        {
            var policy = new OmniPlacementPolicy(options);
            var current = TrivialPolicy.Build(topology, 1, 6);
            var moves = new List<int>();
            for (var call = 0; call < 8; call++)
            {
                var decision = policy.Decide(new PolicyContext(topology, History(call % 2 == 0 ? a : b), current, step: call));
                moves.Add(decision.Placement is null ? 0 : PlacementDiff.CountChanges(current, decision.Placement));
                current = decision.Placement ?? current;
            }

            return moves;
        }

        var withHysteresis = MovesPerCall(Options());
        var withoutThreshold = MovesPerCall(Options(("trigger", "1"), ("release", "1")));

        Assert.True(withHysteresis[0] > 0);
        Assert.All(withHysteresis.Skip(1), m => Assert.Equal(0, m));
        Assert.True(withoutThreshold.Skip(1).Count(m => m > 0) >= 6, string.Join(",", withoutThreshold));
    }

    [Fact]
    public void Decide_CancelledToken_Throws()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var context = new PolicyContext(topology, History(Trace(steps: 10, seed: 7), 0, 10), TrivialPolicy.Build(topology, 4, 32), cancellation: cts.Token);

        Assert.ThrowsAny<OperationCanceledException>(() => new OmniPlacementPolicy().Decide(context));
    }

    [Fact]
    public void Decide_CancelledDuringSearch_ThrowsPromptly()
    {
        var c = TraceSuite.Get(TraceSuite.Drifting);
        var trace = TraceGenerator.Generate(c.Options with { Layers = 8, Steps = 120 });
        using var cts = new CancellationTokenSource();
        var context = new PolicyContext(c.Topology, History(trace, 0, 120), TrivialPolicy.Build(c.Topology, 8, trace.Experts), Static(), c.Groups, cancellation: cts.Token);
        cts.CancelAfter(TimeSpan.FromMilliseconds(5));

        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() => new OmniPlacementPolicy().Decide(context));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Theory]
    [InlineData("move-budget", "2", "move-budget")]
    [InlineData("mode", "sometimes", "adaptive, static, refit")]
    [InlineData("objective", "max", "peak-sum, percentile")]
    [InlineData("ema-alpha", "zero", "a number")]
    public void Constructor_BadOption_NamesKeyAndRule(string key, string value, string expected)
    {
        var ex = Assert.Throws<InputException>(() => new OmniPlacementPolicy(Options((key, value))));
        Assert.Contains(key, ex.Subject, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_ReleaseAboveTrigger_IsRejected()
    {
        var ex = Assert.Throws<InputException>(() => new OmniPlacementPolicy(Options(("trigger", "1.05"), ("release", "1.1"))));
        Assert.Contains("hysteresis", ex.Rule, StringComparison.Ordinal);
        Assert.Contains("release", ex.Subject, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_ContextOptions_OverrideConstructorOptions()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var current = TrivialPolicy.Build(topology, 4, 32);
        var policy = new OmniPlacementPolicy(Options(("move-budget", "0.5")));

        var decision = policy.Decide(new PolicyContext(topology, History(Trace(steps: 50, seed: 8, skew: 1.5), 0, 50), current, Options(("move-budget", "0.02"))));

        Assert.InRange(decision.Placement is null ? 0 : PlacementDiff.CountChanges(current, decision.Placement), 0, (int)(0.02 * 4 * topology.Slots));
    }

    [Fact]
    public void Decide_SplitAbove_BalancedLayerLeavesSpareSlotsEmpty()
    {
        var topology = Topology.Create(devices: 4, slotsPerDevice: 3);
        double[] uniform = [10, 10, 10, 10, 10, 10, 10, 10];
        double[] skewed = [80, 10, 10, 10, 5, 5, 5, 5];
        var current = TrivialPolicy.Build(topology, 2, 8);

        var placement = new OmniPlacementPolicy(Static(("split-above", "0.5"))).Decide(new PolicyContext(topology, History(uniform, skewed), current)).Placement!;

        Assert.Empty(PlacementValidator.Validate(placement));
        Assert.Equal(8, placement.ReplicaCounts(0).Sum());
        Assert.Equal(4, placement.Layer(0).ToArray().Count(e => e < 0));
        Assert.True(placement.ReplicaCounts(1)[0] >= 3, "the hot expert of the skewed layer is split");
    }

    [Fact]
    public void Decide_RedundantBudget_GoesToTheHottestLayer()
    {
        var topology = Topology.Create(devices: 4, slotsPerDevice: 3);
        double[] mild = [20, 15, 10, 10, 10, 10, 10, 10];
        double[] hot = [90, 10, 10, 10, 5, 5, 5, 5];
        var current = TrivialPolicy.Build(topology, 2, 8);

        var placement = new OmniPlacementPolicy(Static(("redundant-budget", "3"))).Decide(new PolicyContext(topology, History(mild, hot), current)).Placement!;

        Assert.Empty(PlacementValidator.Validate(placement));
        Assert.Equal(8, placement.ReplicaCounts(0).Sum());
        Assert.Equal(11, placement.ReplicaCounts(1).Sum());
    }

    [Fact]
    public void Decide_RobustObjective_BalancesEachRegimeNotJustTheMean()
    {
        // Experts 0,1,4,5 are hot in the first half, 2,3,6,7 in the second: the means are all equal.
        var topology = Topology.Create(devices: 4, slotsPerDevice: 2);
        var history = new LoadHistory(1, 8, 20);
        float[] first = [90, 90, 10, 10, 90, 90, 10, 10];
        float[] second = [10, 10, 90, 90, 10, 10, 90, 90];
        for (var t = 0; t < 20; t++)
        {
            history.Record(t < 10 ? first : second);
        }

        double RegimePeaks(PolicyOptions options)
        {
            var p = new OmniPlacementPolicy(options).Decide(new PolicyContext(topology, history, TrivialPolicy.Build(topology, 1, 8))).Placement!;
            return MaxDeviceLoad(p, 0, first.Select(v => (double)v).ToArray()) + MaxDeviceLoad(p, 0, second.Select(v => (double)v).ToArray());
        }

        var robust = RegimePeaks(Static(("scenarios", "2"), ("robust-weight", "0.8"), ("forecast-scenarios", "false")));
        var meanOnly = RegimePeaks(Static());

        Assert.Equal(200, robust, 6);
        Assert.True(meanOnly > robust, $"mean-only {meanOnly}");
    }

    [Fact]
    public void Decide_CommWeight_LowersCrossNodeShare()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5, nodes: 4);
        var trace = Trace(steps: 100, seed: 9, skew: 1.4);
        var history = History(trace, 0, 100);
        var load = history.WindowSum(100);
        var current = TrivialPolicy.Build(topology, 4, 32);

        double Share(string weight)
        {
            var p = new OmniPlacementPolicy(Static(("comm-weight", weight))).Decide(new PolicyContext(topology, history, current)).Placement!;
            return Enumerable.Range(0, 4).Average(l => OmniDiagnostics.CrossNodeShare(p, l, load.Layer(l)));
        }

        Assert.True(Share("1") < Share("0"));
    }

    [Fact]
    public void Decide_GroupAffinity_KeepsGroupsOnTheirNode()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5, nodes: 2);
        var history = History(Trace(steps: 100, seed: 10, skew: 1.0), 0, 100);
        var load = history.WindowSum(100);
        var current = TrivialPolicy.Build(topology, 4, 32);

        double Locality(bool affinity)
        {
            var p = new OmniPlacementPolicy(Static(("group-affinity", affinity ? "true" : "false"), ("comm-weight", "0.5"))).Decide(new PolicyContext(topology, history, current, null, 4)).Placement!;
            return Enumerable.Range(0, 4).Average(l => OmniDiagnostics.GroupLocality(p, l, load.Layer(l), 4));
        }

        Assert.True(Locality(true) > Locality(false) + 0.1, $"{Locality(true)} vs {Locality(false)}");
    }

    [Fact]
    public void CrossNodeShare_OneNodeOrEveryNodeHoldingTheExpert_IsZero()
    {
        var twoNodes = Topology.Create(devices: 2, slotsPerDevice: 2, nodes: 2);
        var placement = Placement.FromRows(twoNodes, 2, [[0, 1, 0, 1], [0, 1, 1, -1]]);
        double[] loads = [30, 10];

        Assert.Equal(0, OmniDiagnostics.CrossNodeShare(placement, 0, loads), 12);
        Assert.Equal(0.5 * 30 / 40, OmniDiagnostics.CrossNodeShare(placement, 1, loads), 12);
        Assert.Equal(0, OmniDiagnostics.CrossNodeShare(Placement.FromRows(Topology.Create(2, 2), 2, [[0, 1, 0, 1]]), 0, loads), 12);
    }

    [Fact]
    public void Decide_StaticMode_FitsOnceThenKeeps()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = Trace(steps: 100, seed: 12, skew: 1.4);
        var policy = new OmniPlacementPolicy(Static());
        var current = TrivialPolicy.Build(topology, 4, 32);

        var first = policy.Decide(new PolicyContext(topology, History(trace, 0, 50), current));
        var second = policy.Decide(new PolicyContext(topology, History(trace, 50, 50), first.Placement!));

        Assert.NotNull(first.Placement);
        Assert.True(second.IsKeep);
        Assert.Contains("static", second.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Replay_DriftingSmall_BeatsEplbWithHalfItsMoves()
    {
        var c = TraceSuite.Get(TraceSuite.DriftingSmall);
        var trace = c.Generate();
        var options = new ReplayOptions { Window = 50, Interval = 25, ExpertGroups = c.Groups };

        var eplb = ReplayEngine.Run(trace, c.Topology, BuiltInPolicies.TryCreate("eplb")!, options, cancellation: TestContext.Current.CancellationToken);
        var omni = ReplayEngine.Run(trace, c.Topology, new OmniPlacementPolicy(), options, cancellation: TestContext.Current.CancellationToken);

        Assert.True(omni.ImbalanceMean <= eplb.ImbalanceMean, $"omni {omni.ImbalanceMean} eplb {eplb.ImbalanceMean}");
        // Six rebalances on 8 devices: the start-up from the trivial placement dominates the moves here; at DeepSeek-V3
        // scale the share is far lower (docs/policy-evaluation.md).
        Assert.True(omni.ExpertsMoved * 2 <= eplb.ExpertsMoved, $"omni {omni.ExpertsMoved} eplb {eplb.ExpertsMoved}");
    }
}
