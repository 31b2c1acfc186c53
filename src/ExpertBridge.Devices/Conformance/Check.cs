using System.Diagnostics;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices.Conformance;

/// <summary>The bodies of the conformance checks; each throws <see cref="CheckFailedException"/> on a violation.</summary>
internal sealed class Check(DeviceRuntime runtime, ConformanceOptions options)
{
    public Dictionary<string, double> Figures { get; } = [];

    public void Enumerate()
    {
        Require(runtime.Devices.Count > 0, "no device");
        foreach (var d in runtime.Devices)
        {
            Require(!string.IsNullOrWhiteSpace(d.Name), $"device {d.Ordinal} has no name");
            Require(d.TotalMemory > 0, $"device {d.Ordinal} reports no memory");
            var info = runtime.GetMemoryInfo(d.Ordinal);
            Require(info.Total > 0 && info.Free <= info.Total, $"device {d.Ordinal}: free {info.Free} of total {info.Total}");
        }

        Figures["devices"] = runtime.Devices.Count;
    }

    public void AllocationLimits()
    {
        var before = runtime.GetMemoryInfo(0);
        var ex = Expect<DeviceException>(() => runtime.Allocate(0, before.Total + (1L << 20)).Dispose(), "allocating more than the device has");
        Require(ex.Kind == DeviceErrorKind.OutOfMemory, $"an oversized allocation reported {ex.Kind} ({ex.Message}), not OutOfMemory");
        const long Size = 8 << 20;
        var buffers = Enumerable.Range(0, 4).Select(_ => runtime.Allocate(0, Size)).ToList();
        var during = runtime.GetMemoryInfo(0);
        Require(before.Free - during.Free >= 4 * Size, $"4 x {Size} bytes allocated but free memory fell by {before.Free - during.Free}");
        foreach (var b in buffers)
        {
            b.Dispose();
        }

        var after = runtime.GetMemoryInfo(0);
        Require(after.Free >= before.Free - (1 << 20), $"free memory {after.Free} after freeing did not return to {before.Free}");
    }

    public void CopyOddSizes()
    {
        using var buffer = runtime.Allocate(0, 3 << 20);
        using var other = runtime.Allocate(0, 3 << 20);
        using var stream = runtime.CreateStream(0);
        var rng = new Random(11);
        foreach (var size in new[] { 1, 3, 255, 4097, (1 << 20) + 7 })
        {
            foreach (var offset in new[] { 0, 1, 3, 7 })
            {
                var data = new byte[size];
                rng.NextBytes(data);
                var a = buffer.Memory.Slice(offset, size);
                var b = other.Memory.Slice(offset + 5, size);
                runtime.Upload(a, data);
                stream.EnqueueCopy(b, a);
                stream.Synchronize();
                var back = new byte[size];
                runtime.Download(b, back);
                Require(back.AsSpan().SequenceEqual(data), $"{size} bytes at offset {offset}: device-to-device copy differs");
                using var host = runtime.AllocateHost(size);
                stream.EnqueueCopy(host.Memory, b);
                stream.Synchronize();
                Require(host.Span.SequenceEqual(data), $"{size} bytes at offset {offset}: async device-to-host copy differs");
            }
        }
    }

    public void StreamOrderAndEvents()
    {
        const int Size = 1 << 20;
        using var a = runtime.Allocate(0, Size);
        using var b = runtime.Allocate(0, Size);
        using var c = runtime.Allocate(0, Size);
        using var s1 = runtime.CreateStream(0, StreamPriority.Low);
        using var s2 = runtime.CreateStream(0, StreamPriority.High);
        using var start = runtime.CreateEvent(0);
        s1.Record(start);
        s1.EnqueueFill(a.Memory, 1);
        s1.EnqueueCopy(b.Memory, a.Memory);
        s1.EnqueueFill(a.Memory, 2);
        using var done = s1.Record();
        s2.Wait(done);
        s2.EnqueueCopy(c.Memory, a.Memory);
        using var end = s2.Record();
        end.Synchronize();
        Require(done.IsComplete, "an event that another stream waited for is not complete after that stream finished");
        Require(All(b, 1), "stream order: a copy saw a fill queued after it (or missed one queued before)");
        Require(All(c, 2), "cross-stream wait: the second stream ran before the event it waited for");
        var elapsed = DeviceEvent.Elapsed(start, done);
        Require(elapsed >= TimeSpan.Zero, $"elapsed time {elapsed} between ordered events is negative");
        using var never = runtime.CreateEvent(0);
        Require(never.IsComplete, "an event never recorded must count as complete");
        Figures["ordered_ms"] = elapsed.TotalMilliseconds;
    }

