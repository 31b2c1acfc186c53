using System.Diagnostics;
using System.Globalization;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.GpuBench;

/// <summary>
/// Two processes, one GPU each, moving experts with NCCL send/recv. Rank 0 (this process, its device 0) creates the
/// job's unique id, starts rank 1 (this program again, with <c>CUDA_VISIBLE_DEVICES</c> set to the second visible GPU)
/// and hands it the id through rank 1's standard input (a pipe). Both open the NCCL transport, then measure, after a
/// barrier each: a plain NCCL send/recv of every expert (one group per layer, one stream), and the relocation engine
/// moving the same experts (rank 0's slots to rank 1's free slots). Rank 1 checks the received experts and reports
/// its figures as a <c>RESULT {json}</c> line on standard output. Rates divide the bytes by the slower rank's wall time.
/// </summary>
internal static class CrossProcessBench
{
    private static readonly DeviceLocation[] Where = [new(0, 0), new(1, 0)];

    /// <summary>Rank 0: returns the row, or a skipped row when fewer than two GPUs are visible.</summary>
    public static Row RunRoot(DeviceRuntime runtime, BenchOptions options)
    {
        if (runtime.Devices.Count < 2)
        {
            return Skipped("needs two GPUs (one per process)");
        }

        var layers = Deployment.FitLayers(runtime, options.Layers, options.Experts, options.ExpertBytes, devices: 1);
        byte[] id;
        try
        {
            id = CollectiveTransport.CreateUniqueId(runtime);
        }
        catch (DeviceException ex)
        {
            return Skipped($"no NCCL: {ex.Message}", failed: true);
        }

        // One GPU each: rank 1 sees only the second GPU of this process's list.
        var visible = Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        using var peer = PeerProcess.Start(
            [
                "cross-process", "--rank", "1",
                "--layers", layers.ToString(CultureInfo.InvariantCulture),
                "--experts", options.Experts.ToString(CultureInfo.InvariantCulture),
                "--expert-mb", (options.ExpertBytes >> 20).ToString(CultureInfo.InvariantCulture),
                "--timeout-s", options.TimeoutSeconds.ToString(CultureInfo.InvariantCulture),
                "--cap-gbps", options.CapsGBps[0].ToString(CultureInfo.InvariantCulture),
            ],
            new Dictionary<string, string> { ["CUDA_VISIBLE_DEVICES"] = visible is { Length: >= 2 } ? visible[1] : "1" });
        peer.Send(Convert.ToBase64String(id));

        Row mine, theirs;
        try
        {
            mine = RunRank(runtime, 0, id, layers, options);
            theirs = peer.Result(TimeSpan.FromSeconds(options.TimeoutSeconds));
        }
        catch (Exception ex) when (ex is DeviceException or InvalidOperationException or TimeoutException)
        {
            peer.Kill();
            return Skipped(ex.Message, failed: true);
        }

        var bytes = (double)layers * options.Experts * options.ExpertBytes;
        var plain = Math.Max((double)mine["plain_seconds"], (double)theirs["plain_seconds"]);
        var relocation = Math.Max((double)mine["relocation_seconds"], (double)theirs["relocation_seconds"]);
        var row = new Row
        {
            ["name"] = "cross-process-nccl",
            ["processes"] = 2,
            ["layers"] = layers,
            ["experts_per_layer"] = options.Experts,
            ["expert_bytes"] = options.ExpertBytes,
            ["bytes"] = (long)bytes,
            ["nccl_version"] = mine["nccl"],
            ["all_staged"] = (bool)mine["all_staged"] && (bool)theirs["all_staged"],
            ["wrong_experts"] = (long)(double)theirs["wrong_experts"],
            ["relocation_GBps"] = bytes / relocation / 1e9,
            ["plain_nccl_GBps"] = bytes / plain / 1e9,
            ["relocation_vs_plain"] = plain / relocation,
        };
        Console.WriteLine(row);
        return row;
    }

    /// <summary>Rank 1 (started by rank 0): reads the id from standard input, runs, prints its RESULT line.</summary>
    public static int RunPeer(DeviceRuntime runtime, BenchOptions options)
    {
        using var watchdog = new Timer(_ => Environment.Exit(4), null, TimeSpan.FromSeconds(options.TimeoutSeconds), Timeout.InfiniteTimeSpan);
        var row = RunRank(runtime, 1, Convert.FromBase64String(PeerProcess.ReadLine()), options.Layers, options);
        PeerProcess.Report(row); // rank 0 judges the figures
        return 0;
    }

