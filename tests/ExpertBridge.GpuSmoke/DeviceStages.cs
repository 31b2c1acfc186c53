using ExpertBridge.Interop.Cuda;

namespace ExpertBridge.GpuSmoke;

/// <summary>The single-process stages: device query, round trip on one GPU, peer copy between two.</summary>
internal static unsafe class DeviceStages
{
    public static List<Dictionary<string, object?>> Query()
    {
        Gpu.Init();
        int version, count;
        Gpu.Check(Cuda.DriverGetVersion(&version));
        Gpu.Check(Cuda.DeviceGetCount(&count));
        Console.WriteLine($"driver API {version}, {count} device(s)");
        var devices = new List<Dictionary<string, object?>>();
        for (var ordinal = 0; ordinal < count; ordinal++)
        {
            var dev = Gpu.Device(ordinal);
            nuint total;
            Gpu.Check(Cuda.DeviceTotalMem(&total, dev));
            CUuuid uuid;
            Gpu.Check(Cuda.DeviceGetUuid(&uuid, dev));
            int Attribute(CUdeviceAttribute a)
            {
                int v;
                Gpu.Check(Cuda.DeviceGetAttribute(&v, a, dev));
                return v;
            }
            var info = new Dictionary<string, object?>
            {
                ["ordinal"] = ordinal,
                ["name"] = Gpu.Text((p, n) => Cuda.DeviceGetName((byte*)p, n, dev)),
                ["pciBusId"] = Gpu.Text((p, n) => Cuda.DeviceGetPCIBusId((byte*)p, n, dev), 32),
                ["uuid"] = Gpu.Hex(new ReadOnlySpan<byte>(uuid.bytes, 16)),
                ["totalMemoryBytes"] = (ulong)total,
                ["computeCapability"] = $"{Attribute(CUdeviceAttribute.ComputeCapabilityMajor)}.{Attribute(CUdeviceAttribute.ComputeCapabilityMinor)}",
                ["multiprocessors"] = Attribute(CUdeviceAttribute.MultiprocessorCount),
                ["unifiedAddressing"] = Attribute(CUdeviceAttribute.UnifiedAddressing) == 1,
            };
            Console.WriteLine($"  [{ordinal}] {info["name"]} {info["pciBusId"]} cc {info["computeCapability"]} {(ulong)total >> 20} MiB");
            devices.Add(info);
        }
        if (count > 0)
        {
            Gpu.Activate(0);
            nuint free, totalNow;
            Gpu.Check(Cuda.MemGetInfo(&free, &totalNow));
            devices[0]["freeMemoryBytes"] = (ulong)free;
        }
        return devices;
    }

    /// <summary>Pinned host pattern → device (H2D) → second device buffer (D2D) → memset of the first 4 KiB → host
    /// (D2H); the result must be the memset bytes, then the pattern.</summary>
    public static Dictionary<string, object?> RoundTrip(int ordinal, Options options)
    {
        var bytes = options.Bytes;
        Gpu.Activate(ordinal);
        var stream = Gpu.CreateStream();
        var src = Gpu.AllocHost(bytes);
        var dst = Gpu.AllocHost(bytes);
        var a = Gpu.Alloc(bytes);
        var b = Gpu.Alloc(bytes);
        try
        {
            Gpu.Fill(src, bytes);
            Gpu.Zero(dst, bytes);
            var h2d = Gpu.Time(stream, () => Gpu.Check(Cuda.MemcpyHtoDAsync(a, src, (nuint)bytes, stream)));
            var d2d = Gpu.Time(stream, () => Gpu.Check(Cuda.MemcpyDtoDAsync(b, a, (nuint)bytes, stream)));
            const int memsetBytes = 4096;
            Gpu.Check(Cuda.MemsetD8Async(b, 0xAB, memsetBytes, stream));
            var d2h = Gpu.Time(stream, () => Gpu.Check(Cuda.MemcpyDtoHAsync(dst, b, (nuint)bytes, stream)));
            Gpu.Check(Cuda.StreamSynchronize(stream));
            var memsetOk = new ReadOnlySpan<byte>(dst, memsetBytes).IndexOfAnyExcept((byte)0xAB) < 0;
            var mismatch = Gpu.FirstMismatch(dst, bytes, memsetBytes);
            if (!memsetOk || mismatch >= 0)
            {
                throw new InvalidOperationException($"round trip verification failed (memset ok: {memsetOk}, first wrong word: {mismatch})");
            }
            var result = new Dictionary<string, object?>
            {
                ["device"] = ordinal,
                ["verified"] = true,
                ["h2dGBps"] = Gpu.GigabytesPerSecond(bytes, h2d),
                ["d2dGBps"] = Gpu.GigabytesPerSecond(2 * bytes, d2d),
                ["d2dNote"] = "bytes read plus bytes written",
                ["d2hGBps"] = Gpu.GigabytesPerSecond(bytes, d2h),
            };
            Console.WriteLine($"  round trip {bytes >> 20} MiB verified: H2D {result["h2dGBps"]:F1} GB/s, D2D {result["d2dGBps"]:F1} GB/s, D2H {result["d2hGBps"]:F1} GB/s");
            return result;
        }
        finally
        {
            Gpu.Check(Cuda.MemFree(a));
            Gpu.Check(Cuda.MemFree(b));
            Gpu.FreeHost(src);
            Gpu.FreeHost(dst);
            Gpu.Check(Cuda.StreamDestroy(stream));
        }
    }

