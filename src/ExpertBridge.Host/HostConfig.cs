using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using ExpertBridge.Core.Policies;
using ExpertBridge.Scripting;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Host;

/// <summary>Which device layer moves expert weights.</summary>
public enum BackendKind
{
    /// <summary>Weights in host memory of this process; copies with memcpy (the default, and the example's).</summary>
    Host,

    /// <summary>No weights are moved: the mapping changes only (simulation, replay, a server that moves weights itself).</summary>
    None,

    /// <summary>CUDA device memory (peer copies); provided by the device layer.</summary>
    Cuda,

    /// <summary>Ascend device memory (CANN); provided by the device layer.</summary>
    Cann,
}

/// <summary>When to rebalance. Every key is documented in docs/host.md.</summary>
public sealed record RebalanceConfig
{
    /// <summary>Rebalance every this many steps (0: never on cadence).</summary>
    public int CadenceSteps { get; init; }

    /// <summary>Rebalance when the mean imbalance over layers of the window exceeds this (0: no trigger).</summary>
    public double ImbalanceTrigger { get; init; } = 1.3;

    /// <summary>Evaluate the trigger and refresh the balance metrics every this many steps.</summary>
    public int CheckEverySteps { get; init; } = 50;

    /// <summary>Steps of history kept and shown to the policy; the trigger and the metrics read the same window.</summary>
    public int WindowSteps { get; init; } = 512;

    /// <summary>No rebalance before this many steps are recorded.</summary>
    public int WarmupSteps { get; init; } = 100;

    /// <summary>At least this many steps between the end of one rebalance and the start of the next (trigger only).</summary>
    public int MinStepsBetween { get; init; } = 200;
}

/// <summary>Caps on what one rebalance may move; layers with the largest gain go first.</summary>
public sealed record MoveBudgetConfig
{
    /// <summary>Most (layer, slot) changes per rebalance (0: no cap).</summary>
    public int MaxExpertsPerRebalance { get; init; }

    /// <summary>Most bytes copied per rebalance (0: no cap).</summary>
    public long MaxBytesPerRebalance { get; init; }

    /// <summary>Most layers committed at one step boundary (0: every staged layer).</summary>
    public int MaxLayersPerBoundary { get; init; } = 1;
}

/// <summary>The device layer's settings for backend <c>cuda</c> / <c>cann</c> (docs/host.md, key <c>device</c>).</summary>
public sealed record DeviceConfig
{
    /// <summary>Bind ExpertBridge's emulator of the vendor library instead of the driver (CI, machines without accelerators).</summary>
    public bool Emulated { get; init; }

    /// <summary>Compare a checksum of every moved expert with its source before its layer counts as staged.</summary>
    public bool Verify { get; init; }

    /// <summary>Dedicated low-priority copy streams per device.</summary>
    public int CopyStreamsPerDevice { get; init; } = 2;

    /// <summary>Copies in flight per device (as source or target).</summary>
    public int MaxInFlightPerDevice { get; init; } = 4;

    /// <summary>A copy not finished this long after it was enqueued fails its layer (the mapping in force stays).</summary>
    public TimeSpan TransferTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Bytes per second a device may spend on relocation copies within itself (0: unlimited).</summary>
    public long WithinDeviceBytesPerSecond { get; init; }

    /// <summary>Bytes per second a device may send or receive in relocation transfers to or from other devices (0: unlimited).</summary>
    public long BetweenDevicesBytesPerSecond { get; init; }
}

/// <summary>Prometheus text exposition on a loopback port.</summary>
public sealed record MetricsConfig
{
    /// <summary>TCP port (0: no HTTP listener; the metrics are still collected).</summary>
    public int Port { get; init; }

    /// <summary>Loopback address to bind: 127.0.0.1, localhost or ::1.</summary>
    public string Host { get; init; } = "127.0.0.1";
}

/// <summary>
/// The host's configuration, read from JSON by <see cref="Parse"/> or <see cref="Load"/>. Every mistake is an
/// <see cref="InputException"/> naming the file and the key (<c>bridge.json: rebalance.cadenceSteps</c>).
/// </summary>
public sealed record HostConfig
{
    /// <summary>Model layers with experts.</summary>
    public int Layers { get; init; }

    /// <summary>Logical experts per layer.</summary>
    public int Experts { get; init; }