    private static Row RunRank(DeviceRuntime runtime, int rank, byte[] id, int layers, BenchOptions options)
    {
        var transportOptions = CollectiveTransportOptions.ForProcess(Where, rank, uniqueId: id) with { InitTimeout = TimeSpan.FromSeconds(60) };
        using var transport = CollectiveTransport.Open(runtime, transportOptions);
        using var deployment = new Deployment(runtime, devices: 2, layers, options.Experts, options.ExpertBytes, Where, rank);
        using var stream = runtime.CreateStream(0);
        using var tiny = runtime.Allocate(0, 4096);
        Barrier(transport, stream, tiny, rank);

        // Plain NCCL: the same experts, one group per layer, one stream.
        var clock = Stopwatch.StartNew();
        for (var l = 0; l < layers; l++)
        {
            transport.GroupStart();
            for (var e = 0; e < options.Experts; e++)
            {
                if (rank == 0)
                {
                    transport.Send(stream, deployment.Registry.Get(l, e)![0], 1);
                }
                else
                {
                    transport.Receive(stream, deployment.Registry.Get(l, options.Experts + e)![0], 0);
                }
            }

            transport.GroupEnd();
        }

        stream.Synchronize();
        var plainSeconds = clock.Elapsed.TotalSeconds;
        if (rank == 1)
        {
            for (var l = 0; l < layers; l++)
            {
                for (var e = 0; e < options.Experts; e++)
                {
                    runtime.Fill(deployment.Registry.Get(l, options.Experts + e)![0], 0); // what the engine must write again
                }
            }
        }

        using var engine = new RelocationEngine(runtime, deployment.Registry, deployment.A, new RelocationOptions
        {
            Process = rank,
            Locations = Where,
            Transport = transport,
            MaxLayersInFlight = 4,
            BetweenDevicesBytesPerSecond = options.CapBytesPerSecond,
            TransferTimeout = TimeSpan.FromSeconds(options.TimeoutSeconds / 2),
        });
        var plan = engine.Plan(deployment.B);
        Barrier(transport, stream, tiny, rank);
        clock.Restart();
        var result = engine.ExecuteAsync(plan).GetAwaiter().GetResult();
        var relocationSeconds = clock.Elapsed.TotalSeconds;
        foreach (var layer in engine.StagedLayers)
        {
            engine.CommitAsync(layer).GetAwaiter().GetResult();
        }

        var failures = result.Layers.Where(l => l.Status != LayerStatus.Staged).Select(l => l.Error).ToList();
        foreach (var f in failures.Take(3))
        {
            Console.Error.WriteLine($"rank {rank}: {f}");
        }

        return new Row
        {
            ["rank"] = rank,
            ["nccl"] = NcclVersion(),
            ["plain_seconds"] = plainSeconds,
            ["relocation_seconds"] = relocationSeconds,
            ["all_staged"] = result.AllStaged,
            ["wrong_experts"] = (long)(rank == 1 ? deployment.CountWrong(engine.InForce) : 0),
        };
    }

    /// <summary>Both ranks exchange 64 bytes and wait for it: they leave within microseconds of each other.</summary>
    private static void Barrier(CollectiveTransport transport, DeviceStream stream, DeviceBuffer tiny, int rank)
    {
        transport.GroupStart();
        transport.Send(stream, tiny.Memory.Slice(0, 64), 1 - rank);
        transport.Receive(stream, tiny.Memory.Slice(64, 64), 1 - rank);
        transport.GroupEnd();
        stream.Synchronize();
    }

    private static unsafe long NcclVersion()
    {
        int version;
        return ExpertBridge.Interop.Nccl.Nccl.GetVersion(&version) == ExpertBridge.Interop.Nccl.NcclResult.Success ? version : 0;
    }

    private static Row Skipped(string why, bool failed = false) => new()
    {
        ["name"] = "cross-process-nccl",
        ["skipped"] = !failed,
        ["failed"] = failed,
        ["reason"] = why,
    };
}
