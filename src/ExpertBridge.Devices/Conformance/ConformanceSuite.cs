using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices.Conformance;

/// <summary>Pass, fail or skip of one conformance check.</summary>
public enum CheckStatus
{
    Passed,
    Failed,
    Skipped,
}

/// <summary>One check's result; <see cref="Figures"/> holds measurements such as <c>GB/s</c>.</summary>
public sealed record CheckResult(string Name, CheckStatus Status, TimeSpan Duration, string Message, IReadOnlyDictionary<string, double> Figures);

/// <summary>Options of a conformance run.</summary>
public sealed class ConformanceOptions
{
    /// <summary>Bytes moved by each bandwidth figure.</summary>
    public long BandwidthBytes { get; init; } = 16L << 20;

    /// <summary>Bytes of one expert in the relocation checks (split over three tensors of odd sizes).</summary>
    public long ExpertBytes { get; init; } = 64 << 10;

    /// <summary>Only the checks whose names are listed (null: all).</summary>
    public IReadOnlyCollection<string>? Only { get; init; }
}

/// <summary>All results of one run against one runtime.</summary>
public sealed class ConformanceReport
{
    internal ConformanceReport(string backend, IReadOnlyList<DeviceInfo> devices, IReadOnlyList<CheckResult> results)
    {
        Backend = backend;
        Devices = devices;
        Results = results;
    }

    public string Backend { get; }

    public IReadOnlyList<DeviceInfo> Devices { get; }

    public IReadOnlyList<CheckResult> Results { get; }

    public int Passed => Results.Count(r => r.Status == CheckStatus.Passed);

    public int Failed => Results.Count(r => r.Status == CheckStatus.Failed);

    public int Skipped => Results.Count(r => r.Status == CheckStatus.Skipped);

    /// <summary>A fixed-width pass/fail table with the figures, then the totals line.</summary>
    public string ToTable()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"backend: {Backend}; devices: {string.Join("; ", Devices.Select(d => $"{d.Ordinal}: {d.Name} ({d.TotalMemory >> 20} MiB)"))}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"check",-28} {"result",-7} {"ms",8}  figures / message");
        foreach (var r in Results)
        {
            var figures = string.Join(", ", r.Figures.Select(f => string.Create(CultureInfo.InvariantCulture, $"{f.Key} {f.Value:0.###}")));
            var text = r.Status == CheckStatus.Passed ? figures : $"{r.Message}{(figures.Length > 0 ? "; " + figures : "")}";
            sb.AppendLine(CultureInfo.InvariantCulture, $"{r.Name,-28} {Word(r.Status),-7} {r.Duration.TotalMilliseconds,8:0.0}  {text}");
        }

        sb.AppendLine(CultureInfo.InvariantCulture, $"conformance: {Passed} passed, {Failed} failed, {Skipped} skipped");
        return sb.ToString();
    }

    /// <summary>JSON with <c>backend</c>, <c>passed</c>, <c>failed</c>, <c>skipped</c>, <c>devices</c> and per-test
    /// <c>tests</c> (<c>name</c>, <c>result</c> pass/fail/skip, <c>ms</c>, <c>message</c>, <c>figures</c>).</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("backend", Backend);
            w.WriteNumber("passed", Passed);
            w.WriteNumber("failed", Failed);
            w.WriteNumber("skipped", Skipped);
            w.WriteStartArray("devices");
            foreach (var d in Devices)
            {
                w.WriteStartObject();
                w.WriteNumber("ordinal", d.Ordinal);
                w.WriteString("name", d.Name);
                w.WriteNumber("memory", d.TotalMemory);
                w.WriteString("busId", d.BusId);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("tests");
            foreach (var r in Results)
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteString("result", r.Status switch { CheckStatus.Passed => "pass", CheckStatus.Failed => "fail", _ => "skip" });
                w.WriteNumber("ms", Math.Round(r.Duration.TotalMilliseconds, 3));
                w.WriteString("message", r.Message);
                w.WriteStartObject("figures");
                foreach (var f in r.Figures)
                {
                    w.WriteNumber(f.Key, Math.Round(f.Value, 6));
                }

                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string Word(CheckStatus s) => s switch
    {
        CheckStatus.Passed => "pass",
        CheckStatus.Failed => "FAIL",
        _ => "skip",
    };
}

/// <summary>
/// The device conformance checks, written once and run against any <see cref="DeviceRuntime"/>: by the xunit
/// contract classes (one thin class per backend) and by <c>expertbridge conformance</c> on an operator's hardware.
/// </summary>
public static class ConformanceSuite
{
    /// <summary>Check names in run order.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "enumerate",
        "allocation-limits",
        "copy-odd-sizes",
        "stream-order-events",
        "peer-copy",
        "error-mapping",
        "host-bandwidth",
        "device-bandwidth",
        "ipc-export-import",
        "relocation-bit-exact",
        "relocation-bandwidth-cap",
        "relocation-failed-copy",
        "relocation-out-of-memory",
        "relocation-timeout",
        "relocation-under-compute",
    ];

    /// <summary>Runs the checks (all, or <see cref="ConformanceOptions.Only"/>) in order.</summary>
    public static ConformanceReport Run(DeviceRuntime runtime, ConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        options ??= new ConformanceOptions();
        var results = new List<CheckResult>();
        foreach (var name in Names)
        {
            if (options.Only is null || options.Only.Contains(name))
            {
                results.Add(RunOne(runtime, name, options));
            }
        }

        return new ConformanceReport(runtime.Name, runtime.Devices, results);
    }

    /// <summary>Runs one check; never throws for a failure of the backend (that is a failed result).</summary>
    public static CheckResult RunOne(DeviceRuntime runtime, string name, ConformanceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        options ??= new ConformanceOptions();
        var check = new Check(runtime, options);
        var clock = Stopwatch.StartNew();
        try
        {
            Action body = name switch
            {
                "enumerate" => check.Enumerate,
                "allocation-limits" => check.AllocationLimits,
                "copy-odd-sizes" => check.CopyOddSizes,
                "stream-order-events" => check.StreamOrderAndEvents,
                "peer-copy" => check.PeerCopy,
                "error-mapping" => check.ErrorMapping,
                "host-bandwidth" => check.HostBandwidth,
                "device-bandwidth" => check.DeviceBandwidth,
                "ipc-export-import" => check.IpcExportImport,
                "relocation-bit-exact" => check.RelocationBitExact,
                "relocation-bandwidth-cap" => check.RelocationBandwidthCap,
                "relocation-failed-copy" => check.RelocationFailedCopy,
                "relocation-out-of-memory" => check.RelocationOutOfMemory,
                "relocation-timeout" => check.RelocationTimeout,
                "relocation-under-compute" => check.RelocationUnderCompute,
                _ => throw new InputException("--only", $"one of {string.Join(", ", Names)}", $"unknown check '{name}'"),
            };
            body();
            return new CheckResult(name, CheckStatus.Passed, clock.Elapsed, "", check.Figures);
        }
        catch (CheckSkippedException ex)
        {
            return new CheckResult(name, CheckStatus.Skipped, clock.Elapsed, ex.Message, check.Figures);
        }
        catch (Exception ex) when (ex is CheckFailedException or DeviceException or InvalidOperationException or ArgumentException or TimeoutException)
        {
            return new CheckResult(name, CheckStatus.Failed, clock.Elapsed, ex.Message, check.Figures);
        }
        finally
        {
            runtime.Faults?.Reset();
        }
    }
}

internal sealed class CheckSkippedException(string message) : Exception(message);

internal sealed class CheckFailedException(string message) : Exception(message);
