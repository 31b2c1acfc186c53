namespace ExpertBridge.Core.Traces;

/// <summary>One named workload of the shared trace suite: how to generate it and where it runs.</summary>
/// <param name="Name">Short name (<c>drifting</c>, <c>drifting-small</c>).</param>
/// <param name="Description">One line: the regime and the scale.</param>
/// <param name="Options">Generator options (seed included), so the trace is the same everywhere.</param>
/// <param name="Topology">Devices, slots and nodes the placement policies target.</param>
/// <param name="Groups">Expert groups of the model (for EPLB's hierarchical mode).</param>
public sealed record TraceCase(string Name, string Description, TraceOptions Options, Topology Topology, int Groups)
{
    /// <summary>Generates the case's trace (deterministic; one to two seconds for a DeepSeek-V3-scale case).</summary>
    public LoadTrace Generate() => TraceGenerator.Generate(Options);

    public override string ToString() => $"{Name}: {Description}";
}

/// <summary>
/// The trace suite the tests, benchmarks and reports share: stable, drifting and workload-switching regimes at
/// DeepSeek-V3 scale (58 MoE layers x 256 experts, top-8, 4096 tokens per step, 1000 steps; 32 devices x 9 slots on
/// 4 nodes, 8 expert groups), one at 64 devices x 5 slots, and small versions of each regime for fast tests
/// (4 layers x 32 experts, top-4, 512 tokens per step, 200 steps; 8 devices x 5 slots on 2 nodes, 4 groups).
/// Generate a case once per test class or benchmark: the large ones take about a second each.
/// </summary>
public static class TraceSuite
{
    public const string Stable = "stable";
    public const string Drifting = "drifting";
    public const string Switching = "switching";
    public const string StableEp64 = "stable-ep64";
    public const string StableSmall = "stable-small";
    public const string DriftingSmall = "drifting-small";
    public const string SwitchingSmall = "switching-small";

    private static readonly TraceOptions s_deepSeekV3 = new()
    {
        Layers = 58,
        Experts = 256,
        Steps = 1000,
        TokensPerStep = 4096,
        TopK = 8,
        Seed = 20250101,
    };

    private static readonly TraceOptions s_small = new()
    {
        Layers = 4,
        Experts = 32,
        Steps = 200,
        TokensPerStep = 512,
        TopK = 4,
        Seed = 7,
    };

    private static readonly Topology s_ep32 = Topology.Create(devices: 32, slotsPerDevice: 9, nodes: 4);
    private static readonly Topology s_ep64 = Topology.Create(devices: 64, slotsPerDevice: 5, nodes: 8);
    private static readonly Topology s_smallTopology = Topology.Create(devices: 8, slotsPerDevice: 5, nodes: 2);

    /// <summary>DeepSeek-V3-scale cases (benchmarks, reports).</summary>
    public static IReadOnlyList<TraceCase> Large { get; } =
    [
        new(Stable, "DeepSeek-V3 scale, fixed hot set per layer, per-step noise only; 32 devices x 9 slots",
            s_deepSeekV3, s_ep32, 8),
        new(Drifting, "DeepSeek-V3 scale, popularity drifts (d = 0.03 per step, horizon 1000 steps); 32 devices x 9 slots",
            s_deepSeekV3 with { Drift = 0.03, Seed = s_deepSeekV3.Seed + 1 }, s_ep32, 8),
        new(Switching, "DeepSeek-V3 scale, half the hot set swaps every 250 steps over slight drift; 32 devices x 9 slots",
            s_deepSeekV3 with { Drift = 0.01, SwitchEvery = 250, Seed = s_deepSeekV3.Seed + 2 }, s_ep32, 8),
        new(StableEp64, "DeepSeek-V3 scale, stable regime on 64 devices x 5 slots (8 nodes)",
            s_deepSeekV3, s_ep64, 8),
    ];

    /// <summary>Small cases of the same regimes (unit tests: milliseconds each).</summary>
    public static IReadOnlyList<TraceCase> Small { get; } =
    [
        new(StableSmall, "4 layers x 32 experts, stable; 8 devices x 5 slots", s_small, s_smallTopology, 4),
        new(DriftingSmall, "4 layers x 32 experts, drifting (d = 0.05); 8 devices x 5 slots",
            s_small with { Drift = 0.05, Seed = s_small.Seed + 1 }, s_smallTopology, 4),
        new(SwitchingSmall, "4 layers x 32 experts, half the hot set swaps every 50 steps; 8 devices x 5 slots",
            s_small with { Drift = 0.01, SwitchEvery = 50, Seed = s_small.Seed + 2 }, s_smallTopology, 4),
    ];

    /// <summary>Every case, large first.</summary>
    public static IReadOnlyList<TraceCase> All { get; } = [.. Large, .. Small];

    /// <summary>The case named <paramref name="name"/> (case-insensitive), or an <see cref="InputException"/> listing the names.</summary>
    public static TraceCase Get(string name)
    {
        foreach (var c in All)
        {
            if (string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return c;
            }
        }

        throw new InputException(name ?? "(null)", "a trace suite case", $"unknown case; known: {string.Join(", ", All.Select(c => c.Name))}");
    }
}
