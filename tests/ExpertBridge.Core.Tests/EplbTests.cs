using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

public class EplbTests
{
    [Fact]
    public void Rebalance_ReadmeExample_MatchesPublishedPhy2Log()
    {
        var result = Eplb.Rebalance(EplbTestData.Readme(), replicas: 16, groups: 4, nodes: 2, devices: 8);

        Assert.True(result.Hierarchical);
        Assert.Equal(new[] { 5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1 }, result.Placement.Layer(0).ToArray());
        Assert.Equal(new[] { 7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1 }, result.Placement.Layer(1).ToArray());
        Assert.Equal(new[] { 1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1 }, result.LogicalCount.ToArray());
    }

    [Fact]
    public void Log2Phy_ReadmeExample_MatchesReferenceLayout()
    {
        var result = Eplb.Rebalance(EplbTestData.Readme(), replicas: 16, groups: 4, nodes: 2, devices: 8);

        var (values, max) = result.Log2Phy();

        // The reference's log2phy: replica r of expert e at [layer, e, r], -1 padded (torch output, README inputs).
        int[] expected =
        [
            12, -1, 15, 13, 11, -1, 6, -1, 7, 5, 0, 2, 1, -1, 3, -1, 4, -1, 9, -1, 8, 10, 14, -1,
            13, -1, 15, 11, 8, -1, 14, -1, 9, -1, 10, 12, 2, 4, 0, -1, 6, 3, 7, -1, 1, -1, 5, -1,
        ];
        Assert.Equal(2, max);
        Assert.Equal(expected, values);
    }

    [Fact]
    public void Rebalance_GroupsNotDivisibleByNodes_RunsGlobalPolicy()
    {
        var load = EplbTestData.Readme();

        var global = Eplb.Rebalance(load, replicas: 16, groups: 4, nodes: 8, devices: 8);
        var oneGroupOneNode = Eplb.Rebalance(load, replicas: 16, groups: 1, nodes: 1, devices: 8);

        Assert.False(global.Hierarchical);
        Assert.Equal(oneGroupOneNode.Placement.Phy2Log.ToArray(), global.Placement.Phy2Log.ToArray());
        // Reference output for these inputs; layer 1 puts both replicas of expert 8 on device 6.
        Assert.Equal(new[] { 10, 6, 10, 7, 0, 2, 11, 4, 5, 9, 5, 4, 8, 3, 1, 1 }, global.Placement.Layer(0).ToArray());
        Assert.Equal(new[] { 1, 10, 2, 4, 5, 11, 5, 0, 6, 7, 6, 3, 8, 8, 9, 7 }, global.Placement.Layer(1).ToArray());
        Assert.Equal(2, global.ColocatedReplicas);
        Assert.NotEmpty(PlacementValidator.Validate(global.Placement));
        Assert.Empty(PlacementValidator.Validate(global.Placement, allowColocatedReplicas: true));
        var report = PlacementMetrics.Evaluate(global.Placement, load);
        Assert.Equal(1.07, report.Layers[0].Imbalance, 2);
        Assert.Equal(1.19, report.Layers[1].Imbalance, 2);
    }

    [Fact]
    public void Rebalance_FlashLbCase_BusiestDeviceCarries232()
    {
        var load = EplbTestData.FlashLb();

        var result = Eplb.Rebalance(load, Topology.Create(devices: 8, slotsPerDevice: 2), groups: 1);

        var balance = PlacementMetrics.Evaluate(result.Placement, load).Layers[0];
        Assert.Equal(232, balance.MaxDeviceLoad, 9);
        Assert.Equal(181.25, balance.MeanDeviceLoad, 9);
    }

    public static TheoryData<string> ReferenceCaseNames() => new(EplbTestData.ReferenceCases().Select(c => c.Name));

