using System.Diagnostics;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.GpuBench;

/// <summary>
/// Relocation within one process beside a plain driver copy of the same bytes on the same card: every expert of a
/// <see cref="Deployment"/> moves A to B (cold: first use of the engine's streams) and back B to A (warm, the figure
/// compared), then the same (destination, source) pairs are copied with cuMemcpyDtoDAsync / cuMemcpyPeerAsync on one
/// stream of the destination device. Rates count the bytes moved (a copy within a device reads and writes each byte,
/// so its HBM traffic is twice the rate).
/// </summary>
internal static class MoveBench
{
    public const double Target = 0.9;

    public static Row Run(DeviceRuntime runtime, string name, int devices, int layers, int experts, long bytes, long? cap)
    {
        using var deployment = new Deployment(runtime, devices, layers, experts, bytes);
        using var engine = new RelocationEngine(runtime, deployment.Registry, deployment.A, new RelocationOptions
        {
            MaxInFlightPerDevice = 16,
            MaxLayersInFlight = 4,
            TransferTimeout = TimeSpan.FromMinutes(5),
            WithinDeviceBytesPerSecond = cap,
            BetweenDevicesBytesPerSecond = cap,
        });
        var (cold, coldStaged) = Move(engine, deployment.B);
        var wrongAfterFirst = deployment.CountWrong(deployment.B);
        var (warm, warmStaged) = Move(engine, deployment.A);
        var wrong = wrongAfterFirst + deployment.CountWrong(deployment.A);

        // The plain driver copy of the same bytes: the same (destination, source) pairs, one stream on the destination.
        var plan = engine.Plan(deployment.B);
        using var stream = runtime.CreateStream(devices == 1 ? 0 : 1);
        using var start = runtime.CreateEvent(stream.Device);
        using var end = runtime.CreateEvent(stream.Device);
        stream.Record(start);
        foreach (var t in plan.Layers.SelectMany(l => l.Transfers))
        {
            stream.EnqueueCopy(deployment.Registry.Get(t.Layer, t.Slot)![0], deployment.Registry.Get(t.Layer, t.SourceSlot)![0]);
        }

        stream.Record(end);
        end.Synchronize();
        var plainSeconds = DeviceEvent.Elapsed(start, end).TotalSeconds;
        var total = (double)plan.TotalBytes;
        var ratio = plainSeconds / warm.TotalSeconds;
        var row = new Row
        {
            ["name"] = name,
            ["layers"] = layers,
            ["experts_per_layer"] = experts,
            ["expert_bytes"] = bytes,
            ["cap_GBps"] = (cap ?? 0) / 1e9,
            ["bytes"] = plan.TotalBytes,
            ["all_staged"] = coldStaged && warmStaged,
            ["wrong_experts"] = wrong,
            ["relocation_GBps"] = total / warm.TotalSeconds / 1e9,
            ["relocation_cold_GBps"] = total / cold.TotalSeconds / 1e9,
            ["plain_copy_GBps"] = total / plainSeconds / 1e9,
            ["plain_copy"] = devices == 1 ? "cuMemcpyDtoDAsync" : "cuMemcpyPeerAsync",
            ["relocation_vs_plain"] = ratio,
            ["target_vs_plain"] = Target,
            ["target_met"] = ratio >= Target && wrong == 0 && coldStaged && warmStaged,
        };
        Console.WriteLine(row);
        return row;
    }

    /// <summary>Executes and commits the move to <paramref name="next"/>; returns the wall time of the execution.</summary>
    private static (TimeSpan Elapsed, bool AllStaged) Move(RelocationEngine engine, ExpertBridge.Core.Placement next)
    {
        var plan = engine.Plan(next);
        var clock = Stopwatch.StartNew();
        var result = engine.ExecuteAsync(plan).GetAwaiter().GetResult();
        var elapsed = clock.Elapsed;
        foreach (var layer in engine.StagedLayers)
        {
            engine.CommitAsync(layer).GetAwaiter().GetResult();
        }

        return (elapsed, result.AllStaged);
    }
}
