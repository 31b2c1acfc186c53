using ExpertBridge.Core;
using ExpertBridge.Core.Latency;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

public class LatencyModelTests
{
    private static GemmTable Table(double factor = 1.0) =>
        new("test", "fp8", 1024, 512, [(1, 0.04), (128, 0.04), (1024, 0.10)], factor, "test table");

    [Fact]
    public void GemmTable_Interpolates_FlatBelowLinearBetweenExtrapolatesAbove()
    {
        var t = Table();
        Assert.Equal(0, t.Millis(0));
        Assert.Equal(0.04, t.Millis(0.5), 12);
        Assert.Equal(0.04, t.Millis(100), 12);
        Assert.Equal(0.07, t.Millis(576), 12);
        Assert.Equal(0.10 + (0.06 / 896 * 1024), t.Millis(2048), 12);
    }

    [Fact]
    public void GemmTable_Default_IsTheCommittedH200Measurement()
    {
        var t = GemmTable.Default;
        Assert.Equal("NVIDIA H200", t.Card);
        Assert.Equal("fp8", t.Dtype);
        Assert.InRange(t.BackToBackFactor, 0.5, 1.0);
        Assert.True(t.Millis(4096) > t.Millis(64));
    }

    [Fact]
    public void GemmTable_MalformedJson_NamesSourceAndLine()
    {
        var ex = Assert.Throws<InputException>(() => GemmTable.Parse("{\"points\": [", "t.json"));
        Assert.Equal("t.json", ex.Subject);
        Assert.Contains("valid JSON", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Step_UniformLoadTrivialPlacement_EqualsBestEp()
    {
        var topology = Topology.Create(devices: 4, slotsPerDevice: 8);
        var model = new LatencyModel(MoeModel.Small, Table(0.8), Interconnect.Default);
        var placement = TrivialPolicy.Build(topology, layers: 2, experts: 32);
        var counts = Enumerable.Repeat(64f, 64).ToArray();
        var step = model.Step(placement, counts);
        var best = model.BestEp(topology, 32, counts);
        Assert.Equal(best.Millis, step.Millis, 9);
        Assert.True(step.ComputeMillisOfSlowest > 0);
        Assert.True(step.CommMillisOfSlowest > 0);
    }

    [Fact]
    public void Step_HotExpertsOnOneDevice_SlowerThanSpreadOut()
    {
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        var model = new LatencyModel(MoeModel.Small with { NonMoeMillisPerLayer = 0 }, Table(), Interconnect.Default);
        float[] counts = [2000, 2000, 10, 10];
        var together = Placement.FromRows(topology, 4, [[0, 1, 2, 3]]);
        var spread = Placement.FromRows(topology, 4, [[0, 2, 1, 3]]);
        Assert.True(model.Step(together, counts).Millis > model.Step(spread, counts).Millis * 1.5);
    }

    [Fact]
    public void Step_SingleNode_HasNoNetworkTerm()
    {
        var one = Topology.Create(devices: 4, slotsPerDevice: 8, nodes: 1);
        var two = Topology.Create(devices: 4, slotsPerDevice: 8, nodes: 2);
        var model = new LatencyModel(MoeModel.Small, Table(), Interconnect.Default);
        var counts = Enumerable.Repeat(64f, 32).ToArray();
        var a = model.Step(TrivialPolicy.Build(one, 1, 32), counts);
        var b = model.Step(TrivialPolicy.Build(two, 1, 32), counts);
        Assert.True(b.CommMillisOfSlowest > a.CommMillisOfSlowest * 2, $"{b.CommMillisOfSlowest} vs {a.CommMillisOfSlowest}");
    }

    [Fact]
    public void Step_ReplicaSplitsTokens_IdleExpertsCostNothing()
    {
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        var model = new LatencyModel(MoeModel.Small with { NonMoeMillisPerLayer = 0 }, Table(), Interconnect.Default with { IntraNodeGBps = 1e12 });
        // expert 0 replicated on both devices with 2048 tokens -> 1024 each; experts 1, 2 idle.
        var p = Placement.FromRows(topology, 3, [[0, 1, 0, 2]]);
        var step = model.Step(p, [2048, 0, 0]);
        Assert.Equal(0.10, step.ComputeMillisOfSlowest, 9);
    }
}
