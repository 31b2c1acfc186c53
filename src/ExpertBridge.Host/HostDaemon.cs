using ExpertBridge.Core;
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
        switch (op)
        {
            case "step":
            {
                var request = new Request(json, op, "tokens", "epoch");
                var values = request.Array("tokens");
                if (values.Count != tokens.Length)
                {
                    throw new InputException("step.tokens", "one count per (layer, physical slot)", $"expected {bridge.Layers} x {bridge.Slots} = {tokens.Length} counts, got {values.Count}");
                }

                for (var i = 0; i < tokens.Length; i++)
                {
                    tokens[i] = (int)Request.Integer(values[i], $"step.tokens[{i}]", 0, int.MaxValue);
                }

                bridge.RecordStep(tokens, request.Integer("epoch", -1, -1, long.MaxValue));
                return new JObject { ["ok"] = true };
            }

            case "boundary":
            {
                _ = new Request(json, op);
                var n = bridge.StepBoundary(changed, out var epoch);
                return new JObject { ["epoch"] = epoch, ["changed"] = new JArray(changed.Take(n)) };
            }

            case "mapping":
            {
                var layer = (int)new Request(json, op, "layer").Integer("layer", -1, -1, bridge.Layers - 1);
                var count = layer < 0 ? bridge.Layers : 1;
                var phy2log = new int[count * bridge.Slots];
                var epoch = bridge.CopyMapping(layer, phy2log, default, default);
                return new JObject { ["epoch"] = epoch, ["layer"] = layer, ["phy2log"] = new JArray(phy2log) };
            }

            case "rebalance":
            {
                var wait = TimeSpan.FromMilliseconds(new Request(json, op, "waitMs").Integer("waitMs", 0, 0, int.MaxValue));
                return new JObject { ["result"] = bridge.RequestRebalance(wait).ToString().ToLowerInvariant() };
            }

            case "reload":
                _ = new Request(json, op);
                bridge.ReloadPolicy();
                return new JObject { ["ok"] = true };

            case "stats":
                _ = new Request(json, op);
                return JObject.FromObject(bridge.Stats);

            default:
                throw new InputException("request.op", RuleOps, $"got '{op}'");
        }
    }

    /// <summary>
    /// Checked access to one request's fields: a key the op does not take (a misspelt one, or one from another op) is
    /// refused with the list of known keys rather than ignored, and every value is type- and range-checked; each
    /// mistake is one <see cref="InputException"/> naming the op and the field.
    /// </summary>
    private readonly struct Request
    {
        private readonly JObject _json;
        private readonly string _op;

        public Request(JObject json, string op, params string[] known)
        {
            _json = json;
            _op = op;
            foreach (var property in json.Properties())
            {
                if (property.Name != "op" && System.Array.IndexOf(known, property.Name) < 0)
                {
                    var keys = known.Length == 0 ? "only 'op'" : "op, " + string.Join(", ", known);
                    throw new InputException($"{op}.{property.Name}", $"keys of '{op}': {keys}", "unknown key");
                }
            }
        }

        public JArray Array(string field) => _json[field] switch
        {
            JArray array => array,
            null => throw new InputException($"{_op}.{field}", "an array of layers x slots counts", "missing"),
            var other => throw new InputException($"{_op}.{field}", "an array of layers x slots counts", $"got {other.Type.ToString().ToLowerInvariant()}"),
        };

        public long Integer(string field, long fallback, long min, long max) =>
            _json[field] is null or { Type: JTokenType.Null } ? fallback : Integer(_json[field]!, $"{_op}.{field}", min, max);

        public static long Integer(JToken token, string subject, long min, long max)
        {
            if (token is JValue { Type: JTokenType.Integer } value && value.Value is long or int && (long)value >= min && (long)value <= max)
            {
                return (long)value;
            }

            var range = max == long.MaxValue ? $">= {min}" : $"in [{min}, {max}]";
            throw new InputException(subject, $"an integer {range}", $"got {token.ToString(Formatting.None)}");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "serving metrics on {Endpoint}")]
    private static partial void LogListening(ILogger log, Uri endpoint);
}
