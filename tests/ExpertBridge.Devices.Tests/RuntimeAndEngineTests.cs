using System.Text.Json;
using ExpertBridge.Core;
using ExpertBridge.Devices.Conformance;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices.Tests;

public class RuntimeAndEngineTests
{
    private static DeviceRuntime Host() => DeviceRuntime.Open(new DeviceRuntimeOptions { HostDevices = 2, HostDeviceMemory = 64L << 20 });

    [Fact]
    public void Buffer_NotDisposed_IsReleasedOnOrdinaryThreadAfterFinalization()
    {
        using var runtime = Host();
        var before = runtime.GetMemoryInfo(0).Used;
        Leak(runtime);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(1, runtime.LeakedResources);
        Assert.Equal(before, runtime.GetMemoryInfo(0).Used); // drained by this call, not by the finalizer

        static void Leak(DeviceRuntime r) => r.Allocate(0, 1 << 20);
    }

    [Fact]
    public void Buffer_DisposedAfterRuntime_DoesNothing()
    {
        var runtime = Host();
        var buffer = runtime.Allocate(0, 4096);
        runtime.Dispose();
        buffer.Dispose();
        Assert.True(buffer.IsDisposed);
    }

    [Fact]
    public void Registry_TensorSizesDifferWithinLayer_NamesLayerSlotAndRule()
    {
        var registry = new ExpertRegistry(Topology.Create(2, 2), layers: 1);
        registry.Register(0, 0, [new DeviceMemory(0, 0x1000, 64), new DeviceMemory(0, 0x2000, 32)]);
        var ex = Assert.Throws<InputException>(() => registry.Register(0, 1, [new DeviceMemory(0, 0x3000, 64)]));
        Assert.Equal("layer 0 slot 1", ex.Subject);
        Assert.Contains("same sizes", ex.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Engine_CrossProcessWithoutTransport_FailsLayerAndKeepsMapping()
    {
        using var runtime = Host();
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        var registry = new ExpertRegistry(topology, layers: 1);
        var buffers = new List<DeviceBuffer>();
        for (var s = 0; s < 2; s++)
        {
            var b = runtime.Allocate(0, 256);
            buffers.Add(b);
            registry.Register(0, s, [b.Memory]); // this process holds device 0 (slots 0 and 1)
        }

        var from = Placement.FromRows(topology, 4, [[0, 1, 2, 3]]);
        var to = Placement.FromRows(topology, 4, [[2, 1, 0, 3]]);
        using var engine = new RelocationEngine(runtime, registry, from, new RelocationOptions
        {
            Process = 0,
            Locations = [new DeviceLocation(0, 0), new DeviceLocation(1, 0)],
        });
        var result = await engine.ExecuteAsync(engine.Plan(to), cancellationToken: TestContext.Current.CancellationToken);
        var layer = Assert.Single(result.Layers);
        Assert.Equal(LayerStatus.Failed, layer.Status);
        Assert.Equal(DeviceErrorKind.Unsupported, layer.ErrorKind);
        Assert.Equal(from, engine.InForce);
        Assert.Empty(engine.StagedLayers);
        buffers.ForEach(b => b.Dispose());
        Assert.Equal(0, runtime.GetMemoryInfo(0).Used);
    }

    [Fact]
    public async Task Engine_AcknowledgeBeforeCopies_Throws()
    {
        using var runtime = Host();
        var topology = Topology.Create(devices: 1, slotsPerDevice: 2);
        var registry = new ExpertRegistry(topology, layers: 1);
        using var a = runtime.Allocate(0, 128);
        using var b = runtime.Allocate(0, 128);
        registry.Register(0, 0, [a.Memory]);
        registry.Register(0, 1, [b.Memory]);
        var from = Placement.FromRows(topology, 2, [[0, 1]]);
        using var engine = new RelocationEngine(runtime, registry, from);
        var result = await engine.ExecuteAsync(engine.Plan(Placement.FromRows(topology, 2, [[1, 0]])), cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(result.AllStaged);
        var commit = engine.PrepareCommit(0);
        Assert.True(commit.RequiresCopies);
        Assert.Throws<InvalidOperationException>(() => engine.Acknowledge(commit));
        Assert.Equal(0, engine.Epoch);
        engine.Abort(0);
        Assert.Empty(engine.StagedLayers);
    }

    [Fact]
    public void ConformanceCommand_UnknownBackend_ThrowsInputException()
    {
        var ex = Assert.Throws<InputException>(() => ConformanceCommand.Run(["--backend", "tpu"], TextWriter.Null));
        Assert.Equal("--backend", ex.Subject);
    }

    [Fact]
    public void ConformanceCommand_Host_WritesTableAndJson()
    {
        var json = Path.Combine(Path.GetTempPath(), $"eb-conf-{Guid.NewGuid():N}.json");
        var output = new StringWriter();
        var code = ConformanceCommand.Run(["--backend", "host", "--only", "enumerate,device-bandwidth", "--bytes", "65536", "--json", json], output);
        Assert.Equal(0, code);
        Assert.Contains("d2d_GBps", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("\"passed\": 2", File.ReadAllText(json), StringComparison.Ordinal);
        File.Delete(json);
    }

    [Fact]
    public void ConformanceCommand_Json_HasTotalsAndOneEntryPerCheckWithResultAndFigures()
    {
        var json = Path.Combine(Path.GetTempPath(), $"eb-conf-{Guid.NewGuid():N}.json");
        var output = new StringWriter();
        var code = ConformanceCommand.Run(["--backend", "host", "--only", "device-bandwidth,ipc-export-import", "--bytes", "65536", "--json", json], output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        File.Delete(json);
        var root = doc.RootElement;

        Assert.Equal(0, code); // a skip is not a failure
        Assert.Equal("host", root.GetProperty("backend").GetString());
        Assert.Equal(1, root.GetProperty("passed").GetInt32());
        Assert.Equal(0, root.GetProperty("failed").GetInt32());
        Assert.Equal(1, root.GetProperty("skipped").GetInt32());
        Assert.Equal(2, root.GetProperty("devices").GetArrayLength());
        var tests = root.GetProperty("tests").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.Equal("pass", tests["device-bandwidth"].GetProperty("result").GetString());
        Assert.True(tests["device-bandwidth"].GetProperty("figures").GetProperty("d2d_GBps").GetDouble() > 0);
        Assert.Equal("skip", tests["ipc-export-import"].GetProperty("result").GetString());
        Assert.Contains("IPC", tests["ipc-export-import"].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("conformance: 1 passed, 0 failed, 1 skipped", output.ToString(), StringComparison.Ordinal);
    }
}