    /// <summary>Peer access both ways, then timed cuMemcpyPeerAsync from device <paramref name="from"/> to
    /// <paramref name="to"/>, verified on the host.</summary>
    public static Dictionary<string, object?> PeerCopy(int from, int to, Options options)
    {
        var bytes = options.Bytes;
        int canFromTo, canToFrom, rank;
        var (fromDevice, toDevice) = (Gpu.Device(from), Gpu.Device(to));
        Gpu.Check(Cuda.DeviceCanAccessPeer(&canFromTo, fromDevice, toDevice));
        Gpu.Check(Cuda.DeviceCanAccessPeer(&canToFrom, toDevice, fromDevice));
        Gpu.Check(Cuda.DeviceGetP2PAttribute(&rank, CUdeviceP2PAttribute.PerformanceRank, fromDevice, toDevice));
        var ctxTo = Gpu.Activate(to);
        var ctxFrom = Gpu.Activate(from);
        string EnablePeer(CUcontext peer, int can)
        {
            if (can == 0) return "unsupported";
            var status = Cuda.CtxEnablePeerAccess(peer, 0);
            if (status == CUresult.ErrorPeerAccessAlreadyEnabled) return "already enabled";
            Gpu.Check(status, "Cuda.CtxEnablePeerAccess(peer, 0)");
            return "enabled";
        }
        var fromToAccess = EnablePeer(ctxTo, canFromTo);
        Gpu.Activate(to);
        var toFromAccess = EnablePeer(ctxFrom, canToFrom);

        Gpu.Activate(to);
        var dstDevice = Gpu.Alloc(bytes);
        Gpu.Activate(from);
        var stream = Gpu.CreateStream();
        var host = Gpu.AllocHost(bytes);
        var srcDevice = Gpu.Alloc(bytes);
        try
        {
            Gpu.Fill(host, bytes);
            Gpu.Check(Cuda.MemcpyHtoDAsync(srcDevice, host, (nuint)bytes, stream));
            Gpu.Check(Cuda.MemcpyPeerAsync(dstDevice, ctxTo, srcDevice, ctxFrom, (nuint)bytes, stream)); // warm-up
            var ms = Gpu.Time(stream, () =>
            {
                for (var i = 0; i < options.Iterations; i++)
                {
                    Gpu.Check(Cuda.MemcpyPeerAsync(dstDevice, ctxTo, srcDevice, ctxFrom, (nuint)bytes, stream));
                }
            });
            Gpu.Zero(host, bytes);
            Gpu.Check(Cuda.StreamSynchronize(stream));
            Gpu.Activate(to);
            Gpu.Check(Cuda.MemcpyDtoH(host, dstDevice, (nuint)bytes));
            var mismatch = Gpu.FirstMismatch(host, bytes);
            if (mismatch >= 0) throw new InvalidOperationException($"peer copy verification failed at word {mismatch}");
            var gbps = Gpu.GigabytesPerSecond(bytes * options.Iterations, ms);
            Console.WriteLine($"  peer copy {from}->{to}: {bytes >> 20} MiB x {options.Iterations} in {ms:F2} ms = {gbps:F1} GB/s (access {fromToAccess}/{toFromAccess}, rank {rank})");
            return new Dictionary<string, object?>
            {
                ["from"] = from,
                ["to"] = to,
                ["canAccessPeer"] = canFromTo == 1,
                ["canAccessPeerReverse"] = canToFrom == 1,
                ["peerAccess"] = fromToAccess,
                ["peerAccessReverse"] = toFromAccess,
                ["performanceRank"] = rank,
                ["milliseconds"] = (double)ms,
                ["gbps"] = gbps,
                ["gbpsNote"] = "bytes copied one way per second",
                ["verified"] = true,
            };
        }
        finally
        {
            Gpu.Activate(from);
            Gpu.Check(Cuda.MemFree(srcDevice));
            Gpu.FreeHost(host);
            Gpu.Check(Cuda.StreamDestroy(stream));
            Gpu.Activate(to);
            Gpu.Check(Cuda.MemFree(dstDevice));
        }
    }
}