    [Theory]
    [MemberData(nameof(ReferenceCaseNames))]
    public void Rebalance_ReferenceCase_MatchesTorchOutput(string name)
    {
        var c = EplbTestData.ReferenceCases().Single(x => x.Name == name);
        var load = LoadMatrix.FromRows(c.Load);

        var result = Eplb.Rebalance(load, c.Replicas, c.Groups, c.Nodes, c.Devices);

        for (var l = 0; l < load.Layers; l++)
        {
            Assert.Equal(c.Phy2Log[l], result.Placement.Layer(l).ToArray());
            Assert.Equal(c.LogCnt[l], result.LogicalCount.Slice(l * load.Experts, load.Experts).ToArray());
        }
    }

    [Fact]
    public void TorchCpuSort_LibstdcxxCases_ReproducesOrder()
    {
        foreach (var c in EplbTestData.SortCases())
        {
            var entries = c.Keys.Select((k, i) => new SortEntry((float)k, i)).ToArray();

            if (c.Depth < 0)
            {
                TorchCpuSort.SortDescending(entries);
            }
            else
            {
                TorchCpuSort.SortDescending(entries, c.Depth);
            }

            Assert.Equal(c.Order, entries.Select(e => e.Item));
        }
    }

    [Fact]
    public void BalancedPacking_EqualItems_FillsPacksInIndexOrder()
    {
        float[] weights = [1, 1, 1, 1];
        var packIndex = new int[4];
        var rank = new int[4];

        Eplb.BalancedPacking(weights, 2, packIndex, rank, new SortEntry[4], new ulong[MinTree.Length(2)], new float[2], new int[2]);

        // Python's min keeps the first lightest pack: 0, 1, then 0 again (tie 1 vs 1), then 1.
        Assert.Equal(new[] { 0, 1, 0, 1 }, packIndex);
        Assert.Equal(new[] { 0, 0, 1, 1 }, rank);
    }

    [Fact]
    public void ReplicateExperts_TiedPerReplicaLoad_PicksFirstExpert()
    {
        float[] weights = [4, 8, 8];
        var phy2log = new int[5];
        var rank = new int[5];
        var count = new int[3];

        Eplb.ReplicateExperts(weights, phy2log, rank, count, new ulong[MinTree.Length(3)]);

        // 8 and 8 tie: expert 1 first; then 8 (expert 2) beats 4 = 8/2 = 4.
        Assert.Equal(new[] { 0, 1, 2, 1, 2 }, phy2log);
        Assert.Equal(new[] { 0, 0, 0, 1, 1 }, rank);
        Assert.Equal(new[] { 1, 2, 2 }, count);
    }

    [Fact]
    public void Rebalance_ReplicasNotMultipleOfDevices_NamesRule()
    {
        var ex = Assert.Throws<InputException>(() => Eplb.Rebalance(EplbTestData.Readme(), replicas: 17, groups: 4, nodes: 2, devices: 8));

        Assert.Equal("replicas", ex.Subject);
        Assert.Contains("multiple of devices", ex.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public void Rebalance_DevicesNotMultipleOfNodes_NamesRule()
    {
        var ex = Assert.Throws<InputException>(() => Eplb.Rebalance(EplbTestData.Readme(), replicas: 18, groups: 4, nodes: 4, devices: 6));

        Assert.Equal("--nodes", ex.Subject);
        Assert.Contains("multiple of nodes", ex.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public void Rebalance_ExpertsNotDivisibleByGroups_NamesRule()
    {
        var ex = Assert.Throws<InputException>(() => Eplb.Rebalance(EplbTestData.Readme(), Topology.Create(8, 2, 2), groups: 5));

        Assert.Equal("--groups", ex.Subject);
        Assert.Contains("divisible by groups", ex.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public void Rebalance_FewerSlotsThanExperts_NamesRule()
    {
        var ex = Assert.Throws<InputException>(() => Eplb.Rebalance(EplbTestData.Readme(), Topology.Create(4, 2), groups: 1));

        Assert.Equal("--slots-per-device", ex.Subject);
        Assert.Contains("8 slots cannot hold 12 experts", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rebalance_GroupsBelowOne_NamesRule()
    {
        var ex = Assert.Throws<InputException>(() => Eplb.Rebalance(EplbTestData.Readme(), Topology.Create(8, 2), groups: 0));

        Assert.Equal("--groups", ex.Subject);
    }
}
