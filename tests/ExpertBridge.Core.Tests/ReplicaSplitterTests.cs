using ExpertBridge.Core;
using ExpertBridge.Core.Latency;

namespace ExpertBridge.Core.Tests;

public class ReplicaSplitterTests
{
    [Fact]
    public void Balanced_HandCase_ReachesTheSmallestBusiestDevice()
    {
        // 2 devices x 2 slots: expert 0 (6 tokens) on both devices, expert 1 (10 tokens) on device 0, expert 2 (0) on 1.
        // Even: device 0 carries 3 + 10 = 13. Balanced: all 6 to device 1, so the busiest carries 10.
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        int[] row = [0, 1, 0, 2];
        float[] counts = [6, 10, 0];

        var even = Split(ReplicaDispatch.Even, topology, row, counts);
        var balanced = Split(ReplicaDispatch.Balanced, topology, row, counts);

        Assert.Equal([3.0, 10, 3, 0], even);
        Assert.Equal([0.0, 10, 6, 0], balanced);
    }

    [Fact]
    public void Balanced_ChainOfReplicas_SpreadsAcrossDevicesNotSharingAnExpert()
    {
        // Device 0 holds a hot single expert (12) and a replica of A (6); A's other replica shares device 1 with B (12),
        // whose other replica is on device 2. The busiest device can carry no less than 12 (the hot expert alone), and
        // only if all of A goes to device 1 and B makes room for it there by moving to device 2.
        var topology = Topology.Create(devices: 3, slotsPerDevice: 2);
        int[] row = [0, 1, 1, 2, 2, 3];
        float[] counts = [12, 6, 12, 0];

        var balanced = Split(ReplicaDispatch.Balanced, topology, row, counts);

        var devices = DeviceTokens(topology, balanced);
        Assert.Equal(12, devices.Max());
        Assert.Equal([12.0, 0, 6], balanced[..3]);
        Assert.True(balanced[4] >= 6, $"B's replica on device 2 serves at least 6, got {balanced[4]}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Balanced_RandomPlacements_KeepsEveryExpertsTokensAndNeverBusierThanEven(int seed)
    {
        var random = new Random(seed);
        var topology = Topology.Create(devices: 8, slotsPerDevice: 5, nodes: 2);
        const int experts = 32;
        var row = new int[topology.Slots];
        for (var s = 0; s < row.Length; s++)
        {
            // Every expert once, then random replicas (some colocated with another replica, some slots empty).
            row[s] = s < experts ? s : random.Next(-2, experts);
        }

        random.Shuffle(row);
        var counts = new float[experts];
        for (var e = 0; e < experts; e++)
        {
            counts[e] = MathF.Floor(random.NextSingle() * random.NextSingle() * 400);
        }

        var even = Split(ReplicaDispatch.Even, topology, row, counts, integral: true);
        var balanced = Split(ReplicaDispatch.Balanced, topology, row, counts);

        for (var e = 0; e < experts; e++)
        {
            double served = 0;
            for (var s = 0; s < row.Length; s++)
            {
                served += row[s] == e ? balanced[s] : 0;
            }

            Assert.Equal(counts[e], served);
        }

        Assert.All(balanced, t => Assert.True(t >= 0 && t == Math.Floor(t), $"whole tokens, got {t}"));
        Assert.True(
            DeviceTokens(topology, balanced).Max() <= DeviceTokens(topology, even).Max(),
            $"balanced devices {string.Join(' ', DeviceTokens(topology, balanced))}, even {string.Join(' ', DeviceTokens(topology, even))}, row {string.Join(' ', row)}, counts {string.Join(' ', counts)}");
        Assert.Equal(BruteForceBusiest(topology, row, counts), DeviceTokens(topology, balanced).Max());
    }

    [Fact]
    public void Even_Integral_FirstReplicasTakeTheRemainder()
    {
        var topology = Topology.Create(devices: 3, slotsPerDevice: 1);
        var tokens = Split(ReplicaDispatch.Even, topology, [0, 0, 0], [8], integral: true);
        Assert.Equal([3.0, 3, 2], tokens);
    }

    [Fact]
    public void LatencyModel_BalancedDispatch_NoSlowerThanEvenOnAnUnevenStep()
    {
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        var table = new GemmTable("test", "fp8", 1024, 512, [(1, 0.04), (128, 0.04), (1024, 0.10)], [], "test table");
        var placement = Placement.FromRows(topology, 3, [[0, 1, 0, 2]]);
        float[] counts = [600, 1000, 0];
        var even = new LatencyModel(MoeModel.Small, table, Interconnect.Default).Step(placement, counts);
        var balanced = new LatencyModel(MoeModel.Small, table, Interconnect.Default, ReplicaDispatch.Balanced).Step(placement, counts);
        Assert.True(balanced.Millis < even.Millis, $"balanced {balanced.Millis} ms, even {even.Millis} ms");
    }

    private static double[] Split(ReplicaDispatch dispatch, Topology topology, int[] row, float[] counts, bool integral = false)
    {
        var tokens = new double[row.Length];
        new ReplicaSplitter(dispatch).Split(topology, row, counts, tokens, integral);
        return tokens;
    }

    private static double[] DeviceTokens(Topology topology, double[] slotTokens)
    {
        var devices = new double[topology.Devices];
        for (var s = 0; s < slotTokens.Length; s++)
        {
            devices[topology.DeviceOf(s)] += slotTokens[s];
        }

        return devices;
    }

    // The smallest busiest-device load by a different method: for each candidate level L, a greedy check is not exact,
    // so use the cut condition instead: L is feasible iff for every set of devices, the experts held only inside that
    // set fit (Hall's condition for the fractional assignment); with 8 devices all 256 subsets are checked.
    private static double BruteForceBusiest(Topology topology, int[] row, float[] counts)
    {
        var devices = topology.Devices;
        var masks = new int[counts.Length];
        for (var s = 0; s < row.Length; s++)
        {
            if (row[s] >= 0)
            {
                masks[row[s]] |= 1 << topology.DeviceOf(s);
            }
        }

        double best = 0;
        for (var set = 1; set < (1 << devices); set++)
        {
            double inside = 0;
            for (var e = 0; e < counts.Length; e++)
            {
                if (masks[e] != 0 && (masks[e] & ~set) == 0)
                {
                    inside += counts[e];
                }
            }

            best = Math.Max(best, Math.Ceiling(inside / System.Numerics.BitOperations.PopCount((uint)set)));
        }

        return best;
    }
}
