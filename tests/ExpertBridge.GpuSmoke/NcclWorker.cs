using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ExpertBridge.Interop.Cuda;
using ExpertBridge.Interop.Nccl;

namespace ExpertBridge.GpuSmoke;

/// <summary>
/// NCCL send/recv between two processes, one GPU each: rank 0 (this process) creates the ncclUniqueId, writes it to a
/// file and starts this program again as rank 1 with <c>--nccl-rank 1 --id-file F --result R</c>; rank 0 sends
/// the pattern <c>iterations</c> times, rank 1 receives, times and verifies, and writes its result to R.
/// </summary>
internal static unsafe class NcclWorker
{
    private static void Check(NcclResult status, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(status))] string? expression = null) =>
        NcclException.ThrowIfFailed(status, expression);

    public static Dictionary<string, object?> RunRoot(Options options)
    {
        int version;
        Check(Nccl.GetVersion(&version));
        var dir = Path.Combine(Path.GetTempPath(), "eb-gpusmoke-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        var idFile = Path.Combine(dir, "nccl-unique-id.bin");
        var resultFile = Path.Combine(dir, "rank1.json");
        File.Delete(resultFile);
        NcclUniqueId id;
        Check(Nccl.GetUniqueId(&id));
        File.WriteAllBytes(idFile, new ReadOnlySpan<byte>(id.@internal, Nccl.NCCL_UNIQUE_ID_BYTES).ToArray());

        using var peer = StartPeer(options, idFile, resultFile);
        float sendMs;
        Gpu.Activate(0);
        var stream = Gpu.CreateStream();
        var buffer = Gpu.Alloc(options.Bytes);
        var host = Gpu.AllocHost(options.Bytes);
        try
        {
            Gpu.Fill(host, options.Bytes);
            Gpu.Check(Cuda.MemcpyHtoD(buffer, host, (nuint)options.Bytes));
            var comm = InitRank(id, 0);
            int count, rank;
            Check(Nccl.CommCount(comm, &count));
            Check(Nccl.CommUserRank(comm, &rank));
            if (count != 2 || rank != 0) throw new InvalidOperationException($"communicator reports {count} ranks, rank {rank}");
            Send(comm, buffer, options.Bytes, stream); // warm-up
            sendMs = Gpu.Time(stream, () =>
            {
                for (var i = 0; i < options.Iterations; i++) Send(comm, buffer, options.Bytes, stream);
            });
            NcclResult asyncError;
            Check(Nccl.CommGetAsyncError(comm, &asyncError));
            Check(asyncError, "ncclCommGetAsyncError");
            Check(Nccl.CommDestroy(comm));
        }
        finally
        {
            Gpu.Check(Cuda.MemFree(buffer));
            Gpu.FreeHost(host);
            Gpu.Check(Cuda.StreamDestroy(stream));
        }
        if (!peer.WaitForExit(TimeSpan.FromSeconds(options.TimeoutSeconds))) throw new InvalidOperationException("rank 1 did not exit");
        if (peer.ExitCode != 0 || !File.Exists(resultFile))
        {
            throw new InvalidOperationException($"rank 1 exited with {peer.ExitCode}{(File.Exists(resultFile) ? ": " + File.ReadAllText(resultFile) : "")}");
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(resultFile));
        var r1 = doc.RootElement;
        var result = new Dictionary<string, object?>
        {
            ["ncclVersion"] = version,
            ["ranks"] = 2,
            ["devices"] = "rank 0 on GPU 0, rank 1 on GPU 1, one process each",
            ["bytes"] = options.Bytes,
            ["iterations"] = options.Iterations,
            ["senderMilliseconds"] = (double)sendMs,
            ["receiverMilliseconds"] = r1.GetProperty("milliseconds").GetDouble(),
            ["gbps"] = r1.GetProperty("gbps").GetDouble(),
            ["gbpsNote"] = "bytes received per second at rank 1",
            ["verified"] = r1.GetProperty("verified").GetBoolean(),
        };
        Console.WriteLine($"  nccl {version}: {options.Bytes >> 20} MiB x {options.Iterations} rank 0 -> rank 1 = {result["gbps"]:F1} GB/s, verified {result["verified"]}");
        if (!(bool)result["verified"]!) throw new InvalidOperationException("rank 1 received wrong data");
        return result;
    }

    private static NcclComm InitRank(NcclUniqueId id, int rank)
    {
        NcclComm comm;
        Check(Nccl.CommInitRank(&comm, 2, id, rank));
        return comm;
    }

    private static void Send(NcclComm comm, ulong buffer, long bytes, CUstream stream)
    {
        Check(Nccl.GroupStart());
        Check(Nccl.Send((void*)buffer, (nuint)bytes, NcclDataType.Uint8, 1, comm, stream));
        Check(Nccl.GroupEnd());
    }

    private static Process StartPeer(Options options, string idFile, string resultFile)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this program's path");
        var psi = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(NcclWorker).Assembly.Location);
        foreach (var a in new[]
        {
            "--nccl-rank", "1", "--id-file", idFile, "--result", resultFile,
            "--bytes", options.Bytes.ToString(CultureInfo.InvariantCulture),
            "--iterations", options.Iterations.ToString(CultureInfo.InvariantCulture),
            "--timeout-s", options.TimeoutSeconds.ToString(CultureInfo.InvariantCulture),
        })
        {
            psi.ArgumentList.Add(a);
        }
        return Process.Start(psi) ?? throw new InvalidOperationException($"could not start {self}");
    }

    /// <summary>Rank 1: receive, time, verify, write the result file. Exit code 0 when the data arrived intact.</summary>
    public static int RunPeer(Options options, int rank)
    {
        using var watchdog = new Timer(_ => Environment.Exit(4), null, TimeSpan.FromSeconds(options.TimeoutSeconds), Timeout.InfiniteTimeSpan);
        var result = new Dictionary<string, object?> { ["rank"] = rank };
        try
        {
            var idBytes = File.ReadAllBytes(options.IdFile ?? throw new FormatException("--id-file: required with --nccl-rank"));
            if (idBytes.Length != Nccl.NCCL_UNIQUE_ID_BYTES) throw new InvalidOperationException($"{options.IdFile}: {idBytes.Length} bytes, expected {Nccl.NCCL_UNIQUE_ID_BYTES}");
            NcclUniqueId id;
            idBytes.CopyTo(new Span<byte>(id.@internal, Nccl.NCCL_UNIQUE_ID_BYTES));
            Gpu.Activate(rank);
            var stream = Gpu.CreateStream();
            var buffer = Gpu.Alloc(options.Bytes);
            var host = Gpu.AllocHost(options.Bytes);
            var comm = InitRank(id, rank);
            Gpu.Check(Cuda.MemsetD8(buffer, 0, (nuint)options.Bytes));
            Receive(comm, buffer, options.Bytes, stream); // warm-up
            var ms = Gpu.Time(stream, () =>
            {
                for (var i = 0; i < options.Iterations; i++) Receive(comm, buffer, options.Bytes, stream);
            });
            Gpu.Check(Cuda.MemcpyDtoH(host, buffer, (nuint)options.Bytes));
            var mismatch = Gpu.FirstMismatch(host, options.Bytes);
            result["milliseconds"] = (double)ms;
            result["gbps"] = Gpu.GigabytesPerSecond(options.Bytes * options.Iterations, ms);
            result["verified"] = mismatch < 0;
            result["firstWrongWord"] = mismatch;
            Check(Nccl.CommDestroy(comm));
            Gpu.Check(Cuda.MemFree(buffer));
            Gpu.FreeHost(host);
            Gpu.Check(Cuda.StreamDestroy(stream));
        }
        catch (Exception e) when (e is CudaException or NcclException or InvalidOperationException or IOException or FormatException)
        {
            result["error"] = e.Message;
            Console.Error.WriteLine($"rank {rank}: {e.Message}");
        }
        var report = new Report();
        foreach (var (k, v) in result) report.Set(k, v);
        report.Write(options.ResultFile ?? "rank1.json");
        return result.ContainsKey("error") || result["verified"] is not true ? 1 : 0;
    }

    private static void Receive(NcclComm comm, ulong buffer, long bytes, CUstream stream)
    {
        Check(Nccl.GroupStart());
        Check(Nccl.Recv((void*)buffer, (nuint)bytes, NcclDataType.Uint8, 0, comm, stream));
        Check(Nccl.GroupEnd());
    }
}
