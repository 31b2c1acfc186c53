using ExpertBridge.Core;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices.Tests;

/// <summary>
/// The relocation engine across processes, on CI: two host runtimes of this test process play two processes with one
/// device each (global devices 0 and 1), joined by <see cref="LoopbackTransport"/>. Every layer moves an expert each
/// way between the processes (into a routed slot, through staging) and two within each device.
/// </summary>
public sealed class CrossProcessRelocationTests
{
    private static readonly Topology Pair = Topology.Create(devices: 2, slotsPerDevice: 3);
    private static readonly DeviceLocation[] Where = [new(0, 0), new(1, 0)];

    // slot:               0  1   2  3  4   5      (slots 0-2 on device 0, 3-5 on device 1)
    private static readonly int[] From = [0, 1, -1, 2, 3, -1];
    private static readonly int[] To = [2, 1, 0, 3, 0, 2];

    [Fact]
    public async Task Execute_ExpertsCrossProcesses_BothSidesStageCommitAndHoldExactBytes()
    {
        var wire = new LoopbackWire();
        using var p0 = new FakeProcess(0, layers: 5, wire);
        using var p1 = new FakeProcess(1, layers: 5, wire);
        var plan0 = p0.Engine.Plan(p0.Next);
        var plan1 = p1.Engine.Plan(p1.Next);
        Assert.Equal(10, plan0.Count(TransferKind.CrossProcess)); // slot 0 (from device 1) and slot 4 (from device 0) per layer

        var run0 = Task.Run(() => p0.Engine.ExecuteAsync(plan0));
        var run1 = Task.Run(() => p1.Engine.ExecuteAsync(plan1));
        var results = await Task.WhenAll(run0, run1);

        Assert.All(results, r => Assert.True(r.AllStaged, string.Join("; ", r.Layers.Select(l => l.Error))));
        foreach (var p in new[] { p0, p1 })
        {
            foreach (var layer in p.Engine.StagedLayers)
            {
                await p.Engine.CommitAsync(layer, TestContext.Current.CancellationToken);
            }

            Assert.Equal(p.Next, p.Engine.InForce);
            p.RequireContents(p.Next);
            Assert.Equal(0, p.Engine.ReleaseFinished());
        }
    }

    [Fact]
    public async Task Execute_LayersInFlightTogether_IssueGroupsInLayerOrder()
    {
        var wire = new LoopbackWire();
        using var p0 = new FakeProcess(0, layers: 6, wire, new RelocationOptions { MaxLayersInFlight = 4 });
        using var p1 = new FakeProcess(1, layers: 6, wire, new RelocationOptions { MaxLayersInFlight = 4 });
        var results = await Task.WhenAll(
            Task.Run(() => p0.Engine.ExecuteAsync(p0.Engine.Plan(p0.Next))),
            Task.Run(() => p1.Engine.ExecuteAsync(p1.Engine.Plan(p1.Next))));

        Assert.All(results, r => Assert.True(r.AllStaged));
        foreach (var p in new[] { p0, p1 })
        {
            // Tensor sizes grow with the layer: a group issued out of layer order would show a smaller first size.
            var firstSizes = p.Transport.Groups.Select(g => g[0]).ToList();
            Assert.Equal(6, firstSizes.Count);
            Assert.Equal(firstSizes.Order(), firstSizes);
            Assert.Equal(firstSizes.Count, firstSizes.Distinct().Count());
        }
    }

