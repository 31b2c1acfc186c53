using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ExpertBridge.Interop.Cuda;
using ExpertBridge.Interop.Nccl;

namespace ExpertBridge.GpuSmoke;

/// <summary>
/// Smoke test of the generated CUDA and NCCL bindings on a GPU machine: device query, allocation and a verified
/// H2D / D2D / memset / D2H round trip with bandwidths, a verified peer copy between two GPUs with its bandwidth,
/// and an NCCL send/recv between two processes (this program starts itself as rank 1). Results are printed and
/// written as JSON. Exit code 0 when every stage that could run passed, 1 when one failed, 2 on a usage mistake,
/// 3 when no CUDA driver library is present.
/// </summary>
internal static class SmokeProgram
{
    private const string Usage = "usage: ExpertBridge.GpuSmoke --json <path> [--bytes N] [--iterations K] [--timeout-s S]";

    public static int Main(string[] args)
    {
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"{e.Message} ({Usage})");
            return 2;
        }
        if (options.NcclRank is int rank) return NcclWorker.RunPeer(options, rank);

        var report = new Report();
        report.Set("tool", "ExpertBridge.GpuSmoke");
        report.Set("startedUtc", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        report.Set("bytes", options.Bytes);
        report.Set("iterations", options.Iterations);
        if (!Cuda.IsSupported)
        {
            report.Set("cudaLibrary", Cuda.LibraryProbe.FailureMessage);
            Console.Error.WriteLine(Cuda.LibraryProbe.FailureMessage);
            report.Write(options.JsonPath);
            return 3;
        }
        report.Set("cudaLibrary", Cuda.LibraryProbe.LoadedPath);
        report.Set("ncclLibrary", Nccl.IsSupported ? Nccl.LibraryProbe.LoadedPath : Nccl.LibraryProbe.FailureMessage);

        // A watchdog: a hung collective must not hang the run; what was measured is still written.
        using var watchdog = new Timer(_ =>
        {
            report.Fail("watchdog", $"no result within {options.TimeoutSeconds} s");
            report.Write(options.JsonPath);
            Environment.Exit(1);
        }, null, TimeSpan.FromSeconds(options.TimeoutSeconds), Timeout.InfiniteTimeSpan);

        var devices = report.Stage("devices", DeviceStages.Query);
        if (devices is { Count: > 0 })
        {
            report.Stage("roundTrip", () => DeviceStages.RoundTrip(0, options));
            if (devices.Count >= 2)
            {
                report.Stage("peerCopy", () => DeviceStages.PeerCopy(0, 1, options));
                if (Nccl.IsSupported) report.Stage("ncclSendRecv", () => NcclWorker.RunRoot(options));
                else report.Skip("ncclSendRecv", Nccl.LibraryProbe.FailureMessage ?? "NCCL absent");
            }
            else
            {
                report.Skip("peerCopy", "one GPU visible");
                report.Skip("ncclSendRecv", "one GPU visible (NCCL needs one GPU per rank)");
            }
        }
        report.Set("finishedUtc", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        report.Set("ok", report.Ok);
        report.Write(options.JsonPath);
        Console.WriteLine(report.Ok ? "gpu smoke: all stages passed" : "gpu smoke: a stage failed");
        return report.Ok ? 0 : 1;
    }
}

internal sealed record Options(string JsonPath, long Bytes, int Iterations, int TimeoutSeconds, int? NcclRank, string? IdFile, string? ResultFile)
{
    public static Options Parse(string[] args)
    {
        string? json = null, idFile = null, result = null;
        long bytes = 256L << 20;
        int iterations = 20, timeout = 300;
        int? rank = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]}: needs a value");
            long Number(string name, long min)
            {
                var text = Value();
                return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min
                    ? n
                    : throw new FormatException($"{name} {text}: must be an integer >= {min}");
            }
            switch (args[i])
            {
                case "--json": json = Value(); break;
                case "--bytes": bytes = Number("--bytes", 4096); break;
                case "--iterations": iterations = (int)Number("--iterations", 1); break;
                case "--timeout-s": timeout = (int)Number("--timeout-s", 10); break;
                case "--nccl-rank": rank = (int)Number("--nccl-rank", 1); break;
                case "--id-file": idFile = Value(); break;
                case "--result": result = Value(); break;
                default: throw new FormatException($"{args[i]}: unknown argument");
            }
        }
        if (json is null && rank is null) throw new FormatException("--json: required");
        if (bytes % 8 != 0) throw new FormatException($"--bytes {bytes}: must be a multiple of 8");
        return new Options(json ?? "", bytes, iterations, timeout, rank, idFile, result);
    }
}

/// <summary>The JSON report, built as stages finish; thread-safe because the watchdog may write it.</summary>
internal sealed class Report
{
    private readonly Dictionary<string, object?> _values = [];
    private readonly Lock _lock = new();

    public bool Ok { get; private set; } = true;

    public void Set(string key, object? value)
    {
        lock (_lock) _values[key] = value;
    }

    public void Skip(string stage, string reason)
    {
        Console.WriteLine($"{stage}: skipped ({reason})");
        Set(stage, new Dictionary<string, object?> { ["status"] = "skipped", ["reason"] = reason });
    }

    public void Fail(string stage, string error)
    {
        Console.WriteLine($"{stage}: FAILED {error}");
        lock (_lock)
        {
            Ok = false;
            _values[stage] = new Dictionary<string, object?> { ["status"] = "failed", ["error"] = error };
        }
    }

    public T? Stage<T>(string name, Func<T> run) where T : class
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var result = run();
            Console.WriteLine($"{name}: ok ({sw.Elapsed.TotalSeconds:F2} s)");
            Set(name, result);
            return result;
        }
        catch (Exception e) when (e is CudaException or NcclException or InvalidOperationException or IOException
            or DllNotFoundException or EntryPointNotFoundException)
        {
            Fail(name, e.Message);
            return null;
        }
    }

    public void Write(string path)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            lock (_lock) WriteValue(w, _values);
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllBytes(path, stream.ToArray());
        Console.WriteLine($"wrote {path}");
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case int i: w.WriteNumberValue(i); break;
            case long l: w.WriteNumberValue(l); break;
            case ulong u: w.WriteNumberValue(u); break;
            case double d: w.WriteNumberValue(Math.Round(d, 3)); break;
            case IDictionary<string, object?> map:
                w.WriteStartObject();
                foreach (var (k, v) in map)
                {
                    w.WritePropertyName(k);
                    WriteValue(w, v);
                }
                w.WriteEndObject();
                break;
            case System.Collections.IEnumerable list:
                w.WriteStartArray();
                foreach (var v in list) WriteValue(w, v);
                w.WriteEndArray();
                break;
            default: w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }
}
