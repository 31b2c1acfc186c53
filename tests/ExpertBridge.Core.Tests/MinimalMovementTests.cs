using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

public class MinimalMovementTests
{
    private static readonly Topology s_v3 = Topology.Create(devices: 32, slotsPerDevice: 9, nodes: 4);

    private static Placement Fit(int seed, Topology topology, int groups = 8, int layers = 3, int experts = 256) =>
        Eplb.Rebalance(EplbTestData.Zipf(new Random(seed), layers, experts), topology, groups).Placement;

    /// <summary>Devices shuffled within each node and slots shuffled within each device.</summary>
    private static Placement Scramble(Placement placement, Random rng)
    {
        var t = placement.Topology;
        var phy2log = new int[placement.Phy2Log.Length];
        var devices = new int[t.DevicesPerNode];
        var local = new int[t.SlotsPerDevice];
        for (var l = 0; l < placement.Layers; l++)
        {
            for (var node = 0; node < t.Nodes; node++)
            {
                for (var i = 0; i < devices.Length; i++)
                {
                    devices[i] = (node * t.DevicesPerNode) + i;
                }

                rng.Shuffle(devices);
                for (var i = 0; i < devices.Length; i++)
                {
                    for (var k = 0; k < local.Length; k++)
                    {
                        local[k] = k;
                    }

                    rng.Shuffle(local);
                    var target = (node * t.DevicesPerNode) + i;
                    for (var k = 0; k < local.Length; k++)
                    {
                        phy2log[(l * t.Slots) + t.SlotOf(target, k)] = placement[l, t.SlotOf(devices[i], local[k])];
                    }
                }
            }
        }

        return new Placement(t, placement.LogicalExperts, phy2log);
    }

    /// <summary>Per layer and device group (node, or all devices), the sorted multisets of the devices' experts.</summary>
    private static List<string> DeviceContents(Placement p, bool perNode)
    {
        var t = p.Topology;
        var result = new List<string>();
        for (var l = 0; l < p.Layers; l++)
        {
            var groupSize = perNode ? t.DevicesPerNode : t.Devices;
            for (var first = 0; first < t.Devices; first += groupSize)
            {
                var devices = Enumerable.Range(first, groupSize)
                    .Select(d => string.Join(',', p.Layer(l).Slice(d * t.SlotsPerDevice, t.SlotsPerDevice).ToArray().Order()))
                    .Order(StringComparer.Ordinal);
                result.Add($"{l}:{first}:{string.Join('|', devices)}");
            }
        }

        return result;
    }

    [Fact]
    public void Relabel_DeviceAndSlotPermutationOfCurrent_MovesNothing()
    {
        var current = Fit(1, s_v3);
        var proposed = Scramble(current, new Random(2));
        Assert.NotEqual(0, PlacementDiff.CountChanges(current, proposed));

        var relabelled = MinimalMovement.Relabel(current, proposed);

        Assert.Equal(0, PlacementDiff.CountChanges(current, relabelled));
    }

    [Fact]
    public void Relabel_RandomPlacements_KeepsEveryDeviceLoad()
    {
        for (var seed = 0; seed < 20; seed++)
        {
            var current = Fit(seed, s_v3);
            var proposed = Fit(seed + 1000, s_v3);
            var load = EplbTestData.Zipf(new Random(seed + 1000), 3, 256);

            var relabelled = MinimalMovement.Relabel(current, proposed);

            Assert.Equal(DeviceContents(proposed, perNode: true), DeviceContents(relabelled, perNode: true));
            var before = PlacementMetrics.Evaluate(proposed, load);
            var after = PlacementMetrics.Evaluate(relabelled, load);
            for (var l = 0; l < load.Layers; l++)
            {
                Assert.Equal(before.Layers[l].MaxDeviceLoad, after.Layers[l].MaxDeviceLoad, 6);
                Assert.Equal(before.Layers[l].MeanDeviceLoad, after.Layers[l].MeanDeviceLoad, 6);
            }
        }
    }

