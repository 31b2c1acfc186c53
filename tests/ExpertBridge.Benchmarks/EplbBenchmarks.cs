using BenchmarkDotNet.Attributes;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Benchmarks;

/// <summary>
/// EPLB at DeepSeek-V3 scale (58 MoE layers x 256 routed experts) on the deployments the issue names, plus the
/// movement-aware relabelling of the result against a previous placement. Goal: EPLB under 3 ms median on one core.
/// </summary>
[MemoryDiagnoser]
public class EplbBenchmarks
{
    private const int Layers = 58;
    private const int Experts = 256;

    private LoadMatrix _load = null!;
    private Topology _topology = null!;
    private Placement _previous = null!;
    private Placement _next = null!;

    /// <summary>devices x slots, nodes, groups (hierarchical when groups % nodes == 0).</summary>
    [ParamsSource(nameof(Deployments))]
    public string Deployment { get; set; } = "";

    public static IEnumerable<string> Deployments => ["32x9 n4 g8", "64x5 n8 g8", "64x5 n1 g1"];

    private int Groups => int.Parse(Deployment.Split(" g")[1], System.Globalization.CultureInfo.InvariantCulture);

    [GlobalSetup]
    public void Setup()
    {
        var parts = Deployment.Split(' ');
        var shape = parts[0].Split('x');
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        _topology = Topology.Create(int.Parse(shape[0], inv), int.Parse(shape[1], inv), int.Parse(parts[1][1..], inv));
        // Summed window of ~1000 decode steps: the hottest expert sees ~250k tokens.
        _load = Loads.SkewedPerLayer(seed: 42, Layers, Experts, tokens: 250_000);
        // The placement in force was fitted to the previous window: the same workload, each count drifted by up to 30%.
        _previous = Eplb.Rebalance(Loads.Drifted(_load, seed: 7, drift: 0.3), _topology, Groups).Placement;
        _next = Eplb.Rebalance(_load, _topology, Groups).Placement;
    }

    [Benchmark(Description = "EPLB rebalance (58 x 256)")]
    public Placement Rebalance() => Eplb.Rebalance(_load, _topology, Groups).Placement;

    [Benchmark(Description = "MinimalMovement relabel (58 layers)")]
    public Placement Relabel() => MinimalMovement.Relabel(_previous, _next, acrossNodes: _topology.Nodes == 1);
}
