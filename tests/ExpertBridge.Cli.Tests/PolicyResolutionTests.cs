using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Cli.Tests;

/// <summary>The resolver seam: what a verb resolves it disposes (script hosts hold load contexts and watchers).</summary>
public sealed class PolicyResolutionTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Replay_ResolvedPolicies_AreDisposedAfterTheRun()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var resolver = new CountingResolver();

        var r = CliHarness.Run(_cli.Services with { Policies = resolver }, "replay", "--trace", trace, "--policy", "a", "--policy", "b", "--devices", "8", "--slots-per-device", "5", "--window", "10");

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(["a", "b"], resolver.Resolved.Select(p => p.Name));
        Assert.All(resolver.Resolved, p => Assert.True(p.Disposed));
    }

    [Fact]
    public void Replay_LaterPolicyUnknown_DisposesThoseAlreadyResolved()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var resolver = new CountingResolver();

        var r = CliHarness.Run(_cli.Services with { Policies = resolver }, "replay", "--trace", trace, "--policy", "a", "--policy", "unknown", "--devices", "8", "--slots-per-device", "5");

        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("expertbridge: --policy: ", r.Stderr, StringComparison.Ordinal);
        Assert.True(Assert.Single(resolver.Resolved).Disposed);
    }

    [Fact]
    public void BuiltInResolver_ScriptPathOrUnknownName_SaysWhatIsAccepted()
    {
        var resolver = new BuiltInPolicyResolver();

        Assert.Equal("eplb", resolver.Resolve("EPLB", PolicyOptions.Empty).Name);
        var script = Assert.Throws<InputException>(() => resolver.Resolve("policies/omniplacement.csx", PolicyOptions.Empty));
        Assert.Equal("--policy", script.Subject);
        Assert.Contains("eplb", script.Rule, StringComparison.Ordinal);
        Assert.Contains("unknown policy 'nope'", Assert.Throws<InputException>(() => resolver.Resolve("nope", PolicyOptions.Empty)).Message, StringComparison.Ordinal);
    }

    private sealed class CountingResolver : IPolicyResolver
    {
        public List<DisposablePolicy> Resolved { get; } = [];

        public IPlacementPolicy Resolve(string spec, PolicyOptions options)
        {
            if (spec == "unknown")
            {
                throw new InputException("--policy", "a known policy", $"unknown policy '{spec}'");
            }

            var policy = new DisposablePolicy(spec);
            Resolved.Add(policy);
            return policy;
        }
    }

    private sealed class DisposablePolicy(string name) : IPlacementPolicy, IDisposable
    {
        public bool Disposed { get; private set; }

        public string Name => name;

        public PolicyDecision Decide(PolicyContext context) => PolicyDecision.Keep();

        public void Dispose() => Disposed = true;
    }
}
