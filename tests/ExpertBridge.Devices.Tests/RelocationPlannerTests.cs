using ExpertBridge.Core;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices.Tests;

public class RelocationPlannerTests
{
    private static readonly Topology Four = Topology.Create(devices: 4, slotsPerDevice: 2, nodes: 2);

    [Fact]
    public void Plan_SourceOnSameDevice_PrefersLocalCopy()
    {
        // expert 5 lives in slot 0 (device 0) and slot 6 (device 3); slot 1 (device 0) wants it.
        var from = Placement.FromRows(Four, 8, [[5, 1, 2, 3, 4, 0, 5, 7]]);
        var to = Placement.FromRows(Four, 8, [[5, 5, 2, 3, 4, 0, 1, 7]]);
        var plan = RelocationPlanner.Plan(from, to);
        var t = Assert.Single(plan.Layers[0].Transfers, x => x.Slot == 1);
        Assert.Equal(0, t.SourceSlot);
        Assert.Equal(TransferKind.Local, t.Kind);
    }

    [Fact]
    public void Plan_ReplicasOnSeveralDevices_SpreadsSourcesByLoad()
    {
        var t = Topology.Create(devices: 4, slotsPerDevice: 2);
        // expert 0 on devices 0 and 1; slots of devices 2 and 3 all want it.
        var from = Placement.FromRows(t, 4, [[0, 1, 0, 2, 3, 1, 2, 3]]);
        var to = Placement.FromRows(t, 4, [[0, 1, 0, 2, 0, 0, 0, 0]]);
        var plan = RelocationPlanner.Plan(from, to, [100]);
        Assert.Equal(4, plan.Transfers);
        Assert.Equal(200, plan.DeviceBytesOut[0]);
        Assert.Equal(200, plan.DeviceBytesOut[1]);
        Assert.All(plan.Layers[0].Transfers, x => Assert.Equal(TransferKind.Peer, x.Kind));
    }

    [Fact]
    public void Plan_RoutedSlot_LandsInStagingAndFreeSlotDirect()
    {
        var t = Topology.Create(devices: 2, slotsPerDevice: 2);
        var from = Placement.FromRows(t, 3, [[0, 1, 2, -1]]);
        var to = Placement.FromRows(t, 3, [[0, 2, 2, 1]]);
        var transfers = RelocationPlanner.Plan(from, to).Layers[0].Transfers;
        Assert.Equal(Landing.Staging, transfers.Single(x => x.Slot == 1).Landing);
        Assert.Equal(Landing.Direct, transfers.Single(x => x.Slot == 3).Landing);
    }

    [Fact]
    public void Plan_UnchangedLayers_AreLeftOut()
    {
        var t = Topology.Create(devices: 2, slotsPerDevice: 2);
        var from = Placement.FromRows(t, 4, [[0, 1, 2, 3], [0, 1, 2, 3]]);
        var to = Placement.FromRows(t, 4, [[0, 1, 2, 3], [1, 0, 2, 3]]);
        var plan = RelocationPlanner.Plan(from, to);
        Assert.Equal(1, Assert.Single(plan.Layers).Layer);
    }

    [Fact]
    public void Plan_ExpertWithoutSource_NamesLayerAndSlot()
    {
        var t = Topology.Create(devices: 2, slotsPerDevice: 2);
        var from = Placement.FromRows(t, 5, [[0, 1, 2, 3]]);
        var to = Placement.FromRows(t, 5, [[0, 1, 2, 4]]);
        var ex = Assert.Throws<InputException>(() => RelocationPlanner.Plan(from, to));
        Assert.Equal("layer 0 slot 3", ex.Subject);
        Assert.Contains("expert 4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_DevicesInOtherProcessesAndNodes_AreClassified()
    {
        // devices 0,1 on node 0 in processes 0 and 1; devices 2,3 on node 1.
        DeviceLocation[] where = [new(0, 0), new(1, 0), new(2, 0), new(3, 0)];
        var from = Placement.FromRows(Four, 4, [[0, 0, 1, 1, 2, 2, 3, 3]]);
        var to = Placement.FromRows(Four, 4, [[0, 1, 1, 2, 2, 3, 3, 0]]);
        var kinds = RelocationPlanner.Plan(from, to, locations: where).Layers[0].Transfers.ToDictionary(x => x.Slot, x => x.Kind);
        Assert.Equal(TransferKind.CrossProcess, kinds[1]); // expert 1 from device 1 to device 0
        Assert.Equal(TransferKind.CrossNode, kinds[3]);    // expert 2 from device 2 (node 1) to device 1 (node 0)
    }
}
