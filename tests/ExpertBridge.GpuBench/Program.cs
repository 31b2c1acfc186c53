using System.Globalization;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Conformance;
using ExpertBridge.GpuBench;
using ExpertBridge.Interop;

// ExpertBridge GPU bench (runs on the GPU machine; see BenchOptions.Usage and tests/gpu/run-devices.sh).
// Exit codes: 0 done (targets are reported, not asserted), 1 a check or a move failed, 2 bad arguments, 3 no CUDA.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"GpuBench: {ex.Message}");
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

if (options.Verb is not ("conformance" or "relocation" or "cross-process" or "ipc" or "compute"))
{
    Console.WriteLine(BenchOptions.Usage);
    return options.Verb is "help" or "--help" ? 0 : 2;
}

DeviceRuntime runtime;
try
{
    runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda, Emulated = options.Emulated });
}
catch (DeviceException ex)
{
    Console.Error.WriteLine($"GpuBench: {ex.Message}");
    return 3;
}

using (runtime)
{
    try
    {
        return Run(runtime, options);
    }
    catch (Exception ex) when (ex is DeviceException or NativeCallException or InvalidOperationException or IOException)
    {
        Console.Error.WriteLine($"GpuBench {options.Verb}: {ex.Message}");
        return 1;
    }
}

static int Run(DeviceRuntime runtime, BenchOptions options)
{
    if (options.Rank == 1)
    {
        return options.Verb switch
        {
            "cross-process" => CrossProcessBench.RunPeer(runtime, options),
            "ipc" => IpcBench.RunPeer(runtime, options),
            _ => throw new InvalidOperationException($"--rank 1 is for the two-process verbs, not {options.Verb}"),
        };
    }

    Console.WriteLine($"devices: {string.Join("; ", runtime.Devices.Select(d => $"{d.Ordinal} {d.Name} {d.TotalMemory >> 30} GiB {d.BusId} peers [{string.Join(",", d.Peers)}]"))}");
    switch (options.Verb)
    {
        case "conformance":
            {
                var report = ConformanceSuite.Run(runtime, new ConformanceOptions { BandwidthBytes = 1L << 30, ExpertBytes = 44L << 20 });
                Console.Write(report.ToTable());
                Write(options.Json, report.ToJson());
                return report.Failed == 0 ? 0 : 1;
            }

        case "relocation":
            {
                var rows = new List<Row>();
                var bytes = options.ExpertBytes;
                var e = options.Experts;
                var cap = options.CapBytesPerSecond;
                rows.Add(MoveBench.Run(runtime, "within-device", 1, Deployment.FitLayers(runtime, options.Layers, 2 * e, bytes, 1), e, bytes, cap));
                if (runtime.Devices.Count >= 2)
                {
                    rows.Add(MoveBench.Run(runtime, "peer", 2, Deployment.FitLayers(runtime, 8, e, bytes, 2), e, bytes, cap));
                    rows.Add(MoveBench.Run(runtime, "deepseek-v3-peer", 2, Deployment.FitLayers(runtime, options.Layers, e, bytes, 2), e, bytes, cap));
                }

                Write(options.Json, Json.Write(rows));
                return rows.All(r => (bool)r["all_staged"] && Convert.ToInt64(r["wrong_experts"], CultureInfo.InvariantCulture) == 0) ? 0 : 1;
            }

        case "cross-process":
        case "ipc":
            {
                var row = options.Verb == "ipc" ? IpcBench.RunRoot(runtime, options) : CrossProcessBench.RunRoot(runtime, options);
                Write(options.Json, Json.Write([row]));
                return row.Any(kv => kv.Key == "failed" && kv.Value is true) ? 1 : 0;
            }

        default:
            {
                var rows = ComputeBench.Run(runtime, options);
                Write(options.Json, Json.Write(rows));
                return 0;
            }
    }
}

static void Write(string? path, string text)
{
    Console.WriteLine(text);
    if (path is not null)
    {
        File.WriteAllText(path, text);
    }
}
