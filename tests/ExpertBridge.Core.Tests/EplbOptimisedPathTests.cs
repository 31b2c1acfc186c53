using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

/// <summary>
/// <see cref="Eplb.Rebalance(LoadMatrix, int, int, int, int)"/> against <see cref="EplbStraightforward"/>, the port as
/// it was before its speed work: every output (phy2log, replica ranks, replica counts, co-located count) must agree
/// exactly on many seeded random inputs, tie-heavy ones included.
/// </summary>
public class EplbOptimisedPathTests
{
    private const int Cases = 1500;

    [Fact]
    public void Rebalance_RandomSeededCases_MatchesStraightforwardPort()
    {
        for (var seed = 0; seed < Cases; seed++)
        {
            var rng = new Random(seed);
            var nodes = 1 << rng.Next(4);
            var devices = nodes * (1 + rng.Next(rng.Next(2) == 0 ? 4 : 20));
            var slotsPerDevice = 1 + rng.Next(6);
            var replicas = devices * slotsPerDevice;
            var groups = 1 + rng.Next(Math.Min(16, replicas));
            var experts = groups * (1 + rng.Next(replicas / groups));
            if (rng.Next(3) == 0 && replicas / 2 >= groups)
            {
                // Many experts per slot budget: little replication (the deployed regime).
                experts = groups * Math.Max(1, (replicas - rng.Next(devices + 1)) / groups);
            }

            AssertSame(seed, Load(rng, 1 + rng.Next(3), experts), replicas, groups, nodes, devices);
        }
    }

    [Theory]
    [InlineData(32, 9, 4, 8)]
    [InlineData(64, 5, 8, 8)]
    [InlineData(64, 5, 1, 1)]
    [InlineData(64, 5, 8, 4)]
    public void Rebalance_DeepSeekScale_MatchesStraightforwardPort(int devices, int slotsPerDevice, int nodes, int groups)
    {
        for (var seed = 0; seed < 12; seed++)
        {
            var rng = new Random(seed);
            AssertSame(seed, Load(rng, 8, 256), devices * slotsPerDevice, groups, nodes, devices);
        }
    }

    private static void AssertSame(int seed, LoadMatrix load, int replicas, int groups, int nodes, int devices)
    {
        var what = $"seed {seed}: {load.Layers} x {load.Experts}, {replicas} replicas, {groups} groups, {nodes} nodes, {devices} devices";
        var expected = EplbStraightforward.Rebalance(load, replicas, groups, nodes, devices);

        var actual = Eplb.Rebalance(load, replicas, groups, nodes, devices);

        Assert.True(expected.Phy2Log.AsSpan().SequenceEqual(actual.Placement.Phy2Log), $"phy2log differs, {what}");
        Assert.True(expected.ReplicaRank.AsSpan().SequenceEqual(actual.ReplicaRank), $"replica ranks differ, {what}");
        Assert.True(expected.LogicalCount.AsSpan().SequenceEqual(actual.LogicalCount), $"replica counts differ, {what}");
        Assert.True(Colocated(expected.Phy2Log, replicas / devices) == actual.ColocatedReplicas, $"co-located count differs, {what}");
    }

    /// <summary>Loads of several kinds: skewed, few distinct values (ties), zeros and negative zeros, beyond float range.</summary>
    private static LoadMatrix Load(Random rng, int layers, int experts)
    {
        switch (rng.Next(5))
        {
            case 0:
                return EplbTestData.Zipf(rng, layers, experts, 1000 + rng.Next(1_000_000));
            case 1:
                return EplbTestData.SmallIntegers(rng, layers, experts, 1 + rng.Next(5));
            case 2:
                var values = new double[layers * experts];
                for (var i = 0; i < values.Length; i++)
                {
                    values[i] = rng.Next(4) switch
                    {
                        0 => 0.0,
                        1 => -0.0,
                        2 => rng.Next(3) * 0.1,
                        _ => rng.NextDouble() * 1e-40,
                    };
                }

                return new LoadMatrix(layers, experts, values);
            case 3:
                var huge = new double[layers * experts];
                for (var i = 0; i < huge.Length; i++)
                {
                    huge[i] = rng.Next(6) == 0 ? 1e39 * (1 + rng.Next(3)) : rng.Next(50);
                }

                return new LoadMatrix(layers, experts, huge);
            default:
                var uniform = new double[layers * experts];
                for (var i = 0; i < uniform.Length; i++)
                {
                    uniform[i] = rng.NextDouble() * 1000;
                }

                return new LoadMatrix(layers, experts, uniform);
        }
    }

    private static int Colocated(int[] phy2log, int slotsPerDevice)
    {
        var n = 0;
        for (var start = 0; start < phy2log.Length; start += slotsPerDevice)
        {
            for (var k = 1; k < slotsPerDevice; k++)
            {
                if (phy2log.AsSpan(start, k).Contains(phy2log[start + k]))
                {
                    n++;
                }
            }
        }

        return n;
    }
}