    [Fact]
    public async Task Execute_ReceiveStalls_TimesOutAbortsTransportAndKeepsMapping()
    {
        var wire = new LoopbackWire();
        var options = new RelocationOptions { TransferTimeout = TimeSpan.FromMilliseconds(300) };
        using var p0 = new FakeProcess(0, layers: 1, wire, options);
        using var p1 = new FakeProcess(1, layers: 1, wire, options);
        p1.Runtime.Faults!.StallCopy(1); // process 1's first copy is the receive of slot 4 (collectives issue first)
        var results = await Task.WhenAll(
            Task.Run(() => p0.Engine.ExecuteAsync(p0.Engine.Plan(p0.Next))),
            Task.Run(() => p1.Engine.ExecuteAsync(p1.Engine.Plan(p1.Next))));

        var layer = Assert.Single(results[1].Layers);
        Assert.Equal(LayerStatus.Failed, layer.Status);
        Assert.Equal(DeviceErrorKind.Timeout, layer.ErrorKind);
        Assert.True(p1.Transport.IsAborted);
        Assert.Contains("did not finish", p1.Transport.AbortReason, StringComparison.Ordinal);
        Assert.Equal(p1.Initial, p1.Engine.InForce);
        Assert.Empty(p1.Engine.StagedLayers);
        await WaitReleased(p1.Engine);
        p1.RequireContents(p1.Initial);
        Assert.True(p1.LiveAllocationsBack());
    }

