using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Traces;

namespace ExpertBridge.Benchmarks;

/// <summary>
/// The two OmniPlacement rebalances that <see cref="OmniPlacementBenchmarks"/> and Policies.Evaluation's <c>steady</c>
/// mode time (that harness links this file), on a trace of the suite with window <see cref="Window"/>:
/// <list type="bullet">
/// <item><see cref="Cold"/>: the first rebalance after start-up, at step 100, from the trivial placement;</item>
/// <item><see cref="Steady"/>: the rebalance at step 500 from the placement the policy itself produced at step 400 (its
/// own decisions at steps 100, 200, 300 and 400: a rebalance at the (100, 100) cadence).</item>
/// </list>
/// </summary>
internal static class OmniPlacementCases
{
    public const int Window = 100;

    public static PolicyContext Cold(TraceCase suite, LoadTrace trace) =>
        Context(suite, trace, Window, TrivialPolicy.Build(suite.Topology, trace.Layers, trace.Experts));

    public static PolicyContext Steady(TraceCase suite, LoadTrace trace, PolicyOptions options)
    {
        var current = TrivialPolicy.Build(suite.Topology, trace.Layers, trace.Experts);
        var policy = new OmniPlacementPolicy(options);
        for (var step = Window; step < 5 * Window; step += Window)
        {
            current = policy.Decide(Context(suite, trace, step, current)).Placement ?? current;
        }

        return Context(suite, trace, 5 * Window, current);
    }

    private static PolicyContext Context(TraceCase suite, LoadTrace trace, int step, Placement current)
    {
        var history = new LoadHistory(trace.Layers, trace.Experts, Window);
        for (var s = step - Window; s < step; s++)
        {
            history.Record(trace.GetStep(s));
        }

        return new PolicyContext(suite.Topology, history, current, null, suite.Groups, null, step);
    }
}