    /// <summary>Expert groups (DeepSeek-V3: 8), passed to the policy.</summary>
    public int ExpertGroups { get; init; } = 1;

    public Topology Topology { get; init; } = Topology.Create(1, 1);

    public BackendKind Backend { get; init; } = BackendKind.Host;

    /// <summary>Device layer settings (backend cuda / cann only).</summary>
    public DeviceConfig Device { get; init; } = new();

    /// <summary>A built-in policy name, the full path of a .csx script, or a bare name looked up in <see cref="PolicyDirectory"/>.</summary>
    public string Policy { get; init; } = "trivial";

    /// <summary>Where bare policy names are looked up as NAME.csx (full path), or null.</summary>
    public string? PolicyDirectory { get; init; }

    /// <summary>Options handed to the policy (overriding a script's header options).</summary>
    public PolicyOptions PolicyOptions { get; init; } = PolicyOptions.Empty;

    /// <summary>Time one policy call may take before it is abandoned and the placement kept.</summary>
    public TimeSpan PolicyTimeout { get; init; } = TimeSpan.FromSeconds(2);

    public RebalanceConfig Rebalance { get; init; } = new();

    public MoveBudgetConfig MoveBudget { get; init; } = new();

    public MetricsConfig Metrics { get; init; } = new();

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Where the config came from, for messages.</summary>
    public string Source { get; init; } = "config";

