using System.Diagnostics;
using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.GpuBench;

/// <summary>
/// Compute slowdown: a busy "inference" stream (high priority) on device 0 runs a batch of kernel launches (about
/// <c>--seconds</c> long) alone, then while the relocation engine moves experts back and forth beside it on its
/// low-priority copy streams (within device 0, and between device 0 and device 1 when there are two), then beside a
/// plain driver copy on a normal-priority stream for reference. Two loads: an arithmetic-bound kernel and a
/// memory-bound one (which shares HBM bandwidth with every copy). The within-device scenario runs once per relocation
/// bandwidth cap (<c>--cap-gbps</c>, default unlimited, 800, 400, 200, 100 GB/s per device), the peer one unlimited. The slowdown is reported, not asserted; the relocation
/// busy fraction says how much of the compute window relocation was actually running (between moves the host plans
/// and commits).
/// </summary>
internal static class ComputeBench
{
    public const double TargetSlowdownPercent = 5;

    public static List<Row> Run(DeviceRuntime runtime, BenchOptions options)
    {
        var rows = new List<Row>();
        using var kernels = new KernelModule(runtime, 0, options.Ptx ?? throw new InvalidOperationException("compute needs --ptx FILE (nvcc -ptx tests/gpu/busy/busy_kernels.cu)"));
        using var compute = runtime.CreateStream(0, StreamPriority.High);
        using var fmaData = runtime.Allocate(0, (long)kernels.Multiprocessors * 4 * 256 * sizeof(float) * 8);
        using var streamIn = runtime.Allocate(0, 1L << 30);
        using var streamOut = runtime.Allocate(0, 1L << 30);
        runtime.Fill(fmaData.Memory, 0);
        runtime.Fill(streamIn.Memory, 0);
        (string Name, Action Launch)[] loads =
        [
            ("arithmetic", () => kernels.LaunchFma(compute, fmaData.Memory, 4096)),
            ("memory", () => kernels.LaunchStream(compute, streamIn.Memory, streamOut.Memory)),
        ];

        var scenarios = runtime.Devices.Count >= 2 ? new[] { 1, 2 } : [1];
        foreach (var devices in scenarios)
        {
            var slots = devices == 1 ? 2 * options.Experts : options.Experts;
            var layers = Deployment.FitLayers(runtime, options.Layers, slots, options.ExpertBytes, devices, reserve: 3L << 30) / 2;
            using var deployment = new Deployment(runtime, devices, Math.Max(1, layers), options.Experts, options.ExpertBytes);
            var relocation = devices == 1 ? "within-device" : "peer";
            var caps = devices == 1 ? options.CapsGBps : [0];
            var inForce = deployment.A;
            foreach (var (name, launch) in loads)
            {
                var reps = Calibrate(runtime, compute, launch, options.Seconds);
                var besidePlain = BesidePlainCopy(runtime, compute, launch, reps, out var plainAlone);
                foreach (var cap in caps)
                {
                    using var engine = new RelocationEngine(runtime, deployment.Registry, inForce, new RelocationOptions
                    {
                        MaxInFlightPerDevice = 16,
                        MaxLayersInFlight = 4,
                        TransferTimeout = TimeSpan.FromMinutes(2),
                        WithinDeviceBytesPerSecond = BenchOptions.ToBytesPerSecond(cap),
                        BetweenDevicesBytesPerSecond = BenchOptions.ToBytesPerSecond(cap),
                    });
                    var alone = Time(runtime, compute, launch, reps);
                    var (beside, moved, busy) = BesideRelocation(runtime, compute, launch, reps, engine, deployment);
                    inForce = engine.InForce;
                    var slowdown = ((beside / alone) - 1) * 100;
                    var row = new Row
                    {
                        ["name"] = $"compute-{name}-beside-{relocation}-relocation{(cap > 0 ? $"-cap-{cap.ToString(CultureInfo.InvariantCulture)}GBps" : "")}",
                        ["cap_GBps"] = cap,
                        ["launches"] = reps,
                        ["compute_alone_ms"] = alone,
                        ["compute_beside_relocation_ms"] = beside,
                        ["slowdown_pct"] = slowdown,
                        ["relocation_GBps_during"] = moved / (beside / 1e3) / 1e9,
                        ["relocation_busy_fraction"] = busy,
                        ["compute_beside_plain_copy_ms"] = besidePlain,
                        ["plain_copy_slowdown_pct"] = ((besidePlain / plainAlone) - 1) * 100,
                        ["target_slowdown_pct"] = TargetSlowdownPercent,
                        ["target_met"] = slowdown <= TargetSlowdownPercent,
                    };
                    Console.WriteLine(row);
                    rows.Add(row);
                }
            }
        }

        Console.WriteLine($"{"relocation",-32} {"cap GB/s",9} {"slowdown %",11} {"GB/s during",12}  target <= {TargetSlowdownPercent}%");
        foreach (var r in rows)
        {
            var cap = (double)r["cap_GBps"];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r["name"].ToString()!.Replace("compute-", "", StringComparison.Ordinal).Split("-cap-")[0],-32} {(cap > 0 ? cap.ToString("0", CultureInfo.InvariantCulture) : "none"),9} {(double)r["slowdown_pct"],11:0.0} {(double)r["relocation_GBps_during"],12:0} {((bool)r["target_met"] ? "met" : "missed")}"));
        }

