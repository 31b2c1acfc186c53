using System.Globalization;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Core.Formats;

/// <summary>
/// Typed, checked reads of JSON objects whose every mistake is one <see cref="InputException"/> naming the source and
/// the dotted key: unknown keys refused with the list of known ones, types checked, ranges checked. Serves the config
/// file (the host's <c>HostConfig</c>, source = the file) and the daemon's requests (<c>HostDaemon</c>, no source:
/// the key, e.g. <c>step.tokens[5]</c>, says where), and the expert GEMM tables
/// (<see cref="Latency.GemmTable"/>, source = the file). Internal to Core and the host (InternalsVisibleTo).
/// </summary>
internal sealed class JsonFields(string source)
{
    public InputException Error(string key, string rule, string detail) => new(source.Length == 0 ? key : $"{source}: {key}", rule, detail);

    public void OnlyKeys(JObject obj, string prefix, params string[] known)
    {
        foreach (var p in obj.Properties())
        {
            if (!known.Contains(p.Name, StringComparer.Ordinal))
            {
                var key = prefix.Length == 0 ? p.Name : $"{prefix}.{p.Name}";
                throw Error(key, "a known key", $"unknown key; known keys here: {string.Join(", ", known)}");
            }
        }
    }

    public JObject? Object(JObject obj, string key, bool required)
    {
        var t = obj[key];
        if (t is null || t.Type == JTokenType.Null)
        {
            return required ? throw Error(key, "required", "missing") : null;
        }

        return t as JObject ?? throw Error(key, "an object", $"found {t.Type}");
    }

    /// <summary>An array element <paramref name="t"/> that must be an object, named <paramref name="key"/> in errors.</summary>
    public JObject Element(JToken t, string key) => t as JObject ?? throw Error(key, "an object", $"found {Describe(t)}");

    public JArray? Array(JObject obj, string key, bool required)
    {
        var t = obj[LastPart(key)];
        if (t is null || t.Type == JTokenType.Null)
        {
            return required ? throw Error(key, "required", "missing") : null;
        }

        return t as JArray ?? throw Error(key, "an array", $"found {Describe(t)}");
    }

    public int Int(JObject obj, string key, int? fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var v = Long(obj, key, fallback, min, max);
        return (int)v;
    }

    public long Long(JObject obj, string key, long? fallback, long min = long.MinValue, long max = long.MaxValue)
    {
        var t = obj[LastPart(key)];
        if (t is null || t.Type == JTokenType.Null)
        {
            return fallback ?? throw Error(key, "required", "missing");
        }

        return Whole(t, key, min, max);
    }

    /// <summary>A whole number in [<paramref name="min"/>, <paramref name="max"/>] (an array element, say), named <paramref name="key"/> in errors.</summary>
    public long Whole(JToken t, string key, long min = long.MinValue, long max = long.MaxValue)
    {
        if (t.Type != JTokenType.Integer)
        {
            throw Error(key, "a whole number", $"found {Describe(t)}");
        }

        // Beyond a long, Newtonsoft holds a BigInteger: out of range like any other too large value.
        var inLong = t is JValue { Value: long or int };
        var v = inLong ? t.Value<long>() : 0;
        if (!inLong || v < min || v > max)
        {
            var openAbove = max == long.MaxValue || max == int.MaxValue;
            var range = openAbove && inLong && v < min ? $">= {min}" : $"{min} <= value <= {max}";
            throw Error(key, range, $"got {t.ToString(Formatting.None)}");
        }

        return v;
    }

    /// <summary>A finite number >= 0; <paramref name="fallback"/> null: required.</summary>
    public double Double(JObject obj, string key, double? fallback)
    {
        var t = obj[LastPart(key)];
        if (t is null || t.Type == JTokenType.Null)
        {
            return fallback ?? throw Error(key, "required", "missing");
        }

        if (t.Type is not (JTokenType.Integer or JTokenType.Float))
        {
            throw Error(key, "a number", $"found {Describe(t)}");
        }

        var v = t.Value<double>();
        return double.IsFinite(v) && v >= 0 ? v : throw Error(key, "a finite number >= 0", $"got {v.ToString(CultureInfo.InvariantCulture)}");
    }

    public bool Bool(JObject obj, string key, bool fallback)
    {
        var t = obj[LastPart(key)];
        if (t is null || t.Type == JTokenType.Null)
        {
            return fallback;
        }

        return t.Type == JTokenType.Boolean ? t.Value<bool>() : throw Error(key, "true or false", $"found {Describe(t)}");
    }

    public string String(JObject obj, string key, string fallback)
    {
        var t = obj[LastPart(key)];
        if (t is null || t.Type == JTokenType.Null)
        {
            return fallback;
        }

        return t.Type == JTokenType.String ? t.Value<string>()! : throw Error(key, "a string", $"found {Describe(t)}");
    }

    private static string LastPart(string key) => key[(key.LastIndexOf('.') + 1)..];

    /// <summary>A token for an error: its JSON type, and its value when it is not an object or an array.</summary>
    public static string Describe(JToken t) => t.Type is JTokenType.Object or JTokenType.Array ? t.Type.ToString() : $"{t.Type} {t.ToString(Formatting.None)}";
}
