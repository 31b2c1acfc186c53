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
/// Each call is a fresh instance deciding on the trace suite's history, so every call does the same work:
/// <list type="bullet">
/// <item><c>steady</c>: window 100 ending at step 500, the placement in force being the policy's own from the
/// rebalance 100 steps earlier (a rebalance at the (100, 100) cadence);</item>
/// <item><c>cold</c>: window 100 at step 100 from the trivial placement (the first rebalance after start-up).</item>
/// </list>
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
        const int window = 100;
        var current = TrivialPolicy.Build(suite.Topology, trace.Layers, trace.Experts);
        var last = parts[1] == "cold" ? window : 5 * window;
        var policy = new OmniPlacementPolicy(_options);
        for (var step = window; step < last; step += window)
        {
            current = policy.Decide(Context(suite, trace, step, window, current)).Placement ?? current;
        }

        _context = Context(suite, trace, last, window, current);
    }

    [Benchmark(Description = "OmniPlacement rebalance (58 x 256, omniplacement.csx)")]
    public PolicyDecision Rebalance() => new OmniPlacementPolicy(_options).Decide(_context);

    private static PolicyContext Context(TraceCase suite, LoadTrace trace, int step, int window, Placement current)
    {
        var history = new LoadHistory(trace.Layers, trace.Experts, window);
        for (var s = step - window; s < step; s++)
        {
            history.Record(trace.GetStep(s));
        }

        return new PolicyContext(suite.Topology, history, current, null, suite.Groups, null, step);
    }
}
