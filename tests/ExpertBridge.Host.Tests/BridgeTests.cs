using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Host;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ExpertBridge.Host.Tests;

public sealed class BridgeTests : IDisposable
{
    private const int Layers = 2;
    private const int Experts = 8;
    private const int Devices = 4;
    private const int PerDevice = 3;
    private const int Slots = Devices * PerDevice;
    private const int Floats = 64; // one tensor per expert, 64 floats

    private readonly nint[] _weights = new nint[Layers * Slots];

    public unsafe BridgeTests()
    {
        for (var i = 0; i < _weights.Length; i++)
        {
            _weights[i] = (nint)NativeMemory.Alloc(Floats, sizeof(float));
        }
    }

    public unsafe void Dispose()
    {
        foreach (var w in _weights)
        {
            NativeMemory.Free((void*)w);
        }
    }

    private static HostConfig Config(string extra = "") => HostConfig.Parse($$"""
        { "model": { "layers": {{Layers}}, "experts": {{Experts}} },
          "topology": { "devices": {{Devices}}, "slotsPerDevice": {{PerDevice}} },
          "rebalance": { "imbalanceTrigger": 1.2, "checkEverySteps": 10, "windowSteps": 50, "warmupSteps": 20, "minStepsBetween": 40 },
          "moveBudget": { "maxLayersPerBoundary": 0 }
          {{extra}} }
        """, "test.json");

    private static Bridge Start(HostConfig config, IPlacementPolicy policy) =>
        Bridge.Create(config, new BridgeServices { PolicySourceFactory = c => PolicySources.ForPolicy(policy, c, NullLoggerFactory.Instance) });

    /// <summary>Expert e's weights in layer l: a pattern only that (layer, expert) has.</summary>
    private static float Pattern(int layer, int expert, int i) => (layer * 1000) + (expert * 10) + (i * 0.001f);

    private unsafe void FillAndRegister(Bridge bridge)
    {
        for (var l = 0; l < Layers; l++)
        {
            for (var s = 0; s < Slots; s++)
            {
                var w = (float*)_weights[(l * Slots) + s];
                for (var i = 0; i < Floats; i++)
                {
                    w[i] = Pattern(l, s % Experts, i);
                }

                bridge.RegisterTensor(new TensorRegistration(l, s, 0, s / PerDevice, (nint)w, Floats * sizeof(float)));
            }
        }
    }

    /// <summary>Slots whose weights are not the weights of the expert the mapping says they hold.</summary>
    private unsafe int Mismatches(Bridge bridge)
    {
        var phy2log = new int[Layers * Slots];
        bridge.CopyMapping(-1, phy2log, default, default);
        var bad = 0;
        for (var l = 0; l < Layers; l++)
        {
            for (var s = 0; s < Slots; s++)
            {
                var e = phy2log[(l * Slots) + s];
                var w = new ReadOnlySpan<float>((void*)_weights[(l * Slots) + s], Floats);
                for (var i = 0; i < Floats; i++)
                {
                    if (e >= 0 && w[i] != Pattern(l, e, i))
                    {
                        bad++;
                        break;
                    }
                }
            }
        }

        return bad;
    }

    /// <summary>Skewed routing: expert 0 gets 20x the tokens of a cold expert, expert 1 gets 8x; split over replicas.</summary>
    private static int[] SkewedStep(Bridge bridge)
    {
        var phy2log = new int[Layers * Slots];
        var counts = new int[Layers * Experts];
        bridge.CopyMapping(-1, phy2log, default, counts);
        var tokens = new int[Layers * Slots];
        for (var l = 0; l < Layers; l++)
        {
            for (var s = 0; s < Slots; s++)
            {
                var e = phy2log[(l * Slots) + s];
                var load = e == 0 ? 200 : e == 1 ? 80 : 10;
                tokens[(l * Slots) + s] = load / counts[(l * Experts) + e];
            }
        }

        return tokens;
    }

