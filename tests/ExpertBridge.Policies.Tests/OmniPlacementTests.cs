using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Policies.Tests.Scaffolding;

namespace ExpertBridge.Policies.Tests;

public class OmniPlacementTests
{
    private static PolicyOptions Options(params (string Key, string Value)[] values) =>
        new(values.Select(v => new KeyValuePair<string, string>(v.Key, v.Value)), "test options");

    private static PolicyOptions Static(params (string Key, string Value)[] values) =>
        Options([("mode", "static"), ("predictor", "mean"), .. values]);

    private static double MaxDeviceLoad(Placement placement, int layer, ReadOnlySpan<double> loads) =>
        PlacementMetrics.Layer(placement, layer, loads).MaxDeviceLoad;

    [Fact]
    public void Decide_FlashLbCase_ReachesAtMost205WhereEplbGets232()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 2);
        double[] loads = [600, 560, 120, 120, 20, 10, 10, 10];
        var history = SyntheticTrace.History(loads);
        var current = TrivialPolicy.Build(topology, 1, loads.Length);

        var decision = new OmniPlacementPolicy(Static()).Decide(new PolicyContext(topology, history, current));

        Assert.NotNull(decision.Placement);
        PlacementValidator.EnsureValid(decision.Placement);
        Assert.InRange(MaxDeviceLoad(decision.Placement, 0, loads), 0, 205);
        var eplb = ReferenceEplb.Fit(topology, LoadMatrix.FromRows([loads]));
        Assert.Equal(232, MaxDeviceLoad(eplb, 0, loads), 6);
    }

    [Theory]
    [InlineData(8, 5, 1, 32, 1, "adaptive")]
    [InlineData(8, 5, 2, 32, 4, "adaptive")]
    [InlineData(4, 8, 1, 32, 1, "static")]
    [InlineData(16, 3, 4, 40, 8, "static")]
    [InlineData(6, 4, 2, 17, 1, "adaptive")]
    public void Decide_RandomSkewedLoads_EveryPlacementValid(int devices, int slots, int nodes, int experts, int groups, string mode)
    {
        var topology = Topology.Create(devices, slots, nodes);
        var trace = SyntheticTrace.Generate(layers: 3, experts, steps: 60, skew: 1.2, drift: 0.05, seed: devices * slots);
        var current = TrivialPolicy.Build(topology, trace.Layers, experts);
        var policy = new OmniPlacementPolicy(Options(("mode", mode), ("comm-weight", "0.3"), ("group-affinity", "true"), ("move-budget", "1")));
        for (var call = 0; call < 3; call++)
        {
            var history = SyntheticTrace.History(trace, call * 20, 20);
            var decision = policy.Decide(new PolicyContext(topology, history, current, null, groups, null, call * 20));
            if (decision.Placement is { } next)
            {
                Assert.Empty(PlacementValidator.Validate(next));
                current = next;
            }
        }
    }

    [Fact]
    public void Decide_StaticSmallSuite_NeverBusierThanEplbOnAnyLayer()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5, nodes: 2);
        var worse = new List<string>();
        double omniTotal = 0, eplbTotal = 0;
        foreach (var (name, trace) in SmallSuite())
        {
            var history = SyntheticTrace.History(trace, 0, trace.Steps);
            var load = trace.Sum();
            var current = TrivialPolicy.Build(topology, trace.Layers, trace.Experts);
            var omni = new OmniPlacementPolicy(Static(("scenarios", "0"))).Decide(new PolicyContext(topology, history, current)).Placement!;
            var eplb = ReferenceEplb.Fit(topology, load);
            for (var l = 0; l < trace.Layers; l++)
            {
                var o = MaxDeviceLoad(omni, l, load.Layer(l));
                var e = MaxDeviceLoad(eplb, l, load.Layer(l));
                omniTotal += o;
                eplbTotal += e;
                if (o > e + 1e-6)
                {
                    worse.Add($"{name} layer {l}: {o} > {e}");
                }
            }
        }

        Assert.Empty(worse);
        Assert.True(omniTotal <= 0.99 * eplbTotal, $"omni {omniTotal} vs eplb {eplbTotal}");
    }

    private static IEnumerable<(string Name, LoadTrace Trace)> SmallSuite()
    {
        yield return ("stable", SyntheticTrace.Generate(layers: 4, experts: 32, steps: 200, skew: 1.0, seed: 11));
        yield return ("drifting", SyntheticTrace.Generate(layers: 4, experts: 32, steps: 200, skew: 1.0, drift: 0.05, seed: 12));
        yield return ("switching", SyntheticTrace.Generate(layers: 4, experts: 32, steps: 200, skew: 1.2, switchEvery: 50, seed: 13));
        yield return ("skewed", SyntheticTrace.Generate(layers: 4, experts: 32, steps: 200, skew: 1.6, seed: 14));
    }

    [Fact]
    public void Decide_UnchangedLoad_SecondCallMovesNothing()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 4, experts: 32, steps: 100, skew: 1.3, seed: 3);
        var history = SyntheticTrace.History(trace, 0, 100);
        var policy = new OmniPlacementPolicy();
        var current = TrivialPolicy.Build(topology, 4, 32);

        var first = policy.Decide(new PolicyContext(topology, history, current, step: 100));
        Assert.NotNull(first.Placement);
        var second = policy.Decide(new PolicyContext(topology, history, first.Placement, step: 200));

        Assert.True(second.IsKeep, second.Reason);
    }

    [Fact]
    public void Decide_AdaptiveRebalance_OnlyWrittenSlotsChange()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 4, experts: 32, steps: 100, skew: 1.3, seed: 4);
        var current = TrivialPolicy.Build(topology, 4, 32);
        var policy = new OmniPlacementPolicy(Options(("move-budget", "0.05")));

        var decision = policy.Decide(new PolicyContext(topology, SyntheticTrace.History(trace, 0, 100), current));

        Assert.NotNull(decision.Placement);
        var diff = PlacementDiff.Compute(current, decision.Placement);
        Assert.Equal(policy.LastReport!.SlotWrites, diff.ExpertsMoved);
        Assert.InRange(diff.ExpertsMoved, 1, (int)(0.05 * 4 * topology.Slots));
    }

    [Theory]
    [InlineData("0.01")]
    [InlineData("0.03")]
    [InlineData("0.2")]
    public void Decide_MoveBudget_IsRespected(string budget)
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 6, experts: 32, steps: 100, skew: 1.5, seed: 5);
        var current = TrivialPolicy.Build(topology, 6, 32);
        var policy = new OmniPlacementPolicy(Options(("move-budget", budget), ("move-cost", "0")));

        var decision = policy.Decide(new PolicyContext(topology, SyntheticTrace.History(trace, 0, 100), current));

        var limit = (int)Math.Floor(double.Parse(budget, System.Globalization.CultureInfo.InvariantCulture) * 6 * topology.Slots);
        var moved = decision.Placement is null ? 0 : PlacementDiff.CountChanges(current, decision.Placement);
        Assert.InRange(moved, 1, limit);
    }

    [Fact]
    public void Decide_IdleLayerBetweenReleaseAndTrigger_StaysIdle()
    {
        // Two devices, predicted imbalance 1.03: above release (1.015) but below trigger (1.04).
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        double[] loads = [103, 97, 50, 50];
        var current = Placement.FromRows(topology, 4, [[0, 2, 1, 3]]);
        var policy = new OmniPlacementPolicy(Options(("move-cost", "0")));

        var decision = policy.Decide(new PolicyContext(topology, SyntheticTrace.History(loads), current));

        Assert.True(decision.IsKeep, decision.Reason);
        Assert.Equal(0, policy.LastReport!.LayersTriggered);
    }

    [Fact]
    public void Decide_NoisyStationaryLoad_HysteresisStopsFlapping()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 4, experts: 32, steps: 1200, tokens: 256, skew: 1.0, seed: 6);

        int Writes(PolicyOptions options)
        {
            var policy = new OmniPlacementPolicy(options);
            var current = TrivialPolicy.Build(topology, 4, 32);
            var total = 0;
            for (var t = 100; t < trace.Steps; t += 50)
            {
                var decision = policy.Decide(new PolicyContext(topology, SyntheticTrace.History(trace, t - 100, 100), current, step: t));
                if (decision.Placement is { } next)
                {
                    total += t > 100 ? PlacementDiff.CountChanges(current, next) : 0;
                    current = next;
                }
            }

            return total;
        }

        var withHysteresis = Writes(Options(("move-cost", "0")));
        var alwaysOn = Writes(Options(("move-cost", "0"), ("trigger", "1"), ("release", "1")));

        Assert.True(withHysteresis * 4 < alwaysOn, $"with hysteresis {withHysteresis} writes after the first rebalance, always on {alwaysOn}");
    }

    [Fact]
    public void Decide_CancelledToken_Throws()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 2, experts: 32, steps: 10, seed: 7);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var context = new PolicyContext(topology, SyntheticTrace.History(trace, 0, 10), TrivialPolicy.Build(topology, 2, 32), cancellation: cts.Token);

        Assert.ThrowsAny<OperationCanceledException>(() => new OmniPlacementPolicy().Decide(context));
    }

    [Theory]
    [InlineData("move-budget", "2", "move-budget")]
    [InlineData("mode", "sometimes", "adaptive, static")]
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
    }

    [Fact]
    public void Decide_ContextOptions_OverrideConstructorOptions()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 2, experts: 32, steps: 50, skew: 1.5, seed: 8);
        var current = TrivialPolicy.Build(topology, 2, 32);
        var policy = new OmniPlacementPolicy(Options(("move-budget", "0.5")));

        var decision = policy.Decide(new PolicyContext(topology, SyntheticTrace.History(trace, 0, 50), current, Options(("move-budget", "0.02"))));

        Assert.InRange(decision.Placement is null ? 0 : PlacementDiff.CountChanges(current, decision.Placement), 0, (int)(0.02 * 2 * topology.Slots));
    }

    [Fact]
    public void Decide_SplitAbove_BalancedLayerLeavesSpareSlotsEmpty()
    {
        var topology = Topology.Create(devices: 4, slotsPerDevice: 3);
        double[] uniform = [10, 10, 10, 10, 10, 10, 10, 10];
        double[] skewed = [80, 10, 10, 10, 5, 5, 5, 5];
        var current = TrivialPolicy.Build(topology, 2, 8);
        var history = SyntheticTrace.History(uniform, skewed);

        var placement = new OmniPlacementPolicy(Static(("split-above", "0.5"))).Decide(new PolicyContext(topology, history, current)).Placement!;

        Assert.Empty(PlacementValidator.Validate(placement));
        Assert.Equal(8, placement.ReplicaCounts(0).Sum());
        Assert.True(placement.ReplicaCounts(1)[0] >= 3, "the hot expert of the skewed layer is split");
    }

    [Fact]
    public void Decide_RobustObjective_BalancesEachRegimeNotJustTheMean()
    {
        // Experts 0,1,4,5 are hot in the first half, 2,3,6,7 in the second: the means are all equal.
        var topology = Topology.Create(devices: 4, slotsPerDevice: 2);
        var history = new LoadHistory(1, 8, 20);
        for (var t = 0; t < 20; t++)
        {
            float[] a = [90, 90, 10, 10, 90, 90, 10, 10];
            history.Record(t < 10 ? a : [.. a.Skip(2).Take(2), .. a.Take(2), .. a.Skip(6), .. a.Skip(4).Take(2)]);
        }

        double RegimePeaks(PolicyOptions options)
        {
            var p = new OmniPlacementPolicy(options).Decide(new PolicyContext(topology, history, TrivialPolicy.Build(topology, 1, 8))).Placement!;
            return MaxDeviceLoad(p, 0, history.GetStep(0).ToArray().Select(v => (double)v).ToArray()) + MaxDeviceLoad(p, 0, history.GetStep(19).ToArray().Select(v => (double)v).ToArray());
        }

        var robust = RegimePeaks(Static(("scenarios", "2"), ("robust-weight", "0.8")));
        var meanOnly = RegimePeaks(Static(("scenarios", "0")));

        Assert.Equal(200, robust, 6);
        Assert.True(meanOnly > robust, $"mean-only {meanOnly}");
    }

    [Fact]
    public void Decide_CommWeight_LowersCrossNodeShare()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5, nodes: 4);
        var trace = SyntheticTrace.Generate(layers: 4, experts: 32, steps: 100, skew: 1.4, seed: 9);
        var history = SyntheticTrace.History(trace, 0, 100);
        var load = trace.Sum();
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
        var trace = SyntheticTrace.Generate(layers: 2, experts: 32, steps: 100, skew: 1.0, seed: 10);
        var history = SyntheticTrace.History(trace, 0, 100);
        var load = trace.Sum();
        var current = TrivialPolicy.Build(topology, 2, 32);

        double Locality(bool affinity)
        {
            var p = new OmniPlacementPolicy(Static(("group-affinity", affinity ? "true" : "false"), ("comm-weight", "0.5"))).Decide(new PolicyContext(topology, history, current, null, 4)).Placement!;
            return Enumerable.Range(0, 2).Average(l => OmniDiagnostics.GroupLocality(p, l, load.Layer(l), 4));
        }

        Assert.True(Locality(true) > Locality(false) + 0.1, $"{Locality(true)} vs {Locality(false)}");
    }

    [Fact]
    public void Decide_StaticMode_FitsOnceThenKeeps()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 2, experts: 32, steps: 100, skew: 1.4, seed: 12);
        var policy = new OmniPlacementPolicy(Static());
        var current = TrivialPolicy.Build(topology, 2, 32);

        var first = policy.Decide(new PolicyContext(topology, SyntheticTrace.History(trace, 0, 50), current));
        var second = policy.Decide(new PolicyContext(topology, SyntheticTrace.History(trace, 50, 50), first.Placement!));

        Assert.NotNull(first.Placement);
        Assert.True(second.IsKeep);
    }

    [Fact]
    public void Replay_DriftingTrace_MatchesEplbImbalanceWithAQuarterOfItsMoves()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5);
        var trace = SyntheticTrace.Generate(layers: 4, experts: 32, steps: 600, tokens: 1024, skew: 1.2, drift: 0.05, seed: 21);

        var eplb = MiniReplay.Run(trace, topology, new ReferenceEplb(), window: 50, interval: 25, allowColocated: true);
        var omni = MiniReplay.Run(trace, topology, new OmniPlacementPolicy(), window: 50, interval: 25);

        Assert.True(omni.ImbalanceMean <= eplb.ImbalanceMean, $"omni {omni} eplb {eplb}");
        Assert.True(omni.ExpertsMoved <= eplb.ExpertsMoved / 4, $"omni {omni} eplb {eplb}");
    }
}
