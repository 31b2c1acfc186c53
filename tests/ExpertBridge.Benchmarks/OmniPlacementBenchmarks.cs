using BenchmarkDotNet.Attributes;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Traces;
using ExpertBridge.Scripting;
using Microsoft.CodeAnalysis.Text;

namespace ExpertBridge.Benchmarks;

/// <summary>
/// One OmniPlacement rebalance at DeepSeek-V3 scale (58 MoE layers x 256 experts, 32 devices x 9 slots on 4 nodes):
/// policies/omniplacement.csx's configuration (its header options; the library compiled in Release, as the scripting
/// host compiles it). Goal (issue 3): under 10 ms median on one core.
/// Each call is a fresh instance deciding on the trace suite's history, so every call does the same work: the
/// <c>steady</c> and <c>cold</c> rebalances of <see cref="OmniPlacementCases"/>.
/// </summary>
[MemoryDiagnoser]
public class OmniPlacementBenchmarks
{
    private PolicyOptions _options = PolicyOptions.Empty;
    private PolicyContext _context = null!;

    [ParamsSource(nameof(Cases))]
    public string Case { get; set; } = "";

    public static IEnumerable<string> Cases => ["drifting steady", "drifting cold", "stable steady", "switching steady"];

    [GlobalSetup]
    public void Setup()
    {
        // The project copies the script next to the binary (BenchmarkDotNet's child builds and self-contained
        // publishes included); only its header is read.
        var script = Path.Combine(AppContext.BaseDirectory, "policies", "omniplacement.csx");
        _options = PolicyHeader.Parse(script, SourceText.From(File.ReadAllText(script))).Options;
        var parts = Case.Split(' ');
        var suite = TraceSuite.Get(parts[0]);
        var trace = suite.Generate();
        _context = parts[1] == "cold" ? OmniPlacementCases.Cold(suite, trace) : OmniPlacementCases.Steady(suite, trace, _options);
    }

    [Benchmark(Description = "OmniPlacement rebalance (58 x 256, omniplacement.csx)")]
    public PolicyDecision Rebalance() => new OmniPlacementPolicy(_options).Decide(_context);
}
