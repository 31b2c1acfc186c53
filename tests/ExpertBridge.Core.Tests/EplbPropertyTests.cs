using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

public class EplbPropertyTests
{
    private const int Cases = 300;

    /// <summary>A random deployment: nodes, devices, slots, groups and experts that satisfy EPLB's rules.</summary>
    internal sealed record RandomCase(int Seed, Topology Topology, int Groups, LoadMatrix Load)
    {
        public static RandomCase Create(int seed)
        {
            var rng = new Random(seed);
            var nodes = 1 << rng.Next(3);
            var devicesPerNode = 1 << rng.Next(4);
            var slotsPerDevice = 1 + rng.Next(5);
            var topology = Topology.Create(nodes * devicesPerNode, slotsPerDevice, nodes);
            var groups = 1 << rng.Next(4);
            while (groups > topology.Slots)
            {
                groups /= 2;
            }

            var experts = groups * (1 + rng.Next(topology.Slots / groups));
            var layers = 1 + rng.Next(3);
            var load = rng.Next(3) == 0
                ? EplbTestData.SmallIntegers(rng, layers, experts, 1 + rng.Next(6))
                : EplbTestData.Zipf(rng, layers, experts, 1000 + rng.Next(100_000));
            return new RandomCase(seed, topology, groups, load);
        }

        /// <summary>Shapes as deployed: several experts per device, at most one redundant slot per device, skewed loads.</summary>
        public static RandomCase Deployment(int seed)
        {
            var rng = new Random(seed);
            var experts = 8 << rng.Next(6);
            var devices = Math.Min(experts, 4 << rng.Next(5));
            var nodes = Math.Max(1, Math.Min(devices / 4, 1 << rng.Next(4)));
            var slotsPerDevice = (experts / devices) + rng.Next(2);
            int[] groupChoices = [1, 4, 8];
            var groups = groupChoices[rng.Next(groupChoices.Length)];
            var load = EplbTestData.Zipf(rng, 1 + rng.Next(3), experts, 10_000 + rng.Next(1_000_000));
            return new RandomCase(seed, Topology.Create(devices, slotsPerDevice, nodes), groups, load);
        }

        public override string ToString() => $"seed {Seed}: {Topology}, {Load.Experts} experts, {Groups} groups";
    }

    [Fact]
    public void Rebalance_RandomInputs_EveryPlacementValidWithColocationAllowed()
    {
        for (var seed = 0; seed < Cases; seed++)
        {
            var c = RandomCase.Create(seed);

            var result = Eplb.Rebalance(c.Load, c.Topology, c.Groups);

            Assert.True(PlacementValidator.Validate(result.Placement, allowColocatedReplicas: true).Count == 0, c.ToString());
            var colocated = PlacementValidator.Validate(result.Placement, limit: int.MaxValue).Count(v => v.Rule == PlacementValidator.RuleNoColocatedReplicas);
            Assert.True(colocated == result.ColocatedReplicas, c.ToString());
        }
    }

    [Fact]
    public void Rebalance_RandomInputs_ReplicaCountsSumToSlotsAndMatchPlacement()
    {
        for (var seed = 0; seed < Cases; seed++)
        {
            var c = RandomCase.Create(seed);

            var result = Eplb.Rebalance(c.Load, c.Topology, c.Groups);

            var (log2phy, max) = result.Log2Phy();
            for (var l = 0; l < c.Load.Layers; l++)
            {
                var counts = result.Placement.ReplicaCounts(l);
                Assert.True(counts.Sum() == c.Topology.Slots, c.ToString());
                Assert.True(counts.AsSpan().SequenceEqual(result.LogicalCount.Slice(l * c.Load.Experts, c.Load.Experts)), c.ToString());
                for (var e = 0; e < c.Load.Experts; e++)
                {
                    for (var r = 0; r < max; r++)
                    {
                        var slot = log2phy[(((l * c.Load.Experts) + e) * max) + r];
                        Assert.True(r < counts[e] ? result.Placement[l, slot] == e : slot == -1, c.ToString());
                    }
                }
            }
        }
    }

    /// <remarks>
    /// Not a theorem: EPLB's greedy steps can lose to trivial's round robin when replication is heavy or there are
    /// only two devices (see <see cref="Rebalance_HeavyReplication_CanLoseToTrivial"/>). On deployment shapes (at least
    /// four devices per node, at most one redundant slot per device, skewed loads) it held for 2,000 seeds.
    /// </remarks>
    [Fact]
    public void Rebalance_DeploymentShapes_NeverWorseThanTrivialOnFittedLoad()
    {
        for (var seed = 0; seed < Cases; seed++)
        {
            var c = RandomCase.Deployment(seed);

            var eplb = PlacementMetrics.Evaluate(Eplb.Rebalance(c.Load, c.Topology, c.Groups).Placement, c.Load);
            var trivial = PlacementMetrics.Evaluate(TrivialPolicy.Build(c.Topology, c.Load.Layers, c.Load.Experts), c.Load);

            Assert.True(eplb.ImbalanceMean <= trivial.ImbalanceMean + 1e-12, $"{c}: eplb {eplb.ImbalanceMean} vs trivial {trivial.ImbalanceMean}");
        }
    }

    [Fact]
    public void Rebalance_HeavyReplication_CanLoseToTrivial()
    {
        // 4 experts on 2 devices x 4 slots: trivial gives every expert one replica per device (perfect balance);
        // EPLB gives the hot expert 5 replicas of 2 tokens and packs 2,2,2,2,2,1,1,1 into 6 and 7.
        var load = LoadMatrix.FromRows([[10, 1, 1, 1]]);
        var topology = Topology.Create(devices: 2, slotsPerDevice: 4);

        var eplb = PlacementMetrics.Evaluate(Eplb.Rebalance(load, topology, groups: 1).Placement, load).Layers[0];
        var trivial = PlacementMetrics.Evaluate(TrivialPolicy.Build(topology, 1, 4), load).Layers[0];

        Assert.Equal(7, eplb.MaxDeviceLoad, 9);
        Assert.Equal(1.0, trivial.Imbalance, 9);
    }

    [Fact]
    public void Evaluate_EplbPlacements_MetricInvariantsHold()
    {
        for (var seed = 0; seed < Cases; seed++)
        {
            var c = RandomCase.Create(seed);

            var report = PlacementMetrics.Evaluate(Eplb.Rebalance(c.Load, c.Topology, c.Groups).Placement, c.Load);

            foreach (var layer in report.Layers)
            {
                var total = c.Load.LayerTotal(layer.Layer);
                Assert.True(layer.Imbalance >= 1 - 1e-12, c.ToString());
                Assert.True(layer.Balancedness is > 0 and <= 1 + 1e-12, c.ToString());
                Assert.True(Math.Abs(layer.BestEp - (total / c.Topology.Devices)) <= 1e-9 * Math.Max(1, total), c.ToString());
                Assert.True(layer.MaxDeviceLoad >= layer.BestEp - 1e-9, c.ToString());
            }
        }
    }
}
