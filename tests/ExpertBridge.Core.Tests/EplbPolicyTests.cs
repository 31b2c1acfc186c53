using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;

namespace ExpertBridge.Core.Tests;

public class EplbPolicyTests
{
    private static readonly Topology s_readmeTopology = Topology.Create(devices: 8, slotsPerDevice: 2, nodes: 2);

    private static LoadHistory History(params LoadMatrix[] steps)
    {
        var history = new LoadHistory(steps[0].Layers, steps[0].Experts, capacity: 16);
        foreach (var step in steps)
        {
            history.Record(step.Values.ToArray().Select(v => (float)v).ToArray());
        }

        return history;
    }

    private static PolicyContext Context(LoadHistory history, Placement? current = null, int groups = 4, params (string Key, string Value)[] options) =>
        new(
            s_readmeTopology,
            history,
            current ?? TrivialPolicy.Build(s_readmeTopology, history.Layers, history.Experts),
            new PolicyOptions(options.Select(o => KeyValuePair.Create(o.Key, o.Value)), "eplb options"),
            groups);

    [Fact]
    public void BuiltInPolicies_Eplb_CreatesEplbPolicy()
    {
        Assert.IsType<EplbPolicy>(BuiltInPolicies.TryCreate("eplb"));
        Assert.Contains("eplb", BuiltInPolicies.Names);
    }

    [Fact]
    public void Decide_ReadmeLoad_AppliesReferencePlacementAndAllowsColocation()
    {
        var decision = new EplbPolicy().Decide(Context(History(EplbTestData.Readme())));

        Assert.False(decision.IsKeep);
        Assert.True(decision.AllowsColocatedReplicas);
        Assert.Equal(new[] { 5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1 }, decision.Placement!.Layer(0).ToArray());
        Assert.Contains("hierarchical", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void EnsureValid_EplbDecisionWithColocatedReplicas_PassesWithoutCallerAllowing()
    {
        // README loads under the global policy put both replicas of expert 8 (layer 1) on device 6.
        var topology = Topology.Create(devices: 8, slotsPerDevice: 2, nodes: 8);
        var history = History(EplbTestData.Readme());
        var context = new PolicyContext(topology, history, TrivialPolicy.Build(topology, 2, 12), expertGroups: 4);
        var policy = new EplbPolicy();
        var decision = policy.Decide(context);
        Assert.NotEmpty(PlacementValidator.Validate(decision.Placement!));

        var ex = Record.Exception(() => PolicyInvocation.EnsureValid(policy, context, decision, allowColocatedReplicas: false));

        Assert.Null(ex);
    }

    [Fact]
    public void Decide_NoHistory_Keeps()
    {
        var decision = new EplbPolicy().Decide(Context(new LoadHistory(2, 12, 4)));

        Assert.True(decision.IsKeep);
    }

    [Fact]
    public void Decide_DefaultWindow_FitsSumOfAllSteps()
    {
        var a = EplbTestData.Zipf(new Random(1), 2, 12);
        var b = EplbTestData.Zipf(new Random(2), 2, 12);
        var sum = new LoadMatrix(2, 12, a.Values.ToArray().Zip(b.Values.ToArray(), (x, y) => (double)((float)x + (float)y)).ToArray());

        var decision = new EplbPolicy().Decide(Context(History(a, b)));

        Assert.Equal(Eplb.Rebalance(sum, s_readmeTopology, 4).Placement, decision.Placement);
    }

    [Fact]
    public void Decide_WindowOne_FitsNewestStepOnly()
    {
        var old = EplbTestData.Zipf(new Random(1), 2, 12);
        var newest = EplbTestData.Zipf(new Random(2), 2, 12);
        Assert.NotEqual(Eplb.Rebalance(old, s_readmeTopology, 4).Placement, Eplb.Rebalance(newest, s_readmeTopology, 4).Placement);

        var decision = new EplbPolicy().Decide(Context(History(old, newest), options: ("window", "1")));

        Assert.Equal(Eplb.Rebalance(newest, s_readmeTopology, 4).Placement, decision.Placement);
    }

    [Fact]
    public void Decide_GroupsOption_OverridesModelGroups()
    {
        // The model reports 1 group: 1 % 2 nodes != 0 would select the global policy; the option restores 4 groups.
        var decision = new EplbPolicy().Decide(Context(History(EplbTestData.Readme()), groups: 1, options: ("groups", "4")));

        Assert.Equal(new[] { 7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1 }, decision.Placement!.Layer(1).ToArray());
    }

    [Fact]
    public void Decide_KeepSlots_SameDeviceContentsFewerMoves()
    {
        var history = History(EplbTestData.Readme());
        var current = Eplb.Rebalance(EplbTestData.Zipf(new Random(9), 2, 12), s_readmeTopology, 4).Placement;

        var raw = new EplbPolicy().Decide(Context(history, current)).Placement!;
        var kept = new EplbPolicy().Decide(Context(history, current, options: ("keep-slots", "true"))).Placement!;

        Assert.True(PlacementDiff.CountChanges(current, kept) < PlacementDiff.CountChanges(current, raw));
        var load = EplbTestData.Readme();
        var rawReport = PlacementMetrics.Evaluate(raw, load);
        var keptReport = PlacementMetrics.Evaluate(kept, load);
        Assert.Equal(rawReport.MaxLoadSum, keptReport.MaxLoadSum, 9);
    }

    [Fact]
    public void Decide_PlacementAlreadyInForce_Keeps()
    {
        var history = History(EplbTestData.Readme());
        var current = Eplb.Rebalance(EplbTestData.Readme(), s_readmeTopology, 4).Placement;

        var decision = new EplbPolicy().Decide(Context(history, current));

        Assert.True(decision.IsKeep);
    }

    [Fact]
    public void Decide_WindowZero_NamesOptionAndRule()
    {
        var ex = Assert.Throws<InputException>(() => new EplbPolicy().Decide(Context(History(EplbTestData.Readme()), options: ("window", "0"))));

        Assert.Equal("eplb options: window", ex.Subject);
    }

    [Fact]
    public void Decide_CancelledBudget_Throws()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var history = History(EplbTestData.Readme());
        var context = new PolicyContext(s_readmeTopology, history, TrivialPolicy.Build(s_readmeTopology, 2, 12), expertGroups: 4, cancellation: cts.Token);

        Assert.Throws<OperationCanceledException>(() => new EplbPolicy().Decide(context));
    }
}