    /// <summary>Reads and validates the JSON file at <paramref name="path"/>; relative paths inside resolve against its folder.</summary>
    public static HostConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException(path, "a readable config file", ex.Message);
        }

        return Parse(text, path, Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    /// <summary>
    /// Parses and validates JSON text. <paramref name="source"/> names it in messages; relative policy paths resolve
    /// against <paramref name="baseDirectory"/> (the current directory when null).
    /// </summary>
    public static HostConfig Parse(string json, string source = "config", string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        JObject root;
        try
        {
            using var reader = new JsonTextReader(new StringReader(json)) { DateParseHandling = DateParseHandling.None };
            var token = JToken.ReadFrom(reader, new JsonLoadSettings { DuplicatePropertyNameHandling = DuplicatePropertyNameHandling.Error, CommentHandling = CommentHandling.Ignore });
            root = token as JObject ?? throw new InputException(source, "a JSON object at the top level", $"found {token.Type}");
        }
        catch (JsonException ex)
        {
            throw new InputException(source, "valid JSON", ex.Message);
        }

        var r = new JsonFields(source);
        r.OnlyKeys(root, "", "model", "topology", "backend", "device", "policy", "policyDirectory", "policyOptions", "policyTimeoutMs", "rebalance", "moveBudget", "metrics", "logging");

        var model = r.Object(root, "model", required: true)!;
        r.OnlyKeys(model, "model", "layers", "experts", "expertGroups");
        var layers = r.Int(model, "model.layers", null, min: 1);
        var experts = r.Int(model, "model.experts", null, min: 1);
        var groups = r.Int(model, "model.expertGroups", 1, min: 1);
        if (experts % groups != 0)
        {
            throw r.Error("model.expertGroups", "experts divide evenly into groups", $"{experts} experts do not split into {groups} groups");
        }

        var topo = r.Object(root, "topology", required: true)!;
        r.OnlyKeys(topo, "topology", "devices", "slotsPerDevice", "nodes", "expertBytes");
        var devices = r.Int(topo, "topology.devices", null, min: 1);
        var slotsPerDevice = r.Int(topo, "topology.slotsPerDevice", null, min: 1);
        var nodes = r.Int(topo, "topology.nodes", 1, min: 1);
        var expertBytes = r.Long(topo, "topology.expertBytes", 0, min: 0);
        if (devices % nodes != 0)
        {
            throw r.Error("topology.nodes", "devices are a multiple of nodes", $"{devices} devices do not split evenly over {nodes} nodes");
        }

        if ((long)devices * slotsPerDevice < experts)
        {
            throw r.Error("topology.slotsPerDevice", "devices x slotsPerDevice >= model.experts", $"{devices} x {slotsPerDevice} = {(long)devices * slotsPerDevice} slots cannot hold {experts} experts");
        }

        if ((long)devices * slotsPerDevice * layers > int.MaxValue / 4)
        {
            throw r.Error("topology", "layers x devices x slotsPerDevice fits the mapping tables", "the mapping is too large");
        }

        var backendText = r.String(root, "backend", "host");
        var backend = backendText.ToUpperInvariant() switch
        {
            "HOST" => BackendKind.Host,
            "NONE" => BackendKind.None,
            "CUDA" => BackendKind.Cuda,
            "CANN" => BackendKind.Cann,
            _ => throw r.Error("backend", "one of host, none, cuda, cann", $"got '{backendText}'"),
        };

        var deviceConfig = new DeviceConfig();
        if (r.Object(root, "device", required: false) is { } dev)
        {
            if (backend is not (BackendKind.Cuda or BackendKind.Cann))
            {
                throw r.Error("device", "device settings only with backend cuda or cann", $"backend is '{backendText}'");
            }

            r.OnlyKeys(dev, "device", "emulated", "verify", "copyStreamsPerDevice", "maxInFlightPerDevice", "transferTimeoutMs", "withinDeviceCapGBps", "betweenDevicesCapGBps");
            deviceConfig = new DeviceConfig
            {
                Emulated = r.Bool(dev, "device.emulated", deviceConfig.Emulated),
                Verify = r.Bool(dev, "device.verify", deviceConfig.Verify),
                CopyStreamsPerDevice = r.Int(dev, "device.copyStreamsPerDevice", deviceConfig.CopyStreamsPerDevice, min: 1, max: 16),
                MaxInFlightPerDevice = r.Int(dev, "device.maxInFlightPerDevice", deviceConfig.MaxInFlightPerDevice, min: 1, max: 1024),
                TransferTimeout = TimeSpan.FromMilliseconds(r.Int(dev, "device.transferTimeoutMs", (int)deviceConfig.TransferTimeout.TotalMilliseconds, min: 1, max: 3_600_000)),
                WithinDeviceBytesPerSecond = BytesPerSecond(r, dev, "device.withinDeviceCapGBps"),
                BetweenDevicesBytesPerSecond = BytesPerSecond(r, dev, "device.betweenDevicesCapGBps"),
            };
        }

        var policy = r.String(root, "policy", "trivial");
        if (policy.Length == 0)
        {
            throw r.Error("policy", "a built-in policy name or a .csx path", "empty");
        }

        var baseDir = baseDirectory ?? Directory.GetCurrentDirectory();
        if (PolicyResolver.IsScriptPath(policy))
        {
            policy = Path.GetFullPath(policy, baseDir);
            if (!File.Exists(policy))
            {
                throw r.Error("policy", "a built-in policy name or an existing .csx script", $"'{policy}' does not exist");
            }
        }

        string? policyDirectory = null;
        if (root["policyDirectory"] is not null)
        {
            policyDirectory = Path.GetFullPath(r.String(root, "policyDirectory", "."), baseDir);
            if (!Directory.Exists(policyDirectory))
            {
                throw r.Error("policyDirectory", "an existing directory", $"'{policyDirectory}' does not exist");
            }
        }

        var options = new List<KeyValuePair<string, string>>();
        if (r.Object(root, "policyOptions", required: false) is { } opts)
        {
            foreach (var p in opts.Properties())
            {
                if (p.Value.Type is JTokenType.Object or JTokenType.Array or JTokenType.Null)
                {
                    throw r.Error($"policyOptions.{p.Name}", "a string, number or boolean", $"found {p.Value.Type}");
                }

                options.Add(new(p.Name, Convert.ToString(((JValue)p.Value).Value, CultureInfo.InvariantCulture) ?? ""));
            }
        }

        var timeoutMs = r.Int(root, "policyTimeoutMs", 2000, min: 1, max: 600_000);

        var reb = r.Object(root, "rebalance", required: false) ?? [];
        r.OnlyKeys(reb, "rebalance", "cadenceSteps", "imbalanceTrigger", "checkEverySteps", "windowSteps", "warmupSteps", "minStepsBetween");
        var defaults = new RebalanceConfig();
        var rebalance = new RebalanceConfig
        {
            CadenceSteps = r.Int(reb, "rebalance.cadenceSteps", defaults.CadenceSteps, min: 0),
            ImbalanceTrigger = r.Double(reb, "rebalance.imbalanceTrigger", defaults.ImbalanceTrigger),
            CheckEverySteps = r.Int(reb, "rebalance.checkEverySteps", defaults.CheckEverySteps, min: 1),
            WindowSteps = r.Int(reb, "rebalance.windowSteps", defaults.WindowSteps, min: 1, max: 1_000_000),
            WarmupSteps = r.Int(reb, "rebalance.warmupSteps", defaults.WarmupSteps, min: 0),
            MinStepsBetween = r.Int(reb, "rebalance.minStepsBetween", defaults.MinStepsBetween, min: 0),
        };
        if (rebalance.ImbalanceTrigger != 0 && rebalance.ImbalanceTrigger < 1)
        {
            throw r.Error("rebalance.imbalanceTrigger", "0 (off) or >= 1 (max/mean device load)", $"got {rebalance.ImbalanceTrigger.ToString(CultureInfo.InvariantCulture)}");
        }

        if ((long)rebalance.WindowSteps * layers * experts > 256L * 1024 * 1024)
        {
            throw r.Error("rebalance.windowSteps", "windowSteps x layers x experts <= 268435456 (1 GiB of history)", $"{rebalance.WindowSteps} x {layers} x {experts} is too large");
        }

        var mb = r.Object(root, "moveBudget", required: false) ?? [];
        r.OnlyKeys(mb, "moveBudget", "maxExpertsPerRebalance", "maxBytesPerRebalance", "maxLayersPerBoundary");
        var budgetDefaults = new MoveBudgetConfig();
        var budget = new MoveBudgetConfig
        {
            MaxExpertsPerRebalance = r.Int(mb, "moveBudget.maxExpertsPerRebalance", budgetDefaults.MaxExpertsPerRebalance, min: 0),
            MaxBytesPerRebalance = r.Long(mb, "moveBudget.maxBytesPerRebalance", budgetDefaults.MaxBytesPerRebalance, min: 0),
            MaxLayersPerBoundary = r.Int(mb, "moveBudget.maxLayersPerBoundary", budgetDefaults.MaxLayersPerBoundary, min: 0),
        };

        var mt = r.Object(root, "metrics", required: false) ?? [];
        r.OnlyKeys(mt, "metrics", "port", "host");
        var metrics = new MetricsConfig
        {
            Port = r.Int(mt, "metrics.port", 0, min: 0, max: 65535),
            Host = r.String(mt, "metrics.host", "127.0.0.1"),
        };
        if (metrics.Host is not ("127.0.0.1" or "localhost" or "::1"))
        {
            throw r.Error("metrics.host", "a loopback address (127.0.0.1, localhost, ::1)", $"got '{metrics.Host}'");
        }

        var lg = r.Object(root, "logging", required: false) ?? [];
        r.OnlyKeys(lg, "logging", "level");
        var levelText = r.String(lg, "logging.level", "Information");
        if (!Enum.TryParse<LogLevel>(levelText, ignoreCase: true, out var level) || !Enum.IsDefined(level) || int.TryParse(levelText, out _))
        {
            throw r.Error("logging.level", "one of Trace, Debug, Information, Warning, Error, Critical, None", $"got '{levelText}'");
        }

        return new HostConfig
        {
            Layers = layers,
            Experts = experts,
            ExpertGroups = groups,
            Topology = Topology.Create(devices, slotsPerDevice, nodes, expertBytes),
            Backend = backend,
            Device = deviceConfig,
            Policy = policy,
            PolicyDirectory = policyDirectory,
            PolicyOptions = new PolicyOptions(options, $"{source}: policyOptions"),
            PolicyTimeout = TimeSpan.FromMilliseconds(timeoutMs),
            Rebalance = rebalance,
            MoveBudget = budget,
            Metrics = metrics,
            LogLevel = level,
            Source = source,
        };
    }

    /// <summary>A bandwidth cap in GB/s (10^9 bytes per second; 0: unlimited) as bytes per second.</summary>
    private static long BytesPerSecond(JsonFields r, JObject obj, string key)
    {
        const double MaxGBps = 1_000_000; // 1 PB/s: far above any device, and safely inside a long
        var gbps = r.Double(obj, key, 0);
        return gbps <= MaxGBps
            ? (long)Math.Round(gbps * 1e9)
            : throw r.Error(key, $"0 (unlimited) <= GB/s <= {MaxGBps:0}", $"got {gbps.ToString(CultureInfo.InvariantCulture)}");
    }
}