    public void PeerCopy()
    {
        if (runtime.Devices.Count < 2)
        {
            throw new CheckSkippedException("needs two devices");
        }

        var bytes = options.BandwidthBytes;
        using var src = runtime.Allocate(0, bytes);
        using var dst = runtime.Allocate(1, bytes);
        var data = Pattern(bytes, 3);
        runtime.Upload(src.Memory, data);
        if (runtime.CanAccessPeer(1, 0))
        {
            runtime.EnablePeerAccess(1, 0);
            runtime.EnablePeerAccess(0, 1);
        }

        using var stream = runtime.CreateStream(1);
        Figures["peer_GBps"] = Bandwidth(stream, dst.Memory, src.Memory);
        var back = new byte[bytes];
        runtime.Download(dst.Memory, back);
        Require(back.AsSpan().SequenceEqual(data), "peer copy differs from its source");
        Figures["peer_access"] = runtime.CanAccessPeer(1, 0) ? 1 : 0;
    }

    public void ErrorMapping()
    {
        using var buffer = runtime.Allocate(0, 4096);
        using var stream = runtime.CreateStream(0);
        var past = new DeviceMemory(0, buffer.Memory.Address + 2048, 4096); // runs past the allocation
        var ex = Expect<DeviceException>(() =>
        {
            stream.EnqueueCopy(past, buffer.Memory);
            stream.Synchronize();
        }, "a copy running past the end of an allocation");
        Require(ex.Kind is DeviceErrorKind.InvalidArgument or DeviceErrorKind.DeviceFault, $"an out-of-range copy reported {ex.Kind}");
        Require(ex.Message.Contains(ex.ErrorName, StringComparison.Ordinal) && ex.ErrorName.Length > 0, $"the message '{ex.Message}' lacks the vendor's error name");
        Require(ex.Message.StartsWith(runtime.Name, StringComparison.Ordinal), $"the message '{ex.Message}' does not name the backend {runtime.Name}");
    }

    public void HostBandwidth()
    {
        var bytes = options.BandwidthBytes;
        using var host = runtime.AllocateHost(bytes);
        using var dev = runtime.Allocate(0, bytes);
        using var stream = runtime.CreateStream(0);
        Figures["h2d_GBps"] = Bandwidth(stream, dev.Memory, host.Memory);
        Figures["d2h_GBps"] = Bandwidth(stream, host.Memory, dev.Memory);
    }

    public void DeviceBandwidth()
    {
        var bytes = options.BandwidthBytes;
        using var a = runtime.Allocate(0, bytes);
        using var b = runtime.Allocate(0, bytes);
        using var stream = runtime.CreateStream(0);
        Figures["d2d_GBps"] = Bandwidth(stream, b.Memory, a.Memory);
    }

    public void IpcExportImport()
    {
        using var buffer = runtime.Allocate(0, 1 << 16);
        IpcMemoryHandle handle;
        try
        {
            handle = runtime.Export(buffer);
        }
        catch (DeviceException ex) when (ex.Kind == DeviceErrorKind.Unsupported)
        {
            throw new CheckSkippedException($"IPC not supported: {ex.ErrorText}");
        }

        var parsed = IpcMemoryHandle.Parse(handle.ToText());
        DeviceBuffer mapped;
        try
        {
            mapped = runtime.Import(parsed, 0);
        }
        catch (DeviceException ex) when (!runtime.IsEmulated)
        {
            // Real drivers refuse to open a handle in the process that exported it; GpuBench checks two processes.
            throw new CheckSkippedException($"same-process import refused by the driver ({ex.ErrorName}); the two-process check runs in GpuBench");
        }

        using (mapped)
        {
            var data = Pattern(1 << 16, 9);
            runtime.Upload(buffer.Memory, data);
            var back = new byte[1 << 16];
            runtime.Download(mapped.Memory, back);
            Require(back.AsSpan().SequenceEqual(data), "memory read through an imported IPC handle differs from what was written");
        }
    }