    [Fact]
    public void Relabel_RandomPlacements_NeverMovesMoreThanRaw()
    {
        Topology[] topologies = [s_v3, Topology.Create(64, 5, 8), Topology.Create(16, 2, 2)];
        for (var seed = 0; seed < 30; seed++)
        {
            var topology = topologies[seed % topologies.Length];
            var experts = topology.Slots < 256 ? 16 : 256;
            var current = Fit(seed, topology, groups: 4, experts: experts);
            var proposed = Fit(seed + 1, topology, groups: 4, experts: experts);

            var within = MinimalMovement.Relabel(current, proposed);
            var across = MinimalMovement.Relabel(current, proposed, acrossNodes: true);

            var raw = PlacementDiff.CountChanges(current, proposed);
            Assert.True(PlacementDiff.CountChanges(current, within) <= raw, $"seed {seed}");
            Assert.True(PlacementDiff.CountChanges(current, across) <= PlacementDiff.CountChanges(current, within), $"seed {seed}");
            Assert.Equal(DeviceContents(proposed, perNode: false), DeviceContents(across, perNode: false));
        }
    }

    [Fact]
    public void Relabel_ExpertAlreadyOnDevice_StaysInItsSlot()
    {
        var t = Topology.Create(devices: 2, slotsPerDevice: 3);
        var current = Placement.FromRows(t, 6, [[0, 1, 2, 3, 4, 5]]);
        // Proposed device 0 {4, 5, 0} mostly lives on device 1 and proposed device 1 {1, 2, 3} on device 0: the devices
        // swap labels, the experts each already holds keep their slots, and the newcomer takes the freed slot.
        var proposed = Placement.FromRows(t, 6, [[4, 5, 0, 1, 2, 3]]);

        var relabelled = MinimalMovement.Relabel(current, proposed);

        Assert.Equal(new[] { 3, 1, 2, 0, 4, 5 }, relabelled.Layer(0).ToArray());
        Assert.Equal(2, PlacementDiff.CountChanges(current, relabelled));
    }

    [Fact]
    public void Relabel_WholeNodesSwapped_OnlyAcrossNodesMovesNothing()
    {
        var t = Topology.Create(devices: 2, slotsPerDevice: 2, nodes: 2);
        var current = Placement.FromRows(t, 4, [[0, 1, 2, 3]]);
        var proposed = Placement.FromRows(t, 4, [[3, 2, 1, 0]]);

        Assert.Equal(4, PlacementDiff.CountChanges(current, MinimalMovement.Relabel(current, proposed)));
        Assert.Equal(0, PlacementDiff.CountChanges(current, MinimalMovement.Relabel(current, proposed, acrossNodes: true)));
    }

    [Fact]
    public void Relabel_DifferentShape_NamesRule()
    {
        var current = TrivialPolicy.Build(Topology.Create(4, 4), 1, 16);
        var proposed = TrivialPolicy.Build(Topology.Create(8, 2), 1, 16);

        var ex = Assert.Throws<InputException>(() => MinimalMovement.Relabel(current, proposed));

        Assert.Equal("placement in force", ex.Subject);
        Assert.Equal(PlacementValidator.RuleShape, ex.Rule);
    }

    [Fact]
    public void Relabel_ExpertIdOutOfRange_NamesLayerAndSlot()
    {
        var t = Topology.Create(2, 2);
        var current = Placement.FromRows(t, 4, [[0, 1, 2, 9]]);
        var proposed = Placement.FromRows(t, 4, [[0, 1, 2, 3]]);

        var ex = Assert.Throws<InputException>(() => MinimalMovement.Relabel(current, proposed));

        Assert.Contains("layer 0 slot 3 holds expert 9", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LinearAssignment_RandomCosts_MatchesBruteForceOptimum()
    {
        var rng = new Random(5);
        for (var trial = 0; trial < 200; trial++)
        {
            var n = 1 + rng.Next(6);
            var cost = new int[n * n];
            for (var i = 0; i < cost.Length; i++)
            {
                cost[i] = rng.Next(trial % 2 == 0 ? 4 : 100);
            }

            var colOfRow = new int[n];
            var total = new LinearAssignment(n).Solve(cost, colOfRow);

            Assert.Equal(n, colOfRow.Distinct().Count());
            Assert.Equal(total, Enumerable.Range(0, n).Sum(r => (long)cost[(r * n) + colOfRow[r]]));
            Assert.Equal(BruteForce(cost, n), total);
        }
    }

    private static long BruteForce(int[] cost, int n)
    {
        var best = long.MaxValue;
        var perm = Enumerable.Range(0, n).ToArray();
        Permute(0);
        return best;

        void Permute(int k)
        {
            if (k == n)
            {
                best = Math.Min(best, Enumerable.Range(0, n).Sum(r => (long)cost[(r * n) + perm[r]]));
                return;
            }

            for (var i = k; i < n; i++)
            {
                (perm[k], perm[i]) = (perm[i], perm[k]);
                Permute(k + 1);
                (perm[k], perm[i]) = (perm[i], perm[k]);
            }
        }
    }
}
