using System.Globalization;
using ExpertBridge.Core;

namespace ExpertBridge.Devices.Conformance;

/// <summary>
/// <c>expertbridge conformance --backend host|cuda|cann [--emulated] [--json FILE] [--bytes N] [--only a,b] [--host-devices N]</c>:
/// runs <see cref="ConformanceSuite"/> on this machine, prints the pass/fail table with bandwidth figures and writes
/// the JSON report. The CLI forwards the verb's arguments here. User mistakes throw <see cref="InputException"/>.
/// </summary>
public static class ConformanceCommand
{
    public const string Usage = "usage: expertbridge conformance --backend host|cuda|cann [--emulated] [--json FILE] [--bytes N] [--only check,check] [--host-devices N]";

    /// <summary>Runs the verb; returns 0 when no check failed, 1 otherwise (also when the backend cannot be opened).</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        var backend = DeviceBackend.Host;
        var emulated = false;
        string? json = null;
        var options = new ConformanceOptions();
        var hostDevices = 2;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--backend":
                    backend = Value(args, ref i) switch
                    {
                        "host" => DeviceBackend.Host,
                        "cuda" => DeviceBackend.Cuda,
                        "cann" => DeviceBackend.Cann,
                        var other => throw new InputException("--backend", "host, cuda or cann", $"got '{other}'"),
                    };
                    break;
                case "--emulated":
                    emulated = true;
                    break;
                case "--json":
                    json = Value(args, ref i);
                    break;
                case "--bytes":
                    options = new ConformanceOptions { BandwidthBytes = Number(args, ref i, 4096), ExpertBytes = options.ExpertBytes, Only = options.Only };
                    break;
                case "--only":
                    var only = Value(args, ref i).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    foreach (var name in only.Where(n => !ConformanceSuite.Names.Contains(n)))
                    {
                        throw new InputException("--only", $"checks among {string.Join(", ", ConformanceSuite.Names)}", $"unknown check '{name}'");
                    }

                    options = new ConformanceOptions { BandwidthBytes = options.BandwidthBytes, ExpertBytes = options.ExpertBytes, Only = only };
                    break;
                case "--host-devices":
                    hostDevices = (int)Number(args, ref i, 1);
                    break;
                default:
                    throw new InputException(args[i], "a conformance option", Usage);
            }
        }

        if (emulated && backend == DeviceBackend.Host)
        {
            throw new InputException("--emulated", "only with --backend cuda or cann", "the host backend is not an emulator");
        }

        DeviceRuntime runtime;
        try
        {
            runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { Backend = backend, Emulated = emulated, HostDevices = hostDevices });
        }
        catch (DeviceException ex)
        {
            output.WriteLine($"conformance: backend not available: {ex.Message}");
            return 1;
        }

        using (runtime)
        {
            var report = ConformanceSuite.Run(runtime, options);
            output.Write(report.ToTable());
            if (json is not null)
            {
                File.WriteAllText(json, report.ToJson());
                output.WriteLine($"wrote {json}");
            }

            return report.Failed == 0 ? 0 : 1;
        }
    }

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        if (i + 1 >= args.Count)
        {
            throw new InputException(args[i], "an option followed by its value", "the value is missing");
        }

        return args[++i];
    }

    private static long Number(IReadOnlyList<string> args, ref int i, long min)
    {
        var option = args[i];
        var text = Value(args, ref i);
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min)
        {
            throw new InputException(option, $"an integer >= {min}", $"got '{text}'");
        }

        return v;
    }
}
