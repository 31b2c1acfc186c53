using ExpertBridge.Devices;

namespace ExpertBridge.GpuBench;

/// <summary>
/// IPC across two processes (the conformance suite can only check it within one, which real drivers refuse): rank 0
/// fills a buffer on its device 0 and exports it; rank 1 (this program again, same visible GPUs) imports the handle
/// from its standard input onto its device 0, checks the bytes, and overwrites them; rank 0 then sees rank 1's bytes.
/// </summary>
internal static class IpcBench
{
    private const long Bytes = 64L << 20;
    private const byte Written = 0x5a;
    private const byte Overwritten = 0xa5;

    public static Row RunRoot(DeviceRuntime runtime, BenchOptions options)
    {
        using var buffer = runtime.Allocate(0, Bytes);
        runtime.Fill(buffer.Memory, Written);
        var handle = runtime.Export(buffer);
        using var peer = PeerProcess.Start(["ipc", "--rank", "1", "--timeout-s", options.TimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), .. options.Emulated ? new[] { "--emulated" } : []]);
        peer.Send(handle.ToText());
        Row theirs;
        try
        {
            theirs = peer.Result(TimeSpan.FromSeconds(options.TimeoutSeconds));
        }
        catch (InvalidOperationException ex)
        {
            return new Row { ["name"] = "ipc-two-process", ["failed"] = true, ["reason"] = ex.Message };
        }

        var row = new Row
        {
            ["name"] = "ipc-two-process",
            ["bytes"] = Bytes,
            ["importer_read_exporter_bytes"] = (bool)theirs["read_ok"],
            ["exporter_sees_importer_writes"] = Holds(runtime, buffer.Memory, Overwritten),
        };
        row["failed"] = !(bool)row["importer_read_exporter_bytes"] || !(bool)row["exporter_sees_importer_writes"];
        Console.WriteLine(row);
        return row;
    }

    public static int RunPeer(DeviceRuntime runtime, BenchOptions options)
    {
        using var watchdog = new Timer(_ => Environment.Exit(4), null, TimeSpan.FromSeconds(options.TimeoutSeconds), Timeout.InfiniteTimeSpan);
        var handle = IpcMemoryHandle.Parse(PeerProcess.ReadLine());
        bool readOk;
        using (var mapped = runtime.Import(handle, 0))
        {
            readOk = Holds(runtime, mapped.Memory, Written);
            runtime.Fill(mapped.Memory, Overwritten);
        }

        PeerProcess.Report(new Row { ["read_ok"] = readOk });
        return 0;
    }

    /// <summary>The first and last 4 KiB and the middle 4 KiB all hold <paramref name="value"/>.</summary>
    private static bool Holds(DeviceRuntime runtime, DeviceMemory memory, byte value)
    {
        var data = new byte[4096];
        foreach (var offset in new[] { 0, (memory.Length / 2) - 2048, memory.Length - 4096 })
        {
            runtime.Download(memory.Slice(offset, data.Length), data);
            if (data.AsSpan().ContainsAnyExcept(value))
            {
                return false;
            }
        }

        return true;
    }
}
