using ExpertBridge.Core;

namespace ExpertBridge.Scripting.Tests;

public class InvokerTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<PolicyHost> OpenAsync(PolicyFiles files, string members, TimeSpan? timeout = null)
    {
        var path = files.Write("p.csx", PolicyFiles.PolicyScript(members));
        return await PolicyResolver.OpenAsync(path, files.Options(timeout), Token);
    }

    [Fact]
    public async Task Invoke_PolicyThrows_KeepsPlacementCountsAndNamesScriptLine()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, """
                public PolicyDecision Decide(PolicyContext context) =>
                    throw new InvalidOperationException("broken policy");
            """);
        var context = PolicyFiles.Context();

        var outcome = host.Invoke(context);
        var decision = host.Decide(context);

        Assert.Equal(PolicyOutcomeKind.Failed, outcome.Kind);
        Assert.Equal(PolicyFailureReason.Exception, outcome.Failure);
        Assert.Same(context.Current, outcome.Placement);
        Assert.Contains("InvalidOperationException: broken policy", outcome.Reason, StringComparison.Ordinal);
        Assert.Contains($"p.csx:{6}", outcome.Reason, StringComparison.Ordinal);
        Assert.True(decision.IsKeep);
        Assert.Equal(2, host.Stats[PolicyFailureReason.Exception]);
        Assert.Equal(2, host.Stats.Calls);
    }

    [Fact]
    public async Task Invoke_CooperativePolicyPastTimeout_KeepsPlacementAndCountsTimeout()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, """
                public PolicyDecision Decide(PolicyContext context)
                {
                    while (!context.Cancellation.IsCancellationRequested) { }
                    context.Cancellation.ThrowIfCancellationRequested();
                    return PolicyDecision.Keep();
                }
            """, TimeSpan.FromMilliseconds(150));
        var context = PolicyFiles.Context();

        var outcome = host.Invoke(context);

        Assert.Equal(PolicyFailureReason.Timeout, outcome.Failure);
        Assert.Same(context.Current, outcome.Placement);
        Assert.Equal(1, host.Stats[PolicyFailureReason.Timeout]);
        Assert.Contains("0.15 s", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invoke_PolicyIgnoringCancellation_NextCallIsBusyUntilItReturns()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, """
                private int _calls;
                public PolicyDecision Decide(PolicyContext context)
                {
                    if (System.Threading.Interlocked.Increment(ref _calls) == 1)
                    {
                        var clock = System.Diagnostics.Stopwatch.StartNew();
                        while (clock.ElapsedMilliseconds < 800) { }
                    }

                    return PolicyDecision.Keep("done");
                }
            """, TimeSpan.FromMilliseconds(100));

        var first = host.Invoke(PolicyFiles.Context());
        var second = host.Invoke(PolicyFiles.Context());
        var deadline = DateTime.UtcNow.AddSeconds(10);
        PolicyOutcome later;
        do
        {
            await Task.Delay(100, Token);
            later = host.Invoke(PolicyFiles.Context());
        }
        while (later.Failure == PolicyFailureReason.Busy && DateTime.UtcNow < deadline);

        Assert.Equal(PolicyFailureReason.Timeout, first.Failure);
        Assert.Equal(PolicyFailureReason.Busy, second.Failure);
        Assert.Equal(PolicyOutcomeKind.Kept, later.Kind);
        Assert.Equal("done", later.Reason);
    }

    [Fact]
    public async Task Invoke_BackToBackCalls_NeverBusy()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, "    public PolicyDecision Decide(PolicyContext context) => PolicyDecision.Keep(\"steady\");\n");

        var outcomes = Enumerable.Range(0, 200).Select(_ => host.Invoke(PolicyFiles.Context())).ToList();

        Assert.All(outcomes, o => Assert.Equal(PolicyOutcomeKind.Kept, o.Kind));
        Assert.Equal(200, host.Stats.Kept);
        Assert.Equal(0, host.Stats.Failed);
    }

    [Fact]
    public async Task Invoke_CallerCancels_CountsCancelled()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, """
                public PolicyDecision Decide(PolicyContext context)
                {
                    context.Cancellation.WaitHandle.WaitOne();
                    context.Cancellation.ThrowIfCancellationRequested();
                    return PolicyDecision.Keep();
                }
            """);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        var outcome = host.Invoke(PolicyFiles.CancellableContext(cts.Token));

        Assert.Equal(PolicyFailureReason.Cancelled, outcome.Failure);
        Assert.Equal(1, host.Stats[PolicyFailureReason.Cancelled]);
    }

    [Fact]
    public async Task Invoke_MissingExpert_RejectedNamingRule()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, """
                public PolicyDecision Decide(PolicyContext context)
                {
                    var next = context.Current.CopyPhy2Log();
                    for (var i = 0; i < next.Length; i++) { if (next[i] == 7) next[i] = 5; }
                    return PolicyDecision.Apply(new Placement(context.Topology, context.LogicalExperts, next));
                }
            """);
        var context = PolicyFiles.Context();

        var outcome = await host.InvokeAsync(context);

        Assert.Equal(PolicyFailureReason.InvalidPlacement, outcome.Failure);
        Assert.Same(context.Current, outcome.Placement);
        Assert.Contains(PlacementValidator.RuleEveryExpertPlaced, outcome.Reason, StringComparison.Ordinal);
        Assert.Contains("expert 7 has no replica", outcome.Reason, StringComparison.Ordinal);
        Assert.Equal(1, host.Stats[PolicyFailureReason.InvalidPlacement]);
    }

    private static string ColocatingDecide(bool declare) => $$"""
            public PolicyDecision Decide(PolicyContext context)
            {
                // Device 0 (slots 0..2) gets expert 0 twice; expert 1 moves to the slot expert 0 had elsewhere.
                var next = context.Current.CopyPhy2Log();
                var slots = context.Topology.Slots;
                for (var l = 0; l < context.Layers; l++)
                {
                    var row = l * slots;
                    var other = Array.IndexOf(next, 0, row + 3, slots - 3);
                    next[other] = next[row + 1];
                    next[row + 1] = 0;
                }

                return PolicyDecision.Apply(new Placement(context.Topology, context.LogicalExperts, next), "co-located", allowsColocatedReplicas: {{(declare ? "true" : "false")}});
            }
        """;

    [Fact]
    public async Task Invoke_ColocatedReplicas_RejectedUnlessDecisionAllowsThem()
    {
        using var files = new PolicyFiles();
        using var strict = await OpenAsync(files, ColocatingDecide(declare: false));
        var rejected = strict.Invoke(PolicyFiles.Context());

        using var files2 = new PolicyFiles();
        using var lenient = await OpenAsync(files2, ColocatingDecide(declare: true));
        var accepted = lenient.Invoke(PolicyFiles.Context());
        var decision = lenient.Decide(PolicyFiles.Context());

        Assert.Equal(PolicyFailureReason.InvalidPlacement, rejected.Failure);
        Assert.Contains(PlacementValidator.RuleNoColocatedReplicas, rejected.Reason, StringComparison.Ordinal);
        Assert.Equal(PolicyOutcomeKind.Applied, accepted.Kind);
        Assert.True(accepted.AllowsColocatedReplicas);
        Assert.True(decision.AllowsColocatedReplicas);
    }

    [Fact]
    public async Task Invoke_WrongShape_RejectedNamingShapeRule()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, """
                public PolicyDecision Decide(PolicyContext context) =>
                    PolicyDecision.Apply(TrivialPolicy.Build(context.Topology, context.Layers + 1, context.LogicalExperts));
            """);

        var outcome = host.Invoke(PolicyFiles.Context());

        Assert.Equal(PolicyFailureReason.InvalidPlacement, outcome.Failure);
        Assert.Contains(PlacementValidator.RuleShape, outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invoke_DecideReturnsNull_CountedAsException()
    {
        using var files = new PolicyFiles();
        using var host = await OpenAsync(files, "    public PolicyDecision Decide(PolicyContext context) => null!;\n");

        var outcome = host.Invoke(PolicyFiles.Context());

        Assert.Equal(PolicyFailureReason.Exception, outcome.Failure);
        Assert.Contains("null", outcome.Reason, StringComparison.Ordinal);
    }
}
