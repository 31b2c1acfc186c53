using System.Globalization;
using System.Reflection;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Core.Latency;

/// <summary>
/// Measured time of one expert's FFN (gate/up GEMM, activation, down GEMM) against the tokens routed to it, for one
/// expert shape on one card (tests/gpu/gemm-calibrate). Piecewise-linear between points; flat below the first point
/// (memory-bound: the weights are read whatever the token count); linear extrapolation by the last segment above the
/// last point (compute-bound). <see cref="BackToBackFactor"/> is how much cheaper experts run back to back on one
/// device than one by one (measured: about 0.8).
/// </summary>
public sealed class GemmTable
{
    private readonly double[] _tokens;
    private readonly double[] _millis;

    public GemmTable(string card, string dtype, int hidden, int intermediate, IReadOnlyList<(double Tokens, double Millis)> points, double backToBackFactor, string source)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count < 2)
        {
            throw new InputException(source, "a GEMM table has at least 2 points", $"got {points.Count}");
        }

        var sorted = points.OrderBy(p => p.Tokens).ToArray();
        for (var i = 0; i < sorted.Length; i++)
        {
            if (!(sorted[i].Tokens > 0) || !(sorted[i].Millis > 0) || (i > 0 && sorted[i].Tokens == sorted[i - 1].Tokens))
            {
                throw new InputException(source, "points have distinct tokens > 0 and ms > 0", $"point {i}: tokens {sorted[i].Tokens}, ms {sorted[i].Millis}");
            }
        }

        if (!(backToBackFactor > 0 && backToBackFactor <= 1.5))
        {
            throw new InputException(source, "0 < back-to-back factor <= 1.5", $"got {backToBackFactor}");
        }

        Card = card;
        Dtype = dtype;
        Hidden = hidden;
        Intermediate = intermediate;
        BackToBackFactor = backToBackFactor;
        Source = source;
        _tokens = sorted.Select(p => p.Tokens).ToArray();
        _millis = sorted.Select(p => p.Millis).ToArray();
    }

    public string Card { get; }

    public string Dtype { get; }

    public int Hidden { get; }

    public int Intermediate { get; }

    public double BackToBackFactor { get; }

    /// <summary>Where the table came from (file or embedded resource).</summary>
    public string Source { get; }

    /// <summary>The default: FP8 e4m3 on NVIDIA H200, measured 2026-11-28 (docs/hardware/README.md).</summary>
    public static GemmTable Default { get; } = LoadEmbedded("gemm-h200-fp8.json");

    /// <summary>BF16 on NVIDIA H200, measured 2026-11-28.</summary>
    public static GemmTable H200Bf16 { get; } = LoadEmbedded("gemm-h200-bf16.json");

    /// <summary>Milliseconds for one expert with <paramref name="tokens"/> tokens (0 tokens: 0 ms, the expert is skipped).</summary>
    public double Millis(double tokens)
    {
        if (tokens <= 0)
        {
            return 0;
        }

        if (tokens <= _tokens[0])
        {
            return _millis[0];
        }

        var i = Array.BinarySearch(_tokens, tokens);
        if (i >= 0)
        {
            return _millis[i];
        }

        var hi = ~i;
        if (hi >= _tokens.Length)
        {
            hi = _tokens.Length - 1;
        }

        var lo = hi - 1;
        var slope = (_millis[hi] - _millis[lo]) / (_tokens[hi] - _tokens[lo]);
        return _millis[lo] + (slope * (tokens - _tokens[lo]));
    }

    /// <summary>Reads a table written by tests/gpu/gemm-calibrate (JSON).</summary>
    public static GemmTable Parse(string json, string source)
    {
        JObject root;
        try
        {
            root = JObject.Parse(json);
        }
        catch (Newtonsoft.Json.JsonReaderException ex)
        {
            throw new InputException(source, "valid JSON", $"line {ex.LineNumber} position {ex.LinePosition}: {ex.Message.Split('.')[0]}");
        }

        var points = (root["points"] as JArray ?? throw new InputException(source, "has a 'points' array", "missing 'points'"))
            .Select(p => ((double?)p["tokens"] ?? 0, (double?)p["ms"] ?? 0)).ToList();
        var ratios = (root["additivity"] as JArray ?? [])
            .Select(a => (double?)a["msTogether"] / ((double?)a["experts"] * (double?)a["msOne"]))
            .Where(r => r is > 0)
            .Select(r => r!.Value)
            .ToList();
        var factor = ratios.Count > 0 ? ratios.Average() : 1.0;
        return new GemmTable(
            (string?)root["card"] ?? "unknown",
            (string?)root["dtype"] ?? "unknown",
            (int?)root["hidden"] ?? 0,
            (int?)root["intermediate"] ?? 0,
            points,
            factor,
            source);
    }

    /// <summary>Reads a table from a file; errors name the file.</summary>
    public static GemmTable Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException(path, "the GEMM table file exists", "file not found");
        }

        return Parse(File.ReadAllText(path), path);
    }

    private static GemmTable LoadEmbedded(string name)
    {
        var assembly = typeof(GemmTable).GetTypeInfo().Assembly;
        var resource = assembly.GetManifestResourceNames().Single(n => n.EndsWith(name, StringComparison.Ordinal));
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), $"embedded {name}");
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Dtype} on {Card} (hidden {Hidden}, intermediate {Intermediate}; {Source})");
}
