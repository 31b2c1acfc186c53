using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ExpertBridge.Core;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Conformance;
using ExpertBridge.Devices.Relocation;

// ExpertBridge GPU bench: `conformance [--json F]` runs the conformance suite on the real CUDA backend;
// `relocation [--json F] [--layers N] [--experts N] [--expert-mb N] [--emulated]` measures relocation beside a plain driver copy
// of the same bytes on the same card: within a device, between two devices (peer), and a DeepSeek-V3-sized move.
var verb = args.Length > 0 ? args[0] : "help";
string? json = null;
int layers = 58, experts = 16, expertMb = 44;
var emulated = false;
for (var i = 1; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--json": json = args[++i]; break;
        case "--layers": layers = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--experts": experts = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--expert-mb": expertMb = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--emulated": emulated = true; break; // smoke test of this program without a GPU
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

using var runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda, Emulated = emulated });
Console.WriteLine($"devices: {string.Join("; ", runtime.Devices.Select(d => $"{d.Ordinal} {d.Name} {d.TotalMemory >> 30} GiB {d.BusId} peers [{string.Join(",", d.Peers)}]"))}");
switch (verb)
{
    case "conformance":
        {
            var report = ConformanceSuite.Run(runtime, new ConformanceOptions { BandwidthBytes = 1L << 30, ExpertBytes = 44L << 20 });
            Console.Write(report.ToTable());
            if (json is not null)
            {
                File.WriteAllText(json, report.ToJson());
            }

            return report.Failed == 0 ? 0 : 1;
        }

    case "relocation":
        {
            var results = new List<Dictionary<string, object>>();
            var bytes = (long)expertMb << 20;
            results.Add(Bench.Move(runtime, "within-device", 1, Bench.FitLayers(runtime, layers, 2 * experts, bytes, 1), experts, bytes));
            if (runtime.Devices.Count >= 2)
            {
                results.Add(Bench.Move(runtime, "peer", 2, Bench.FitLayers(runtime, 8, experts, bytes, 2), experts, bytes));
                results.Add(Bench.Move(runtime, "deepseek-v3-peer", 2, Bench.FitLayers(runtime, layers, experts, bytes, 2), experts, bytes));
            }

            var text = Bench.ToJson(results);
            Console.WriteLine(text);
            if (json is not null)
            {
                File.WriteAllText(json, text);
            }

            return 0;
        }

    default:
        Console.WriteLine("usage: ExpertBridge.GpuBench conformance|relocation [--json FILE] [--layers 58] [--experts 16] [--expert-mb 44]");
        return verb == "help" ? 0 : 2;
}

internal static class Bench
{
    /// <summary>Rows as a JSON array (a hand-written writer keeps the trimmed build free of reflection).</summary>
    public static string ToJson(List<Dictionary<string, object>> rows)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var row in rows)
            {
                w.WriteStartObject();
                foreach (var (key, value) in row)
                {
                    switch (value)
                    {
                        case string s: w.WriteString(key, s); break;
                        case bool b: w.WriteBoolean(key, b); break;
                        case double d: w.WriteNumber(key, d); break;
                        default: w.WriteNumber(key, Convert.ToInt64(value, CultureInfo.InvariantCulture)); break;
                    }
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Layers that fit in 85% of the free memory (each device holds <paramref name="slotsPerDevice"/> experts per layer).</summary>
    public static int FitLayers(DeviceRuntime runtime, int wanted, int slotsPerDevice, long bytes, int devices)
    {
        var free = Enumerable.Range(0, devices).Min(d => runtime.GetMemoryInfo(d).Free);
        return (int)Math.Max(1, Math.Min(wanted, free * 0.85 / (slotsPerDevice * (double)bytes)));
    }

    /// <summary>
    /// Moves every expert of <paramref name="layers"/> layers into free slots (direct landing): within device 0
    /// (devices = 1: slots 0..E-1 hold the experts, E..2E-1 are free) or from device 0 to device 1 (devices = 2), then
    /// copies the same bytes with plain driver copies on one stream, and reports both rates.
    /// </summary>
    public static Dictionary<string, object> Move(DeviceRuntime runtime, string name, int devices, int layers, int experts, long bytes)
    {
        var slotsPerDevice = devices == 1 ? 2 * experts : experts;
        var topology = Topology.Create(devices, slotsPerDevice);
        var registry = new ExpertRegistry(topology, layers);
        var buffers = new List<DeviceBuffer>();
        var from = new int[layers * topology.Slots];
        var to = new int[layers * topology.Slots];
        for (var l = 0; l < layers; l++)
        {
            for (var s = 0; s < topology.Slots; s++)
            {
                var b = runtime.Allocate(topology.DeviceOf(s), bytes);
                buffers.Add(b);
                registry.Register(l, s, [b.Memory]);
                from[(l * topology.Slots) + s] = s < experts ? s : -1;
                to[(l * topology.Slots) + s] = s >= experts ? s - experts : -1;
            }
        }

        var current = new Placement(topology, experts, from);
        var next = new Placement(topology, experts, to);
        using var engine = new RelocationEngine(runtime, registry, current, new RelocationOptions { MaxInFlightPerDevice = 8, MaxLayersInFlight = 4, TransferTimeout = TimeSpan.FromMinutes(5) });
        var plan = engine.Plan(next);
        var clock = Stopwatch.StartNew();
        var result = engine.ExecuteAsync(plan).GetAwaiter().GetResult();
        var relocationSeconds = clock.Elapsed.TotalSeconds;
        foreach (var l in plan.Layers)
        {
            engine.CommitAsync(l.Layer).GetAwaiter().GetResult();
        }

        // The plain driver copy of the same bytes, same pairs of buffers, one stream on the destination device.
        using var stream = runtime.CreateStream(devices == 1 ? 0 : 1);
        using var start = runtime.CreateEvent(stream.Device);
        using var end = runtime.CreateEvent(stream.Device);
        stream.Record(start);
        foreach (var t in plan.Layers.SelectMany(l => l.Transfers))
        {
            stream.EnqueueCopy(registry.Get(t.Layer, t.Slot)![0], registry.Get(t.Layer, t.SourceSlot)![0]);
        }

        stream.Record(end);
        end.Synchronize();
        var plainSeconds = DeviceEvent.Elapsed(start, end).TotalSeconds;
        foreach (var b in buffers)
        {
            b.Dispose();
        }

        var total = (double)plan.TotalBytes;
        var row = new Dictionary<string, object>
        {
            ["name"] = name,
            ["layers"] = layers,
            ["experts_per_layer"] = experts,
            ["expert_bytes"] = bytes,
            ["bytes"] = plan.TotalBytes,
            ["all_staged"] = result.AllStaged,
            ["relocation_GBps"] = Math.Round(total / relocationSeconds / 1e9, 2),
            ["plain_copy_GBps"] = Math.Round(total / plainSeconds / 1e9, 2),
            ["relocation_vs_plain"] = Math.Round(plainSeconds / relocationSeconds, 3),
        };
        Console.WriteLine(string.Join(", ", row.Select(kv => $"{kv.Key}={kv.Value}")));
        return row;
    }
}
