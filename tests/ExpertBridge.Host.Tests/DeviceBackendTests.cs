using ExpertBridge.Core;
using ExpertBridge.Devices;
using ExpertBridge.Host;
using Microsoft.Extensions.Logging.Abstractions;

namespace ExpertBridge.Host.Tests;

/// <summary>
/// The bridge with backend cuda over the CUDA emulator (libeb_cuda_emulator.so, built by build.ps1 into
/// artifacts/native): the tensors are device memory allocated through the emulated driver in this process, as a server
/// allocates them through its CUDA runtime; the bridge moves them with the device layer's relocation engine.
/// </summary>
public sealed class DeviceBackendTests : IDisposable
{
    private const int Layers = 2;
    private const int Experts = 8;
    private const int Devices = 2;
    private const int PerDevice = 6;
    private const int Slots = Devices * PerDevice;
    private static readonly int[] s_tensorBytes = [256, 96];

    private readonly DeviceRuntime? _runtime;
    private readonly string _unavailable = "";
    private readonly List<DeviceBuffer> _buffers = [];

    public DeviceBackendTests()
    {
        var options = new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda, Emulated = true };
        if (DeviceRuntime.IsAvailable(options, out var reason))
        {
            _runtime = DeviceRuntime.Open(options);
        }
        else
        {
            _unavailable = reason;
        }
    }

    public void Dispose()
    {
        foreach (var b in _buffers)
        {
            b.Dispose();
        }

        _runtime?.Dispose();
    }

    private DeviceRuntime Runtime => _runtime ?? throw new InvalidOperationException("no emulator");

    private static HostConfig Config(string deviceExtra = "") => HostConfig.Parse($$"""
        { "model": { "layers": {{Layers}}, "experts": {{Experts}} },
          "topology": { "devices": {{Devices}}, "slotsPerDevice": {{PerDevice}} },
          "backend": "cuda", "device": { "emulated": true, "verify": true, "transferTimeoutMs": 20000{{deviceExtra}} },
          "rebalance": { "imbalanceTrigger": 0, "checkEverySteps": 10, "windowSteps": 50, "warmupSteps": 0 },
          "moveBudget": { "maxLayersPerBoundary": 1 } }
        """, "device-test.json");

    /// <summary>The bytes of tensor t of expert e in layer l: a pattern only that (layer, expert, tensor) has.</summary>
    private static byte[] Pattern(int layer, int expert, int tensor) =>
        [.. Enumerable.Range(0, s_tensorBytes[tensor]).Select(i => (byte)((layer * 97) + (expert * 31) + (tensor * 7) + i))];

    private Bridge StartWithWeights(HostConfig? config = null)
    {
        if (_runtime is null)
        {
            Assert.Skip($"the CUDA emulator is not available here: {_unavailable}");
        }

        var bridge = Bridge.Create(config ?? Config(), new BridgeServices { PolicySourceFactory = c => PolicySources.ForPolicy(new GreedyTestPolicy(), c, NullLoggerFactory.Instance) });
        for (var l = 0; l < Layers; l++)
        {
            for (var s = 0; s < Slots; s++)
            {
                for (var t = 0; t < s_tensorBytes.Length; t++)
                {
                    var buffer = Runtime.Allocate(s / PerDevice, s_tensorBytes[t]);
                    _buffers.Add(buffer);
                    Runtime.Upload(buffer.Memory, Pattern(l, s % Experts, t));
                    bridge.RegisterTensor(new TensorRegistration(l, s, t, s / PerDevice, (nint)buffer.Memory.Address, s_tensorBytes[t]));
                }
            }
        }

        return bridge;
    }

    /// <summary>(layer, slot, tensor) whose device bytes are not the pattern of the expert the mapping names.</summary>
    private List<string> WrongSlots(Bridge bridge)
    {
        var phy2log = new int[Layers * Slots];
        bridge.CopyMapping(-1, phy2log, default, default);
        var wrong = new List<string>();
        for (var l = 0; l < Layers; l++)
        {
            for (var s = 0; s < Slots; s++)
            {
                for (var t = 0; t < s_tensorBytes.Length; t++)
                {
                    var buffer = _buffers[(((l * Slots) + s) * s_tensorBytes.Length) + t];
                    var bytes = new byte[s_tensorBytes[t]];
                    Runtime.Download(buffer.Memory, bytes);
                    if (!bytes.AsSpan().SequenceEqual(Pattern(l, phy2log[(l * Slots) + s], t)))
                    {
                        wrong.Add($"layer {l} slot {s} tensor {t}");
                    }
                }
            }
        }

        return wrong;
    }

    /// <summary>Expert 0 gets 20x the tokens of a cold expert, expert 1 gets 8x, split over their replicas.</summary>
    private static void RecordSkewedSteps(Bridge bridge, int steps)
    {
        var phy2log = new int[Layers * Slots];
        var replicas = new int[Layers * Experts];
        for (var i = 0; i < steps; i++)
        {
            var epoch = bridge.CopyMapping(-1, phy2log, default, replicas);
            var tokens = new int[Layers * Slots];
            for (var j = 0; j < tokens.Length; j++)
            {
                var e = phy2log[j];
                tokens[j] = (e == 0 ? 200 : e == 1 ? 80 : 10) / replicas[((j / Slots) * Experts) + e];
            }

            bridge.RecordStep(tokens, epoch);
        }
    }

    /// <summary>Calls step boundaries until nothing more is pending; returns the layers committed.</summary>
    private static List<int> CommitAll(Bridge bridge)
    {
        var committed = new List<int>();
        var changed = new int[Layers];
        for (var i = 0; i < 10 * Layers && bridge.Stats.PendingLayers > 0; i++)
        {
            var n = bridge.StepBoundary(changed, out _);
            committed.AddRange(changed[..n]);
        }

        return committed;
    }

    [Fact]
    public void Rebalance_BackendCudaEmulated_MovesDeviceWeightsAndCommitsAtBoundaries()
    {
        using var bridge = StartWithWeights();
        Assert.Empty(WrongSlots(bridge));
        RecordSkewedSteps(bridge, 30);

        var outcome = bridge.RequestRebalance(TimeSpan.FromSeconds(30));
        var before = WrongSlots(bridge); // staged only: no slot written yet, the trivial mapping still serves
        var committed = CommitAll(bridge);
        var stats = bridge.Stats;

        Assert.Equal(RebalanceOutcome.Staged, outcome);
        Assert.Empty(before);
        Assert.Equal(Layers, committed.Distinct().Count());
        Assert.Equal(Layers, stats.Epoch); // one layer per boundary
        Assert.True(stats.ExpertsMoved > 0);
        Assert.Equal(stats.ExpertsMoved * s_tensorBytes.Sum(), stats.BytesMoved);
        Assert.Empty(WrongSlots(bridge));
        Assert.True(PlacementMetrics.Evaluate(bridge.Placement, LoadMatrix.FromRows([[200, 80, 10, 10, 10, 10, 10, 10], [200, 80, 10, 10, 10, 10, 10, 10]])).ImbalanceMean < 1.2);
    }

    [Fact]
    public void Rebalance_BandwidthCapsConfigured_PacesTheMoveAndStillLandsEveryExpert()
    {
        const double CapGBps = 0.000002; // 2 kB/s per device and budget: an expert (352 bytes) every 176 ms
        using var bridge = StartWithWeights(Config(", \"withinDeviceCapGBps\": 0.000002, \"betweenDevicesCapGBps\": 0.000002"));
        RecordSkewedSteps(bridge, 30);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var outcome = bridge.RequestRebalance(TimeSpan.FromSeconds(30));
        var took = clock.Elapsed;
        CommitAll(bridge);
        var stats = bridge.Stats;

        Assert.Equal(RebalanceOutcome.Staged, outcome);
        Assert.True(stats.BytesMoved > 0);
        // Every byte is charged to at least one of the 2 devices x 2 budgets; one expert may go ahead within the burst.
        var least = TimeSpan.FromSeconds(((stats.BytesMoved / 4.0) - s_tensorBytes.Sum()) / (CapGBps * 1e9)) - TimeSpan.FromMilliseconds(5);
        Assert.True(took >= least, $"{stats.BytesMoved} bytes staged in {took.TotalMilliseconds:0} ms; the caps allow no less than {least.TotalMilliseconds:0} ms");
        Assert.Empty(WrongSlots(bridge));
    }

    [Fact]
    public void Rebalance_CopyFaultInjected_AbortsTheLayerAndTheOldMappingKeepsServing()
    {
        using var bridge = StartWithWeights();
        RecordSkewedSteps(bridge, 30);
        var mappingBefore = bridge.Placement;

        Runtime.Faults!.FailCopy(1, -1); // every device copy from now on fails (after writing half its bytes)
        RebalanceOutcome failed;
        try
        {
            failed = bridge.RequestRebalance(TimeSpan.FromSeconds(30));
        }
        finally
        {
            Runtime.Faults.Reset();
        }

        var afterFault = bridge.Stats;
        var wrongAfterFault = WrongSlots(bridge);
        RecordSkewedSteps(bridge, 5); // the old mapping keeps serving
        var retried = bridge.RequestRebalance(TimeSpan.FromSeconds(30));
        CommitAll(bridge);

        Assert.Equal(RebalanceOutcome.Failed, failed);
        Assert.Equal(1, afterFault.RelocationFailures);
        Assert.Equal(0, afterFault.Epoch);
        Assert.Equal(0, afterFault.PendingLayers);
        Assert.Contains("reason=\"relocation_error\"", bridge.Metrics.ExportText(), StringComparison.Ordinal);
        Assert.Empty(wrongAfterFault);
        Assert.Equal(RebalanceOutcome.Staged, retried);
        Assert.NotEqual(mappingBefore, bridge.Placement);
        Assert.Empty(WrongSlots(bridge));
    }

    [Fact]
    public void Create_MoreDevicesThanTheRuntimeHas_NamesTopologyDevices()
    {
        if (_runtime is null)
        {
            Assert.Skip($"the CUDA emulator is not available here: {_unavailable}");
        }

        var config = HostConfig.Parse("""
            { "model": { "layers": 1, "experts": 8 }, "topology": { "devices": 64, "slotsPerDevice": 1 },
              "backend": "cuda", "device": { "emulated": true } }
            """, "many.json");

        var ex = Assert.Throws<InputException>(() => Bridge.Create(config, new BridgeServices { PolicySourceFactory = c => PolicySources.ForPolicy(new GreedyTestPolicy(), c, NullLoggerFactory.Instance) }));

        Assert.Contains("many.json: topology.devices", ex.Message, StringComparison.Ordinal);
    }
}