    [Fact]
    public async Task Execute_TransportReportsAsyncError_FailsLayerAndLaterUseReportsAbort()
    {
        var wire = new LoopbackWire();
        using var p0 = new FakeProcess(0, layers: 1, wire);
        using var p1 = new FakeProcess(1, layers: 1, wire);
        p0.Transport.AsyncError = new DeviceException(DeviceErrorKind.DeviceFault, "loopback", "ncclCommGetAsyncError", 6, "ncclRemoteError", "remote process exited");
        var results = await Task.WhenAll(
            Task.Run(() => p0.Engine.ExecuteAsync(p0.Engine.Plan(p0.Next))),
            Task.Run(() => p1.Engine.ExecuteAsync(p1.Engine.Plan(p1.Next))));

        var failed = Assert.Single(results[0].Layers);
        Assert.Equal(LayerStatus.Failed, failed.Status);
        Assert.Equal(DeviceErrorKind.DeviceFault, failed.ErrorKind);
        Assert.Contains("remote process exited", p0.Transport.AbortReason, StringComparison.Ordinal);
        Assert.Equal(p0.Initial, p0.Engine.InForce);

        var again = await p0.Engine.ExecuteAsync(p0.Engine.Plan(p0.Next), cancellationToken: TestContext.Current.CancellationToken);
        var layer = Assert.Single(again.Layers);
        Assert.Equal(DeviceErrorKind.NotAvailable, layer.ErrorKind);
        Assert.Contains("aborted", layer.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_StagingFailsBeforeIssue_AbortsTransportSoPeersCannotMispair()
    {
        using var p0 = new FakeProcess(0, layers: 2, new LoopbackWire(), new RelocationOptions { MaxLayersInFlight = 1 });
        p0.Runtime.Faults!.FailAllocation(1); // layer 0's first staging buffer
        var result = await p0.Engine.ExecuteAsync(p0.Engine.Plan(p0.Next), cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(DeviceErrorKind.OutOfMemory, result.Layers[0].ErrorKind);
        Assert.Equal(DeviceErrorKind.NotAvailable, result.Layers[1].ErrorKind); // its turn came after the abort
        Assert.True(p0.Transport.IsAborted);
        Assert.Contains("layer 0: this process did not issue", p0.Transport.AbortReason, StringComparison.Ordinal);
        Assert.Empty(p0.Transport.Groups);
        Assert.Equal(p0.Initial, p0.Engine.InForce);
        await WaitReleased(p0.Engine);
        Assert.True(p0.LiveAllocationsBack());
    }

    [Fact]
    public void Engine_TransportRanksDisagreeWithLocations_ThrowsInputException()
    {
        using var runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { HostDevices = 1, HostDeviceMemory = 1 << 20 });
        using var transport = new LoopbackTransport(runtime, ranks: 2, localRanks: [1], new LoopbackWire()); // device 0 is rank 1
        var registry = new ExpertRegistry(Pair, layers: 1);
        var ex = Assert.Throws<InputException>(() => new RelocationEngine(runtime, registry, new Placement(Pair, 4, From),
            new RelocationOptions { Process = 0, Locations = Where, Transport = transport }));
        Assert.Equal("relocation transport", ex.Subject);
        Assert.Contains("holds rank 1", ex.Message, StringComparison.Ordinal);
    }

    private static async Task WaitReleased(RelocationEngine engine)
    {
        for (var i = 0; i < 500 && engine.ReleaseFinished() > 0; i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.Equal(0, engine.ReleaseFinished());
    }

    /// <summary>One "process": a host runtime with global device <c>rank</c> as its device 0, its slots registered
    /// with experts of two tensors whose sizes grow with the layer, a loopback transport, an engine.</summary>
    private sealed class FakeProcess : IDisposable
    {
        private readonly List<DeviceBuffer> _buffers = [];
        private readonly int _rank;
        private readonly long _baseline;

        public FakeProcess(int rank, int layers, LoopbackWire wire, RelocationOptions? options = null)
        {
            _rank = rank;
            Runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { HostDevices = 1, HostDeviceMemory = 16L << 20 });
            Transport = new LoopbackTransport(Runtime, ranks: 2, localRanks: [rank], wire);
            Initial = Placement.FromRows(Pair, 4, [.. Enumerable.Repeat(From, layers)]);
            Next = Placement.FromRows(Pair, 4, [.. Enumerable.Repeat(To, layers)]);
            Registry = new ExpertRegistry(Pair, layers);
            for (var l = 0; l < layers; l++)
            {
                for (var s = 0; s < Pair.Slots; s++)
                {
                    if (Pair.DeviceOf(s) != rank)
                    {
                        continue;
                    }

                    var tensors = Sizes(l).Select((size, i) =>
                    {
                        var b = Runtime.Allocate(0, size);
                        _buffers.Add(b);
                        Runtime.Upload(b.Memory, Initial[l, s] < 0 ? new byte[size] : Bytes(l, Initial[l, s], i));
                        return b.Memory;
                    }).ToArray();
                    Registry.Register(l, s, tensors);
                }
            }

            Engine = new RelocationEngine(Runtime, Registry, Initial, new RelocationOptions
            {
                Process = rank,
                Locations = Where,
                Transport = Transport,
                MaxLayersInFlight = options?.MaxLayersInFlight ?? 2,
                TransferTimeout = options?.TransferTimeout ?? TimeSpan.FromSeconds(30),
            });
            _baseline = Runtime.Faults!.LiveAllocations!.Value;
        }

        public DeviceRuntime Runtime { get; }

        public LoopbackTransport Transport { get; }

        public ExpertRegistry Registry { get; }

        public RelocationEngine Engine { get; }

        public Placement Initial { get; }

        public Placement Next { get; }

        public bool LiveAllocationsBack() => Runtime.Faults!.LiveAllocations <= _baseline;

        /// <summary>Every routed slot of this process holds its expert's bytes.</summary>
        public void RequireContents(Placement placement)
        {
            for (var l = 0; l < placement.Layers; l++)
            {
                for (var s = 0; s < placement.Slots; s++)
                {
                    if (Pair.DeviceOf(s) != _rank || placement[l, s] < 0)
                    {
                        continue;
                    }

                    var tensors = Registry.Get(l, s)!;
                    for (var i = 0; i < tensors.Count; i++)
                    {
                        var back = new byte[tensors[i].Length];
                        Runtime.Download(tensors[i], back);
                        Assert.True(back.AsSpan().SequenceEqual(Bytes(l, placement[l, s], i)), $"process {_rank}: layer {l} slot {s} tensor {i} does not hold expert {placement[l, s]}");
                    }
                }
            }
        }

        public void Dispose()
        {
            Engine.Dispose();
            Transport.Dispose();
            foreach (var b in _buffers)
            {
                b.Dispose();
            }

            Runtime.Dispose();
        }

        private static long[] Sizes(int layer) => [96 + (8 * layer), 40 + (8 * layer)];

        private static byte[] Bytes(int layer, int expert, int tensor)
        {
            var data = new byte[Sizes(layer)[tensor]];
            new Random((layer * 1000) + (expert * 10) + tensor).NextBytes(data);
            return data;
        }
    }
}