    public void RelocationBitExact()
    {
        using var s = new Scenario(runtime, options.ExpertBytes, layers: 3);
        using var engine = s.Engine(new RelocationOptions { Verify = true });
        var plan = engine.Plan(s.Next);
        Require(plan.Transfers > 0, "the scenario moves nothing");
        var clock = Stopwatch.StartNew();
        var result = engine.ExecuteAsync(plan).GetAwaiter().GetResult();
        Require(result.AllStaged, Describe(result));
        foreach (var l in plan.Layers)
        {
            engine.CommitAsync(l.Layer).GetAwaiter().GetResult();
        }

        Figures["relocation_with_checksums_GBps"] = plan.TotalBytes / clock.Elapsed.TotalSeconds / 1e9; // host XxHash3 of every moved expert included
        Require(engine.InForce.Equals(s.Next), "after committing every layer the placement in force is not the target");
        s.RequireContents(engine.InForce);
        Require(engine.ReleaseFinished() == 0, "staging still pending after every commit completed");
        Require(s.LiveAllocationsBack(), "staging buffers were not freed after the commits");
    }

    /// <summary>
    /// Under bandwidth caps (within a device and between devices, the same rate) the busiest device's relocation takes
    /// at least its bytes over the cap (less the pacer's burst allowance and one chunk), not far more, and the experts
    /// land bit-exact. The move is first made unpaced; the cap is then set so that the way back takes about three times
    /// as long (at least a quarter of a second), below what the device does on its own. Experts of at most 4 MiB: pacing
    /// needs no large ones, and the check stays short on every backend.
    /// </summary>
    public void RelocationBandwidthCap()
    {
        using var s = new Scenario(runtime, Math.Min(options.ExpertBytes, 4L << 20), layers: 2);
        TimeSpan unpaced;
        using (var free = s.Engine(new RelocationOptions()))
        {
            var clock = Stopwatch.StartNew();
            var first = free.ExecuteAsync(free.Plan(s.Next)).GetAwaiter().GetResult();
            unpaced = clock.Elapsed;
            Require(first.AllStaged, Describe(first));
            CommitStaged(free);
        }

        var expertBytes = Enumerable.Range(0, s.Initial.Layers).Select(s.Registry.ExpertBytes).ToArray();
        var busiest = RelocationPlanner.Plan(s.Next, s.Initial, expertBytes).BusiestBudgetBytes();
        var target = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(250).Ticks, 3 * unpaced.Ticks));
        var cap = Math.Max(1, (long)(busiest / target.TotalSeconds));
        using var paced = new RelocationEngine(runtime, s.Registry, s.Next, new RelocationOptions { WithinDeviceBytesPerSecond = cap, BetweenDevicesBytesPerSecond = cap });
        var plan = paced.Plan(s.Initial);
        var watch = Stopwatch.StartNew();
        var result = paced.ExecuteAsync(plan).GetAwaiter().GetResult();
        var took = watch.Elapsed;
        Require(result.AllStaged, Describe(result));
        CommitStaged(paced);
        var least = TimeSpan.FromSeconds((busiest - new BandwidthPacer(cap).ChunkBytes) / (double)cap) - BandwidthPacer.Burst;
        Figures["unpaced_ms"] = unpaced.TotalMilliseconds;
        Figures["cap_GBps"] = cap / 1e9;
        Figures["busiest_budget_GBps"] = busiest / took.TotalSeconds / 1e9;
        Figures["paced_ms"] = took.TotalMilliseconds;
        Require(took >= least, $"{busiest} bytes on the busiest budget under a cap of {cap} B/s took {took.TotalMilliseconds:0.#} ms, less than the {least.TotalMilliseconds:0.#} ms the cap allows");
        Require(took < (2 * target) + TimeSpan.FromSeconds(1), $"the capped move took {took.TotalMilliseconds:0.#} ms, far beyond the {target.TotalMilliseconds:0} ms the cap implies (pacing stalls)");
        Require(paced.InForce.Equals(s.Initial), "after committing every layer the placement in force is not the target");
        s.RequireContents(paced.InForce);
        Require(paced.ReleaseFinished() == 0 && s.LiveAllocationsBack(), "staging buffers were not freed after the commits");
    }

    public void RelocationFailedCopy()
    {
        var faults = runtime.Faults ?? throw new CheckSkippedException("fault injection needs the host backend or an emulator");
        using var s = new Scenario(runtime, options.ExpertBytes, layers: 3);
        using var engine = s.Engine(Serial());
        var plan = engine.Plan(s.Next);
        faults.FailCopy(1); // the first copy of the first layer: half written, then an error
        var result = engine.ExecuteAsync(plan).GetAwaiter().GetResult();
        faults.Reset();
        var first = result.Layers[0];
        Require(first.Status == LayerStatus.Failed && first.ErrorKind == DeviceErrorKind.DeviceFault, $"layer {first.Layer}: {first.Status} ({first.Error}), expected Failed with DeviceFault");
        Require(result.Layers.Skip(1).All(l => l.Status == LayerStatus.Staged), Describe(result));
        CommitStaged(engine);
        RequireKeptAndMoved(s, engine, plan, failedLayers: [first.Layer]);
    }

    public void RelocationOutOfMemory()
    {
        var faults = runtime.Faults ?? throw new CheckSkippedException("fault injection needs the host backend or an emulator");
        using var s = new Scenario(runtime, options.ExpertBytes, layers: 3);
        using var engine = s.Engine(Serial());
        var plan = engine.Plan(s.Next);
        faults.FailAllocation(2); // the second staging buffer of the first layer
        var result = engine.ExecuteAsync(plan).GetAwaiter().GetResult();
        faults.Reset();
        var first = result.Layers[0];
        Require(first.Status == LayerStatus.Failed && first.ErrorKind == DeviceErrorKind.OutOfMemory, $"layer {first.Layer}: {first.Status} ({first.Error}), expected Failed with OutOfMemory");
        CommitStaged(engine);
        RequireKeptAndMoved(s, engine, plan, failedLayers: [.. result.Layers.Where(l => l.Status != LayerStatus.Staged).Select(l => l.Layer)]);
    }

    public void RelocationTimeout()
    {
        var faults = runtime.Faults ?? throw new CheckSkippedException("fault injection needs the host backend or an emulator");
        using var s = new Scenario(runtime, options.ExpertBytes, layers: 2);
        using var engine = s.Engine(new RelocationOptions { MaxLayersInFlight = 1, MaxInFlightPerDevice = 1, CopyStreamsPerDevice = 1, TransferTimeout = TimeSpan.FromMilliseconds(300) });
        var plan = engine.Plan(s.Next);
        faults.StallCopy(1);
        var result = engine.ExecuteAsync(plan).GetAwaiter().GetResult();
        var first = result.Layers[0];
        Require(first.Status == LayerStatus.Failed && first.ErrorKind == DeviceErrorKind.Timeout, $"layer {first.Layer}: {first.Status} ({first.Error}), expected Failed with Timeout");
        Require(result.Layers.Skip(1).All(l => l.Status == LayerStatus.Staged), $"later layers must use fresh streams: {Describe(result)}");
        Require(engine.ReleaseFinished() > 0, "the timed-out layer's staging was released while its copy was still in flight");
        faults.Reset(); // the stalled copy finishes late, into quarantined staging
        CommitStaged(engine);
        var clock = Stopwatch.StartNew();
        while (engine.ReleaseFinished() > 0 && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(10);
        }

        RequireKeptAndMoved(s, engine, plan, failedLayers: [first.Layer]);
    }

    public void RelocationUnderCompute()
    {
        using var s = new Scenario(runtime, options.ExpertBytes, layers: 3);
        var bytes = Math.Min(options.BandwidthBytes, 8L << 20);
        using var x = runtime.Allocate(0, bytes);
        using var y = runtime.Allocate(0, bytes);
        using var compute = runtime.CreateStream(0, StreamPriority.High);
        runtime.Upload(x.Memory, Pattern(bytes, 5));

        TimeSpan RunCompute()
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < 16; i++)
            {
                compute.EnqueueCopy(y.Memory, x.Memory);
                compute.EnqueueCopy(x.Memory, y.Memory);
            }

            compute.Synchronize();
            return clock.Elapsed;
        }

        var alone = RunCompute();
        using var engine = s.Engine(new RelocationOptions());
        var plan = engine.Plan(s.Next);
        var relocation = engine.ExecuteAsync(plan);
        var beside = RunCompute();
        var result = relocation.GetAwaiter().GetResult();
        Require(result.AllStaged, Describe(result));

        // Commit on the "inference" streams themselves: stream order lands the experts between two compute steps.
        var inference = Enumerable.Range(0, runtime.Devices.Count).Select(d => d == 0 ? compute : runtime.CreateStream(d, StreamPriority.High)).ToArray();
        foreach (var l in plan.Layers)
        {
            var commit = engine.PrepareCommit(l.Layer);
            commit.EnqueueCopies(d => inference[d]);
            foreach (var stream in inference)
            {
                stream.Synchronize();
            }

            engine.Acknowledge(commit);
        }

        foreach (var stream in inference.Skip(1))
        {
            stream.Dispose();
        }

        s.RequireContents(engine.InForce);
        var back = new byte[bytes];
        runtime.Download(x.Memory, back);
        Require(back.AsSpan().SequenceEqual(Pattern(bytes, 5)), "the compute stream's data was disturbed by the relocation");
        Figures["compute_alone_ms"] = alone.TotalMilliseconds;
        Figures["compute_beside_relocation_ms"] = beside.TotalMilliseconds;
        Figures["compute_slowdown_pct"] = (beside.TotalMilliseconds / Math.Max(alone.TotalMilliseconds, 1e-3) - 1) * 100;
    }

    // ---------------------------------------------------------------- helpers

    private static RelocationOptions Serial() => new() { MaxLayersInFlight = 1, MaxInFlightPerDevice = 1, CopyStreamsPerDevice = 1 };

    private static void CommitStaged(RelocationEngine engine)
    {
        foreach (var layer in engine.StagedLayers)
        {
            engine.CommitAsync(layer).GetAwaiter().GetResult();
        }
    }

    /// <summary>Failed layers kept their rows and bytes; the others moved; every buffer of the engine was freed.</summary>
    private static void RequireKeptAndMoved(Scenario s, RelocationEngine engine, RelocationPlan plan, IReadOnlyCollection<int> failedLayers)
    {
        foreach (var l in plan.Layers)
        {
            var want = failedLayers.Contains(l.Layer) ? s.Initial.Layer(l.Layer) : s.Next.Layer(l.Layer);
            Require(engine.InForce.Layer(l.Layer).SequenceEqual(want), $"layer {l.Layer}: mapping {(failedLayers.Contains(l.Layer) ? "changed although its copy failed" : "did not move")}");
        }

        s.RequireContents(engine.InForce); // no torn expert in any routed slot
        Require(engine.ReleaseFinished() == 0, "work still pending after the faults were cleared");
        Require(s.LiveAllocationsBack(), "staging buffers leaked after the failed layer");
    }

    private double Bandwidth(DeviceStream stream, DeviceMemory dst, DeviceMemory src)
    {
        stream.EnqueueCopy(dst, src); // warm-up
        using var start = runtime.CreateEvent(stream.Device);
        using var end = runtime.CreateEvent(stream.Device);
        const int Rounds = 4;
        stream.Record(start);
        for (var i = 0; i < Rounds; i++)
        {
            stream.EnqueueCopy(dst, src);
        }

        stream.Record(end);
        end.Synchronize();
        var seconds = Math.Max(DeviceEvent.Elapsed(start, end).TotalSeconds, 1e-9);
        return src.Length * (double)Rounds / seconds / 1e9;
    }

    private bool All(DeviceBuffer buffer, byte value)
    {
        var data = new byte[buffer.Length];
        runtime.Download(buffer.Memory, data);
        return !data.AsSpan().ContainsAnyExcept(value);
    }

    /// <summary>Deterministic pseudo-random bytes (SplitMix64): several GB/s, where a seeded <see cref="Random"/> (the
    /// .NET 5 compatible generator) manages a small fraction of that and made GiB-sized checks take seconds.</summary>
    internal static byte[] Pattern(long bytes, int seed)
    {
        var data = new byte[bytes];
        var state = unchecked(0x9E3779B97F4A7C15UL * (ulong)seed);
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(data.AsSpan());
        for (var i = 0; i < words.Length; i++)
        {
            words[i] = Next(ref state);
        }

        var tail = Next(ref state);
        for (var i = words.Length * sizeof(ulong); i < data.Length; i++)
        {
            data[i] = (byte)(tail & 0xFF);
            tail >>= 8;
        }

        return data;

        static ulong Next(ref ulong x)
        {
            unchecked
            {
                var z = x += 0x9E3779B97F4A7C15UL;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                return z ^ (z >> 31);
            }
        }
    }

    private static string Describe(RelocationResult result) =>
        string.Join("; ", result.Layers.Select(l => $"layer {l.Layer}: {l.Status}{(l.Error is null ? "" : $" ({l.Error})")}"));

    internal static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new CheckFailedException(message);
        }
    }

    private static T Expect<T>(Action action, string what)
        where T : Exception
    {
        try
        {
            action();
        }
        catch (T ex)
        {
            return ex;
        }

        throw new CheckFailedException($"{what} did not fail");
    }
}
