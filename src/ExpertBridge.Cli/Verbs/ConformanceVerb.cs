using System.Globalization;
using ExpertBridge.Cli.Arguments;
using ExpertBridge.Devices.Conformance;

namespace ExpertBridge.Cli.Verbs;

/// <summary>
/// <c>conformance</c>: the device conformance suite on this machine's backend (<see cref="ConformanceCommand"/>):
/// a pass/fail table with bandwidth figures and optionally the JSON report.
/// </summary>
internal sealed class ConformanceVerb : Verb
{
    private static readonly Dictionary<string, string> s_backends = new(StringComparer.OrdinalIgnoreCase)
    {
        ["host"] = "host",
        ["cuda"] = "cuda",
        ["cann"] = "cann",
    };

    private static readonly CliOption<string> s_backend = Option.Choice("--backend", "the backend to check: host (CPU memory), cuda (libcuda.so.1) or cann (libascendcl.so)", s_backends).WithDefault("host");
    private static readonly CliOption<bool> s_emulated = Option.Flag("--emulated", "bind ExpertBridge's emulator of the vendor library (artifacts/native, or $EXPERTBRIDGE_EMULATOR_DIR) instead of the real one");
    private static readonly CliOption<string> s_json = Option.OutputFile("--json", "write the report as JSON: backend, passed, failed, skipped, devices, tests [{name, result, ms, message, figures}]");
    private static readonly CliOption<long> s_bytes = Option.Long("--bytes", "N", "bytes moved by each bandwidth figure", min: 4096).WithDefault("16 MiB");
    private static readonly CliOption<string> s_only = Option.Text("--only", "A,B", $"run only these checks: {string.Join(", ", ConformanceSuite.Names)}");
    private static readonly CliOption<int> s_hostDevices = Option.Int("--host-devices", "N", "devices the host backend simulates", min: 1, max: 64).WithDefault("2");

    public override string Name => "conformance";

    public override string Summary => "run the device conformance suite on a backend: pass/fail table with bandwidth, JSON report";

    public override string Description =>
        "Tells whether a backend can be trusted with live expert relocation: enumeration, allocation limits, copies of odd "
        + "sizes and alignments, peer copies, stream order and events, error mapping, host and device bandwidth, IPC, "
        + "relocation bit-exactness, copy-then-commit under injected faults (failed copy, out of memory, timeout; the "
        + "mapping must not change and buffers must be freed) and relocation beside a busy compute stream. Checks that "
        + "need what the machine lacks (a second device for peer copies, fault injection on real hardware) are skipped "
        + "with the reason."
        + Environment.NewLine + Environment.NewLine
        + "Exit code 0 when no check failed; 1 when a check failed or the backend cannot be opened here (the reason is printed).";

    public override string Example => "expertbridge conformance --backend cuda --json conformance.json";

    public override IReadOnlyList<CliOption> Options { get; } = [s_backend, s_emulated, s_json, s_bytes, s_only, s_hostDevices];

    public override int Execute(ParsedArguments args, CliContext context) =>
        ConformanceCommand.Run(ForwardedArguments(args), context.Stdout);

    /// <summary>The parsed (and so already checked) options, in ConformanceCommand's syntax.</summary>
    private static List<string> ForwardedArguments(ParsedArguments args)
    {
        var forwarded = new List<string> { "--backend", args.Get(s_backend, "host") };
        if (args.Has(s_emulated))
        {
            forwarded.Add("--emulated");
        }

        if (args.TryGet(s_json, out var json))
        {
            forwarded.AddRange(["--json", json]);
        }

        if (args.TryGet(s_bytes, out var bytes))
        {
            forwarded.AddRange(["--bytes", bytes.ToString(CultureInfo.InvariantCulture)]);
        }

        if (args.TryGet(s_only, out var only))
        {
            forwarded.AddRange(["--only", only]);
        }

        if (args.TryGet(s_hostDevices, out var devices))
        {
            forwarded.AddRange(["--host-devices", devices.ToString(CultureInfo.InvariantCulture)]);
        }

        return forwarded;
    }
}
