using System.Globalization;

namespace ExpertBridge.GpuBench;

/// <summary>Command-line options of GpuBench.</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        usage: ExpertBridge.GpuBench <verb> [options]
          conformance      the conformance suite on the real CUDA backend
          relocation       relocation within a device, between two devices (peer) and a DeepSeek-V3-sized move, each
                           beside a plain driver copy of the same bytes
          cross-process    two processes, one GPU each: relocation over NCCL beside a plain NCCL send/recv
          ipc              two processes: device memory exported by one, imported, read and written by the other
          compute          compute slowdown of a busy stream while relocation runs beside it (needs --ptx)
        options: --json FILE  --layers 58  --experts 16  --expert-mb 44  --ptx FILE  --seconds 1
                 --timeout-s 300  --emulated (relocation and conformance on the CUDA emulator, without a GPU)
                 --cap-gbps X  relocation bandwidth cap per device in GB/s (within-device and between-devices
                               budgets; 0: unlimited, the default). compute takes a list: the within-device scenario
                               runs once per cap (default 0,800,400,200,100); the peer scenario runs unlimited
        """;

    /// <summary>The caps the compute verb's within-device scenario runs at by default (GB/s, 0: unlimited).</summary>
    public static readonly IReadOnlyList<double> DefaultComputeCaps = [0, 800, 400, 200, 100];

    public string Verb { get; private init; } = "help";

    public string? Json { get; private init; }

    public int Layers { get; private init; } = 58;

    public int Experts { get; private init; } = 16;

    public long ExpertBytes { get; private init; } = 44L << 20;

    public string? Ptx { get; private init; }

    public double Seconds { get; private init; } = 1;

    public int TimeoutSeconds { get; private init; } = 300;

    public int Rank { get; private init; }

    public bool Emulated { get; private init; }

    /// <summary>Relocation bandwidth caps in GB/s (0: unlimited); one value except for compute.</summary>
    public IReadOnlyList<double> CapsGBps { get; private init; } = [0];

    /// <summary>The single cap of a verb other than compute, in bytes per second (null: unlimited).</summary>
    public long? CapBytesPerSecond => ToBytesPerSecond(CapsGBps[0]);

    /// <summary>GB/s (10^9 bytes per second) to the engine's bytes per second; 0: unlimited (null).</summary>
    public static long? ToBytesPerSecond(double gbps) => gbps > 0 ? (long)Math.Round(gbps * 1e9) : null;

    /// <summary>Parses the arguments; throws <see cref="FormatException"/> naming the option and the rule.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        string? json = null, ptx = null;
        int layers = 58, experts = 16, expertMb = 44, timeout = 300, rank = 0;
        double seconds = 1;
        var emulated = false;
        IReadOnlyList<double>? caps = null;
        for (var i = 1; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--json": json = Value(args, ref i); break;
                case "--ptx": ptx = Value(args, ref i); break;
                case "--layers": layers = Int(args, ref i, 1); break;
                case "--experts": experts = Int(args, ref i, 1); break;
                case "--expert-mb": expertMb = Int(args, ref i, 1); break;
                case "--timeout-s": timeout = Int(args, ref i, 10); break;
                case "--rank": rank = Int(args, ref i, 0); break;
                case "--seconds":
                    var text = Value(args, ref i);
                    if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) || seconds <= 0)
                    {
                        throw new FormatException($"--seconds: a positive number, got '{text}'");
                    }

                    break;
                case "--emulated": emulated = true; break;
                case "--cap-gbps": caps = Caps(args, ref i); break;
                default: throw new FormatException($"unknown option '{args[i]}'");
            }
        }

        var verb = args.Count > 0 ? args[0] : "help";
        if (caps is { Count: > 1 } && verb != "compute")
        {
            throw new FormatException($"--cap-gbps: one value for {verb} (a list only for compute)");
        }

        return new BenchOptions
        {
            Verb = verb,
            CapsGBps = caps ?? (verb == "compute" ? DefaultComputeCaps : [0]),
            Json = json,
            Ptx = ptx,
            Layers = layers,
            Experts = experts,
            ExpertBytes = (long)expertMb << 20,
            TimeoutSeconds = timeout,
            Rank = rank,
            Seconds = seconds,
            Emulated = emulated,
        };
    }

    private static string Value(IReadOnlyList<string> args, ref int i) =>
        i + 1 < args.Count ? args[++i] : throw new FormatException($"{args[i]}: the value is missing");

    private static List<double> Caps(IReadOnlyList<string> args, ref int i)
    {
        var text = Value(args, ref i);
        var caps = new List<double>();
        foreach (var part in text.Split(','))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var gbps) || !double.IsFinite(gbps) || gbps < 0 || gbps > 1e6)
            {
                throw new FormatException($"--cap-gbps: GB/s values 0 (unlimited) to 1000000, comma-separated, got '{text}'");
            }

            caps.Add(gbps);
        }

        return caps;
    }

    private static int Int(IReadOnlyList<string> args, ref int i, int min)
    {
        var option = args[i];
        var text = Value(args, ref i);
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
            ? v
            : throw new FormatException($"{option}: an integer >= {min}, got '{text}'");
    }
}