    private static void Serve(Bridge bridge, int steps, Action? perStep = null)
    {
        var changed = new int[Layers];
        for (var i = 0; i < steps; i++)
        {
            bridge.RecordStep(SkewedStep(bridge));
            bridge.StepBoundary(changed, out _);
            perStep?.Invoke();
        }
    }

    private static void WaitFor(Func<bool> condition, Action? between = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the bridge");
            between?.Invoke();
            Thread.Sleep(5);
        }
    }

    [Fact]
    public void Loop_SkewedWorkload_TriggersRebalanceAndBalancesWithCorrectWeights()
    {
        using var bridge = Start(Config(), new GreedyTestPolicy());
        FillAndRegister(bridge);
        var mismatches = 0;

        Serve(bridge, 60, () => mismatches += Mismatches(bridge));
        WaitFor(() => bridge.Stats.LayersCommitted >= Layers, () => Serve(bridge, 1, () => mismatches += Mismatches(bridge)));
        Serve(bridge, 60, () => mismatches += Mismatches(bridge));
        var stats = bridge.Stats;

        Assert.Equal(0, mismatches);
        Assert.True(stats.Rebalances >= 1);
        Assert.True(stats.Epoch >= 1);
        Assert.True(stats.ExpertsMoved > 0);
        Assert.Equal(stats.ExpertsMoved * Floats * sizeof(float), stats.BytesMoved);
        var report = PlacementMetrics.Evaluate(bridge.Placement, LoadMatrix.FromRows([[200, 80, 10, 10, 10, 10, 10, 10], [200, 80, 10, 10, 10, 10, 10, 10]]));
        Assert.True(report.ImbalanceMean < 1.2, $"imbalance after balancing is {report.ImbalanceMean}");
        PlacementValidator.EnsureValid(bridge.Placement);
    }

    [Fact]
    public void StepBoundary_NothingStaged_ReturnsZeroAndKeepsEpoch()
    {
        using var bridge = Start(Config(), new TrivialPolicy());

        var n = bridge.StepBoundary(new int[Layers], out var epoch);

        Assert.Equal(0, n);
        Assert.Equal(0, epoch);
    }

    [Fact]
    public void RequestRebalance_UnregisteredTensors_FailsAndKeepsTheMapping()
    {
        using var bridge = Start(Config(), new GreedyTestPolicy());
        var before = bridge.Placement;
        bridge.RecordStep(SkewedStep(bridge));

        var outcome = bridge.RequestRebalance(TimeSpan.FromSeconds(20));

        Assert.Equal(RebalanceOutcome.Failed, outcome);
        Assert.Equal(1, bridge.Stats.RelocationFailures);
        Assert.Equal(0, bridge.StepBoundary(new int[Layers], out _));
        Assert.Equal(before, bridge.Placement);
        Assert.Contains("expertbridge_failures_total{reason=\"relocation_error\"} 1", bridge.Metrics.ExportText(), StringComparison.Ordinal);
    }

    [Fact]
    public void RequestRebalance_PolicyOptionsKeyThePolicyNeverReads_WarnedOnceNamingTheKey()
    {
        // "dpeth" is a misspelt "depth": without the warning the policy would run silently with its default depth.
        using var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var policy = new DelegatePolicy("reads-depth", c => PolicyDecision.Keep($"depth {c.Options.GetInt("depth", 1)}"));
        using var bridge = Bridge.Create(Config(", \"policyOptions\": { \"depth\": 2, \"dpeth\": 3 }"), new BridgeServices
        {
            LoggerFactory = factory,
            PolicySourceFactory = c => PolicySources.ForPolicy(policy, c, factory),
        });

        Assert.Equal(RebalanceOutcome.Kept, bridge.RequestRebalance(TimeSpan.FromSeconds(20)));
        Assert.Equal(RebalanceOutcome.Kept, bridge.RequestRebalance(TimeSpan.FromSeconds(20)));

        var warning = Assert.Single(logs.Messages, m => m.Level == LogLevel.Warning);
        Assert.Contains("'dpeth' was not read by policy 'reads-depth'", warning.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Messages, m => m.Text.Contains("'depth'", StringComparison.Ordinal));
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider, ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<(LogLevel Level, string Text)> _messages = new();

        public IReadOnlyCollection<(LogLevel Level, string Text)> Messages => [.. _messages];

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _messages.Enqueue((logLevel, formatter(state, exception)));

        public void Dispose()
        {
        }
    }

    [Fact]
    public void RequestRebalance_PolicyThrows_KeepsTheMappingAndCountsTheFailure()
    {
        using var bridge = Start(Config(), new DelegatePolicy("broken", _ => throw new InvalidOperationException("boom")));

        var outcome = bridge.RequestRebalance(TimeSpan.FromSeconds(20));

        Assert.Equal(RebalanceOutcome.Failed, outcome);
        Assert.Equal(1, bridge.Stats.PolicyFailures);
        Assert.Contains("reason=\"policy_error\"", bridge.Metrics.ExportText(), StringComparison.Ordinal);
    }

    [Fact]
    public void RequestRebalance_PolicyTooSlow_TimesOutAndKeepsTheMapping()
    {
        using var release = new ManualResetEventSlim();
        var config = Config(", \"policyTimeoutMs\": 100");
        using var bridge = Start(config, new DelegatePolicy("slow", c =>
        {
            release.Wait(TimeSpan.FromSeconds(10));
            return PolicyDecision.Keep();
        }));

        var outcome = bridge.RequestRebalance(TimeSpan.FromSeconds(20));
        release.Set();

        Assert.Equal(RebalanceOutcome.Failed, outcome);
        Assert.Equal(1, bridge.Stats.PolicyFailures);
        Assert.Contains("reason=\"policy_timeout\"", bridge.Metrics.ExportText(), StringComparison.Ordinal);
    }

    [Fact]
    public void RequestRebalance_InvalidPlacement_IsRejectedNamingTheRule()
    {
        using var bridge = Start(Config(), new DelegatePolicy("drops-expert-7", c =>
        {
            var p = c.Current.CopyPhy2Log();
            for (var i = 0; i < p.Length; i++)
            {
                p[i] = p[i] == 7 ? 6 : p[i];
            }

            return PolicyDecision.Apply(new Placement(c.Topology, c.LogicalExperts, p));
        }));
        FillAndRegister(bridge);

        var outcome = bridge.RequestRebalance(TimeSpan.FromSeconds(20));

        Assert.Equal(RebalanceOutcome.Failed, outcome);
        Assert.Equal(0, bridge.StepBoundary(new int[Layers], out _));
        Assert.Contains("reason=\"invalid_placement\"", bridge.Metrics.ExportText(), StringComparison.Ordinal);
    }

    [Fact]
    public void StepBoundary_StagedLayers_CommitsAtMostTheBudgetPerBoundary()
    {
        using var bridge = Start(Config().WithBudget(new MoveBudgetConfig { MaxLayersPerBoundary = 1 }), new GreedyTestPolicy());
        FillAndRegister(bridge);
        for (var i = 0; i < 30; i++)
        {
            bridge.RecordStep(SkewedStep(bridge));
        }

        Assert.Equal(RebalanceOutcome.Staged, bridge.RequestRebalance(TimeSpan.FromSeconds(20)));
        var changed = new int[Layers];
        var first = bridge.StepBoundary(changed, out var epoch1);
        var firstLayer = changed[0];
        var second = bridge.StepBoundary(changed, out var epoch2);

        Assert.Equal(1, first);
        Assert.Equal(1, second);
        Assert.NotEqual(firstLayer, changed[0]);
        Assert.Equal(1, epoch1);
        Assert.Equal(2, epoch2);
        Assert.Equal(0, Mismatches(bridge));
    }

    [Fact]
    public void ChooseLayers_ExpertBudget_LeavesLayersThatDoNotFit()
    {
        using var bridge = Start(Config().WithBudget(new MoveBudgetConfig { MaxExpertsPerRebalance = 12, MaxLayersPerBoundary = 0 }), new GreedyTestPolicy());
        FillAndRegister(bridge);
        for (var i = 0; i < 30; i++)
        {
            bridge.RecordStep(SkewedStep(bridge));
        }

        Assert.Equal(RebalanceOutcome.Staged, bridge.RequestRebalance(TimeSpan.FromSeconds(20)));
        var committed = bridge.StepBoundary(new int[Layers], out _);

        Assert.Equal(1, committed); // one layer's moves fit in 12, both layers' do not
        Assert.True(bridge.Stats.ExpertsMoved <= 12);
    }

    [Fact]
    public void RecordStep_EpochTooOld_IsRefusedNamingTheRule()
    {
        using var bridge = Start(Config(), new TrivialPolicy());

        var ex = Assert.Throws<InputException>(() => bridge.RecordStep(new int[Layers * Slots], epoch: 5));

        Assert.Equal(Bridge.RuleEpoch, ex.Rule);
    }

    [Fact]
    public void RecordStep_WrongLengthOrNegative_IsRefusedNamingLayerAndSlot()
    {
        using var bridge = Start(Config(), new TrivialPolicy());
        var tokens = new int[Layers * Slots];
        tokens[Slots + 4] = -2;

        Assert.Contains("expected 2 x 12 = 24 counts", Assert.Throws<InputException>(() => bridge.RecordStep(new int[5])).Message, StringComparison.Ordinal);
        Assert.Equal("step loads: layer 1 slot 4", Assert.Throws<InputException>(() => bridge.RecordStep(tokens)).Subject);
    }

    [Fact]
    public void RegisterTensor_WrongDevice_IsRefused()
    {
        using var bridge = Start(Config(), new TrivialPolicy());

        var ex = Assert.Throws<InputException>(() => bridge.RegisterTensor(new TensorRegistration(0, 5, 0, 0, 64, 16)));

        Assert.Contains("slot 5 is on device 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CopyMapping_AllLayers_MatchesThePlacement()
    {
        using var bridge = Start(Config(), new TrivialPolicy());
        var phy2log = new int[Layers * Slots];
        var log2phy = new int[Layers * Experts * bridge.MaxReplicas];
        var counts = new int[Layers * Experts];

        var epoch = bridge.CopyMapping(-1, phy2log, log2phy, counts);

        Assert.Equal(0, epoch);
        Assert.Equal(bridge.Placement.Phy2Log.ToArray(), phy2log);
        Assert.Equal([0, 8, -1, -1, -1], log2phy[..5]);
        Assert.Equal(2, counts[0]);
        Assert.Equal(1, counts[7]);
        Assert.Throws<InputException>(() => bridge.CopyMapping(0, new int[3], default, default));
    }

    [Fact]
    public void Disposed_EveryCall_ThrowsObjectDisposed()
    {
        var bridge = Start(Config(), new TrivialPolicy());
        bridge.Dispose();

        Assert.Throws<ObjectDisposedException>(() => bridge.RecordStep(new int[Layers * Slots]));
        Assert.Throws<ObjectDisposedException>(() => bridge.StepBoundary(default, out _));
        Assert.Throws<ObjectDisposedException>(() => bridge.RequestRebalance(TimeSpan.Zero));
        bridge.Dispose(); // twice is fine
    }

    [Fact]
    public async Task Metrics_Port_ServesPrometheusTextOnLoopback()
    {
        var port = FreePort();
        using var bridge = Start(Config($", \"metrics\": {{ \"port\": {port} }}"), new GreedyTestPolicy());
        FillAndRegister(bridge);
        Serve(bridge, 30);
        Assert.Equal(RebalanceOutcome.Staged, bridge.RequestRebalance(TimeSpan.FromSeconds(20)));
        Serve(bridge, 15);
        WaitFor(() => bridge.Stats.PendingLayers == 0, () => Serve(bridge, 1));
        bridge.ReloadPolicy();
        Serve(bridge, 10);

        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"), TestContext.Current.CancellationToken);

        Assert.Contains("expertbridge_rebalances_total 1", text, StringComparison.Ordinal);
        Assert.Contains("expertbridge_policy_reloads_total 0", text, StringComparison.Ordinal); // nothing to reload in a built-in
        Assert.Contains("expertbridge_layer_imbalance{layer=\"1\"}", text, StringComparison.Ordinal);
        Assert.Contains("expertbridge_balancedness", text, StringComparison.Ordinal);
        Assert.Contains("expertbridge_experts_moved_total", text, StringComparison.Ordinal);
        Assert.Contains("expertbridge_bytes_moved_total", text, StringComparison.Ordinal);
        Assert.Contains("expertbridge_policy_seconds_count 1", text, StringComparison.Ordinal);
        Assert.Equal(new Uri($"http://127.0.0.1:{port}/metrics"), bridge.Metrics.Endpoint);
    }

    [Fact]
    public void Create_MetricsPortInUse_NamesMetricsPort()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;

        var ex = Assert.Throws<InputException>(() => Start(Config($", \"metrics\": {{ \"port\": {port} }}"), new TrivialPolicy()));

        Assert.Equal("metrics.port", ex.Subject);
    }

    [Fact]
    public void Create_ScriptThatDoesNotCompile_NamesFileLineAndColumn()
    {
        var dir = Directory.CreateTempSubdirectory("eb-script-");
        try
        {
            var script = Path.Combine(dir.FullName, "broken.csx");
            File.WriteAllText(script, "return new NoSuchPolicy();\n");

            var ex = Assert.Throws<InputException>(() => Bridge.Create(Config($", \"policy\": \"{script}\"")));

            Assert.StartsWith(script + ":1:", ex.Subject, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Loop_ScriptRewritten_HotReloadsAndKeepsServing()
    {
        var dir = Directory.CreateTempSubdirectory("eb-script-");
        try
        {
            var script = Path.Combine(dir.FullName, "policy.csx");
            File.WriteAllText(script, "// @option window = 20\nreturn new EplbPolicy();\n");
            using var bridge = Bridge.Create(Config($", \"policy\": \"{script}\""));
            FillAndRegister(bridge);
            Serve(bridge, 30);

            File.WriteAllText(script + ".tmp", "// @option window = 30\nreturn new EplbPolicy();\n");
            File.Move(script + ".tmp", script, overwrite: true);
            WaitFor(() => bridge.Stats.PolicyReloads == 1, () => Serve(bridge, 1));
            File.WriteAllText(script + ".tmp", "return new EplbPolicy(;\n");
            File.Move(script + ".tmp", script, overwrite: true);
            var failure = Assert.Throws<InputException>(bridge.ReloadPolicy);
            var outcome = bridge.RequestRebalance(TimeSpan.FromSeconds(20));

            Assert.StartsWith(script + ":1:", failure.Subject, StringComparison.Ordinal);
            Assert.NotEqual(RebalanceOutcome.Failed, outcome); // the reloaded version keeps deciding
            Assert.NotEqual(RebalanceOutcome.Pending, outcome);
            Assert.Equal(1, bridge.Stats.PolicyReloads);
            Assert.Equal(0, bridge.Stats.PolicyFailures);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Create_UnknownBuiltInPolicy_ListsTheBuiltIns()
    {
        var ex = Assert.Throws<InputException>(() => Bridge.Create(Config(", \"policy\": \"nosuch\"")));

        Assert.Contains("trivial", ex.Message, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

internal static class ConfigExtensions
{
    public static HostConfig WithBudget(this HostConfig config, MoveBudgetConfig budget) => config with { MoveBudget = budget };
}