        return rows;
    }

    /// <summary>Launches that take about <paramref name="seconds"/> alone.</summary>
    private static int Calibrate(DeviceRuntime runtime, DeviceStream stream, Action launch, double seconds)
    {
        launch(); // warm-up
        stream.Synchronize();
        var one = Time(runtime, stream, launch, 3) / 3;
        return (int)Math.Clamp(seconds * 1e3 / Math.Max(one, 1e-3), 3, 100_000);
    }

    /// <summary>Milliseconds the stream spends on <paramref name="reps"/> launches (device events).</summary>
    private static double Time(DeviceRuntime runtime, DeviceStream stream, Action launch, int reps)
    {
        using var start = runtime.CreateEvent(stream.Device);
        using var end = runtime.CreateEvent(stream.Device);
        stream.Record(start);
        for (var i = 0; i < reps; i++)
        {
            launch();
        }

        stream.Record(end);
        end.Synchronize();
        return DeviceEvent.Elapsed(start, end).TotalMilliseconds;
    }

    /// <summary>The timed batch while relocation moves the deployment A to B to A... until the batch is done. Returns
    /// the batch's milliseconds, the bytes relocated during it, and the fraction of it relocation was executing.</summary>
    private static (double Ms, double Bytes, double Busy) BesideRelocation(DeviceRuntime runtime, DeviceStream stream, Action launch, int reps, RelocationEngine engine, Deployment deployment)
    {
        var intervals = new List<(long Start, long End, long Bytes)>();
        using var running = new ManualResetEventSlim();
        var stop = 0;
        var mover = Task.Run(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                var next = engine.InForce.Equals(deployment.A) ? deployment.B : deployment.A;
                var plan = engine.Plan(next);
                var start = Stopwatch.GetTimestamp();
                var execution = engine.ExecuteAsync(plan);
                running.Set();
                var result = execution.GetAwaiter().GetResult();
                intervals.Add((start, Stopwatch.GetTimestamp(), result.StagedBytes));
                foreach (var layer in engine.StagedLayers)
                {
                    engine.CommitAsync(layer).GetAwaiter().GetResult();
                }

                if (!result.AllStaged)
                {
                    throw new InvalidOperationException($"relocation beside compute failed: {result.Layers.First(l => l.Status != LayerStatus.Staged).Error}");
                }
            }
        });
        running.Wait();
        var from = Stopwatch.GetTimestamp();
        var ms = Time(runtime, stream, launch, reps);
        var to = Stopwatch.GetTimestamp();
        Volatile.Write(ref stop, 1);
        mover.GetAwaiter().GetResult();
        double overlap = 0, bytes = 0;
        foreach (var (start, end, moved) in intervals)
        {
            var o = Math.Max(0, Math.Min(end, to) - Math.Max(start, from));
            overlap += o;
            bytes += end > start ? moved * (double)o / (end - start) : 0;
        }

        return (ms, bytes, overlap / (to - from));
    }

    /// <summary>The timed batch beside back-to-back 256 MiB device copies on a normal-priority stream; also the batch
    /// alone just before (<paramref name="alone"/>).</summary>
    private static double BesidePlainCopy(DeviceRuntime runtime, DeviceStream stream, Action launch, int reps, out double alone)
    {
        const long Size = 256L << 20;
        using var a = runtime.Allocate(0, Size);
        using var b = runtime.Allocate(0, Size);
        using var copies = runtime.CreateStream(0, StreamPriority.Normal);
        var oneCopy = Time(runtime, copies, () => copies.EnqueueCopy(b.Memory, a.Memory), 4) / 4;
        alone = Time(runtime, stream, launch, reps);
        var count = (int)Math.Clamp(alone * 1.5 / Math.Max(oneCopy, 1e-3), 1, 200_000);
        for (var i = 0; i < count; i++)
        {
            copies.EnqueueCopy(b.Memory, a.Memory);
        }

        var ms = Time(runtime, stream, launch, reps);
        copies.Synchronize();
        return ms;
    }
}
