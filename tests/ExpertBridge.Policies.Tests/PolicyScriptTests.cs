using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Replay;
using ExpertBridge.Core.Traces;
using ExpertBridge.Scripting;
using static ExpertBridge.Policies.Tests.Loads;

namespace ExpertBridge.Policies.Tests;

/// <summary>The real scripts in policies/, compiled and loaded by the scripting host (one compile cache per class).</summary>
public sealed class PolicyScriptTests : IDisposable
{
    private static readonly string s_policies = FindPolicies();
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "eb-policy-tests", Guid.NewGuid().ToString("N"));

    public static TheoryData<string, string> Scripts => new()
    {
        { "eplb", "eplb" },
        { "omniplacement", "omniplacement" },
        { "omniplacement-static", "omniplacement-static" },
        { "omniplacement-incremental", "omniplacement-incremental" },
        { "omniplacement-comm", "omniplacement-comm" },
    };

    public void Dispose()
    {
        if (Directory.Exists(_cache))
        {
            Directory.Delete(_cache, recursive: true);
        }
    }

    private PolicyHost Open(string script, params (string Key, string Value)[] options) =>
        PolicyResolver.Open(Path.Combine(s_policies, script + ".csx"), new ScriptingOptions
        {
            CacheDirectory = _cache,
            PolicyDirectory = s_policies,
            DecisionTimeout = TimeSpan.FromMinutes(2),
            Options = Options(options),
        });

    [Theory]
    [MemberData(nameof(Scripts))]
    public void Check_EveryScript_CompilesPassesTheGuardAndAnswersValidly(string script, string name)
    {
        var result = PolicyCheck.Run(Path.Combine(s_policies, script + ".csx"), new ScriptingOptions { CacheDirectory = _cache, DecisionTimeout = TimeSpan.FromMinutes(2) }, TestContext.Current.CancellationToken);

        Assert.True(result.Success, string.Join(Environment.NewLine, result.Lines));
        Assert.Equal(name, result.PolicyName);
        Assert.DoesNotContain(result.Diagnostics, d => d.IsError);
        Assert.False(string.IsNullOrWhiteSpace(result.Description));
    }

    [Theory]
    [MemberData(nameof(Scripts))]
    public void Replay_EveryScript_OnTheSmallDriftingCase_StaysValidAndBalancesBetterThanTrivial(string script, string name)
    {
        var c = TraceSuite.Get(TraceSuite.DriftingSmall);
        var trace = c.Generate();
        using var host = Open(script);
        var options = new ReplayOptions { Window = 50, Interval = 25, ExpertGroups = c.Groups };

        var result = ReplayEngine.Run(trace, c.Topology, host, options, cancellation: TestContext.Current.CancellationToken);
        var trivial = ReplayEngine.Run(trace, c.Topology, new TrivialPolicy(), options, cancellation: TestContext.Current.CancellationToken);

        Assert.Equal(name, host.Name);
        Assert.Equal(0, host.Stats.Failed);
        Assert.True(result.ImbalanceMean < trivial.ImbalanceMean, $"{script}: {result.ImbalanceMean} vs trivial {trivial.ImbalanceMean}");
    }

    [Fact]
    public void Open_OptionValueTheScriptRefuses_IsThatInputErrorNamingTheOptionAndItsRule()
    {
        // The script's top level throws while parsing its options; the host passes that input error on as it is (not
        // wrapped in a second rule about compiling and loading, nor located at the library line that threw).
        var ex = Assert.Throws<InputException>(() => Open("omniplacement", ("ema-alpha", "fast")));

        Assert.Contains("ema-alpha", ex.Subject, StringComparison.Ordinal);
        Assert.Equal("a number", ex.Rule);
        Assert.Equal(1, ex.Message.Split("(rule:").Length - 1);
    }

    [Fact]
    public void Omniplacement_FlashLbCaseThroughTheScript_ReachesAtMost205()
    {
        var topology = Topology.Create(devices: 8, slotsPerDevice: 2);
        double[] loads = [600, 560, 120, 120, 20, 10, 10, 10];
        using var host = Open("omniplacement", ("mode", "static"), ("predictor", "mean"));

        var decision = host.Decide(new PolicyContext(topology, History(loads), TrivialPolicy.Build(topology, 1, loads.Length)));

        Assert.NotNull(decision.Placement);
        Assert.InRange(MaxDeviceLoad(decision.Placement, 0, loads), 0, 205);
    }

    [Fact]
    public void EplbScript_KeepSlots_SameBalanceAsTheBuiltInWithFewerMoves()
    {
        var c = TraceSuite.Get(TraceSuite.DriftingSmall);
        var trace = c.Generate();
        var options = new ReplayOptions { Window = 50, Interval = 25, ExpertGroups = c.Groups };
        using var host = Open("eplb");

        var script = ReplayEngine.Run(trace, c.Topology, host, options, cancellation: TestContext.Current.CancellationToken);
        var builtIn = ReplayEngine.Run(trace, c.Topology, BuiltInPolicies.TryCreate("eplb")!, options, cancellation: TestContext.Current.CancellationToken);

        Assert.Equal(builtIn.ImbalanceMean, script.ImbalanceMean, 9);
        Assert.True(script.ExpertsMoved < builtIn.ExpertsMoved, $"keep-slots {script.ExpertsMoved} vs raw {builtIn.ExpertsMoved}");
    }

    [Fact]
    public void EplbScript_ConfigOverridesHeader_RawOutputAgain()
    {
        var c = TraceSuite.Get(TraceSuite.StableSmall);
        var trace = c.Generate();
        var options = new ReplayOptions { Window = 50, Interval = 50, ExpertGroups = c.Groups };
        using var host = Open("eplb", ("keep-slots", "false"));

        var script = ReplayEngine.Run(trace, c.Topology, host, options, cancellation: TestContext.Current.CancellationToken);
        var builtIn = ReplayEngine.Run(trace, c.Topology, BuiltInPolicies.TryCreate("eplb")!, options, cancellation: TestContext.Current.CancellationToken);

        Assert.Equal(builtIn.ExpertsMoved, script.ExpertsMoved);
    }

    private static string FindPolicies()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "policies");
            if (File.Exists(Path.Combine(candidate, "omniplacement.csx")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"no policies/omniplacement.csx above {AppContext.BaseDirectory}");
    }
}
