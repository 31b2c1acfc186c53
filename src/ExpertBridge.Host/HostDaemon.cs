using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Host;

/// <summary>
/// <c>expertbridge serve --config F</c>: the bridge as a daemon beside a server that does not embed it. The server
/// talks JSON lines over the daemon's stdin/stdout (one request per line, one reply per request; see docs/host.md):
/// <c>step</c>, <c>boundary</c>, <c>mapping</c>, <c>rebalance</c>, <c>reload</c>, <c>stats</c>. Metrics and the policy
/// watcher run as in the embedded bridge. A daemon cannot reach the server's memory, so it runs with backend
/// <c>none</c>: it decides and publishes mappings, and the server moves the weights before it acknowledges a boundary.
/// </summary>
public static partial class HostDaemon
{
    /// <summary>
    /// Runs until <paramref name="input"/> ends or <paramref name="cancellation"/> fires; returns 0. A config mistake
    /// throws <see cref="InputException"/> naming the file and the key before anything starts.
    /// </summary>
    public static int Run(string configPath, TextReader input, TextWriter output, BridgeServices? services = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        var config = HostConfig.Load(configPath);
        if (config.Backend != BackendKind.None)
        {
            throw new InputException($"{config.Source}: backend", "'none' for the daemon (it cannot reach the server's memory)", $"got '{config.Backend.ToString().ToLowerInvariant()}'; embed the bridge through the C ABI to move weights");
        }

        using var loggers = services?.LoggerFactory is null ? HostLogging.CreateFactory(config.LogLevel) : null;
        var withLogs = new BridgeServices
        {
            LoggerFactory = services?.LoggerFactory ?? loggers,
            PolicySourceFactory = services?.PolicySourceFactory,
            RelocatorFactory = services?.RelocatorFactory,
        };
        using (var bridge = Bridge.Create(config, withLogs))
        {
            var log = withLogs.LoggerFactory!.CreateLogger("ExpertBridge.Daemon");
            if (bridge.Metrics.Endpoint is { } endpoint)
            {
                LogListening(log, endpoint);
            }

            var tokens = new int[bridge.Layers * bridge.Slots];
            var changed = new int[bridge.Layers];
            string? line;
            var number = 0;
            while (!cancellation.IsCancellationRequested && (line = input.ReadLine()) is not null)
            {
                number++;
                if (line.Length == 0)
                {
                    continue;
                }

                JObject reply;
                try
                {
                    reply = Handle(bridge, ParseRequest(line, number), tokens, changed);
                }
                catch (Exception ex) when (ex is InputException or JsonException or ObjectDisposedException or InvalidCastException or FormatException or OverflowException)
                {
                    reply = new JObject { ["error"] = ex.Message };
                }

                output.WriteLine(reply.ToString(Formatting.None));
                output.Flush();
            }
        }

        return 0;
    }

    private const string RuleOps = "one of step, boundary, mapping, rebalance, reload, stats";

    /// <summary>One request line: a JSON object, else an input error naming the line.</summary>
    private static JObject ParseRequest(string line, int number)
    {
        JToken parsed;
        try
        {
            parsed = JToken.Parse(line);
        }
        catch (JsonReaderException ex)
        {
            throw new InputException($"request line {number}", "one JSON object per line", $"not JSON at position {ex.LinePosition}: {ex.Message.Split(". ")[0]}");
        }

        return parsed as JObject ?? throw new InputException($"request line {number}", "one JSON object per line", $"got {parsed.Type.ToString().ToLowerInvariant()}");
    }

    private static JObject Handle(Bridge bridge, JObject json, int[] tokens, int[] changed)
    {
        var op = json["op"] is JValue { Type: JTokenType.String } name ? (string)name! : throw new InputException("request.op", RuleOps, json["op"] is null ? "missing" : $"got {json["op"]!.ToString(Formatting.None)}");

        // A key the op does not take (misspelt, or meant for another op) is refused, not ignored; values are checked.
        var fields = new JsonFields("");
        switch (op)
        {
            case "step":
            {
                fields.OnlyKeys(json, op, "op", "tokens", "epoch");
                var values = fields.Array(json, "step.tokens", required: true)!;
                if (values.Count != tokens.Length)
                {
                    throw new InputException("step.tokens", "one count per (layer, physical slot)", $"expected {bridge.Layers} x {bridge.Slots} = {tokens.Length} counts, got {values.Count}");
                }

                for (var i = 0; i < tokens.Length; i++)
                {
                    tokens[i] = (int)fields.Whole(values[i], $"step.tokens[{i}]", 0, int.MaxValue);
                }

                bridge.RecordStep(tokens, fields.Long(json, "step.epoch", -1, min: -1));
                return new JObject { ["ok"] = true };
            }

            case "boundary":
            {
                fields.OnlyKeys(json, op, "op");
                var n = bridge.StepBoundary(changed, out var epoch);
                return new JObject { ["epoch"] = epoch, ["changed"] = new JArray(changed.Take(n)) };
            }

            case "mapping":
            {
                fields.OnlyKeys(json, op, "op", "layer");
                var layer = fields.Int(json, "mapping.layer", -1, min: -1, max: bridge.Layers - 1);
                var count = layer < 0 ? bridge.Layers : 1;
                var phy2log = new int[count * bridge.Slots];
                var epoch = bridge.CopyMapping(layer, phy2log, default, default);
                return new JObject { ["epoch"] = epoch, ["layer"] = layer, ["phy2log"] = new JArray(phy2log) };
            }

            case "rebalance":
            {
                fields.OnlyKeys(json, op, "op", "waitMs");
                var wait = TimeSpan.FromMilliseconds(fields.Int(json, "rebalance.waitMs", 0, min: 0));
                return new JObject { ["result"] = bridge.RequestRebalance(wait).ToString().ToLowerInvariant() };
            }

            case "reload":
                fields.OnlyKeys(json, op, "op");
                bridge.ReloadPolicy();
                return new JObject { ["ok"] = true };

            case "stats":
                fields.OnlyKeys(json, op, "op");
                return JObject.FromObject(bridge.Stats);

            default:
                throw new InputException("request.op", RuleOps, $"got '{op}'");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "serving metrics on {Endpoint}")]
    private static partial void LogListening(ILogger log, Uri endpoint);
}
