using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

public class PlacementModelTests
{
    [Fact]
    public void Topology_SlotNumbering_IsDeviceMajor()
    {
        var t = Topology.Create(devices: 8, slotsPerDevice: 2, nodes: 2);
        Assert.Equal(16, t.Slots);
        Assert.Equal(4, t.DevicesPerNode);
        Assert.Equal(3, t.DeviceOf(7));
        Assert.Equal(1, t.NodeOfSlot(8));
        Assert.Equal(7, t.SlotOf(3, 1));
    }

    [Fact]
    public void Topology_DevicesNotMultipleOfNodes_NamesOptionAndRule()
    {
        var ex = Assert.Throws<InputException>(() => Topology.Create(devices: 6, slotsPerDevice: 2, nodes: 4));
        Assert.Equal("--nodes", ex.Subject);
        Assert.Contains("multiple of nodes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trivial_RedundantSlots_WrapAround()
    {
        var t = Topology.Create(8, 2);
        var p = TrivialPolicy.Build(t, layers: 1, experts: 12);
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3 }, p.Layer(0).ToArray());
        Assert.Equal(2, p.ReplicaCounts(0)[3]);
        Assert.Equal(new[] { 3, 15 }, p.Log2Phy(0)[3]);
        Assert.Empty(PlacementValidator.Validate(p));
    }

    [Fact]
    public void Validator_MissingExpert_NamesLayerAndRule()
    {
        var t = Topology.Create(2, 2);
        var p = Placement.FromRows(t, 4, [[0, 1, 2, 2], [0, 1, 2, 3]]);
        var v = PlacementValidator.Validate(p);
        Assert.Contains(v, x => x.Layer == 0 && x.Rule == PlacementValidator.RuleEveryExpertPlaced && x.Detail.Contains("expert 3", StringComparison.Ordinal));
        Assert.Contains(v, x => x.Layer == 0 && x.Slot == 3 && x.Rule == PlacementValidator.RuleNoColocatedReplicas);
        Assert.DoesNotContain(PlacementValidator.Validate(p, allowColocatedReplicas: true), x => x.Rule == PlacementValidator.RuleNoColocatedReplicas);
    }

    [Fact]
    public void Metrics_ReplicaSplitsTokensEvenly()
    {
        var t = Topology.Create(2, 2);
        // expert 0 has 2 replicas (device 0 and 1): its 100 tokens split 50/50.
        var p = Placement.FromRows(t, 3, [[0, 1, 0, 2]]);
        var load = LoadMatrix.FromRows([[100.0, 30, 10]]);
        var r = PlacementMetrics.Evaluate(p, load);
        Assert.Equal(80, r.Layers[0].MaxDeviceLoad, 9);
        Assert.Equal(70, r.Layers[0].MeanDeviceLoad, 9);
        Assert.Equal(80.0 / 70.0, r.Layers[0].Imbalance, 9);
        Assert.Equal(70.0 / 80.0, r.Layers[0].Balancedness, 9);
        Assert.Equal(4, r.Layers[0].Replicas);
    }

    [Fact]
    public void Diff_CountsChangedSlotsAndBytes()
    {
        var t = Topology.Create(2, 2, expertBytes: 1000);
        var a = Placement.FromRows(t, 3, [[0, 1, 2, 0], [0, 1, 2, 1]]);
        var b = Placement.FromRows(t, 3, [[0, 1, 2, 0], [2, 1, 0, -1]]);
        var d = PlacementDiff.Compute(a, b);
        Assert.Equal(3, d.ExpertsMoved);
        Assert.Equal(2000, d.BytesMoved);
        Assert.Equal(new[] { 1 }, d.ChangedLayers.ToArray());
        Assert.Equal(3, PlacementDiff.CountChanges(a, b));
    }

    [Fact]
    public void History_RingBuffer_KeepsNewestStepsInOrder()
    {
        var h = new LoadHistory(layers: 1, experts: 2, capacity: 3);
        for (var i = 1; i <= 5; i++)
        {
            h.Record(new float[] { i, 10 * i });
        }

        Assert.Equal(3, h.Count);
        Assert.Equal(3f, h.GetStep(0)[0]);
        Assert.Equal(5f, h.GetStep(2)[0]);
        var w = h.WindowSum(2);
        Assert.Equal(9, w[0, 0]);
        Assert.Equal(90, w[0, 1]);
        var ema = h.Ema(0.5);
        // m = 3; m = 0.5*4 + 0.5*3 = 3.5; m = 0.5*5 + 0.5*3.5 = 4.25
        Assert.Equal(4.25, ema[0, 0], 9);
    }

    [Fact]
    public void History_NegativeCount_IsRejectedWithLocation()
    {
        var h = new LoadHistory(1, 2, 3);
        var ex = Assert.Throws<InputException>(() => h.Record(new float[] { 1, -2 }));
        Assert.Contains("expert 1", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, h.Count);
    }
}
