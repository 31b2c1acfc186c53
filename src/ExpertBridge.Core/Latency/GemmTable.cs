using System.Globalization;
using System.Reflection;
using ExpertBridge.Core.Formats;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Core.Latency;

/// <summary>
/// Measured time of one expert's FFN (gate/up GEMM, activation, down GEMM) against the tokens routed to it, for one
/// expert shape on one card (tests/gpu/gemm-calibrate). Two curves:
/// <list type="bullet">
/// <item><see cref="Millis"/>: one expert called alone (launch latency included). Piecewise-linear between points;
/// flat below the first point (memory-bound: the weights are read whatever the token count); extended by the last
/// segment above the last point (compute-bound).</item>
/// <item><see cref="BackToBackMillis"/>: an expert that runs right after another on the same device, from the table's
/// additivity measurements (k experts back to back took <c>msTogether</c>, one alone <c>msOne</c>: each of the k - 1
/// followers cost <c>(msTogether - msOne) / (k - 1)</c>). Below about 512 tokens a follower is cheaper than a lone
/// call (launch gaps hide behind the previous expert); in the compute-bound regime it costs more than a lone call in
/// a short burst (sustained load). Flat below the first additivity point; above the last it keeps the last point's
/// difference to <see cref="Millis"/>. Without additivity points it equals <see cref="Millis"/>.</item>
/// </list>
/// History: the first model applied a fixed back-to-back factor (0.75-0.84, measured up to 512 tokens) at every token
/// count and under-predicted compute-bound prefill on 4x H200 by 22-25% (docs/hardware/README.md).
/// </summary>
public sealed class GemmTable
{
    private readonly double[] _tokens;
    private readonly double[] _millis;
    private readonly double[] _followTokens;
    private readonly double[] _followMillis;

    /// <param name="card">Card the table was measured on.</param>
    /// <param name="dtype">Weight type (fp8, bf16).</param>
    /// <param name="hidden">Expert shape: hidden size.</param>
    /// <param name="intermediate">Expert shape: intermediate size.</param>
    /// <param name="points">Single-expert FFN time (ms) against tokens.</param>
    /// <param name="backToBack">Time (ms) of an expert that follows another on the same device, against tokens; empty: every expert costs its single-call time.</param>
    /// <param name="source">File or resource, for messages.</param>
    public GemmTable(string card, string dtype, int hidden, int intermediate, IReadOnlyList<(double Tokens, double Millis)> points, IReadOnlyList<(double Tokens, double Millis)> backToBack, string source)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(backToBack);
        if (points.Count < 2)
        {
            throw new InputException(source, "a GEMM table has at least 2 points", $"got {points.Count}");
        }

        (_tokens, _millis) = Curve(points, source, "points have distinct tokens > 0 and ms > 0");
        (_followTokens, _followMillis) = Curve(backToBack, source, "back-to-back points have distinct tokens > 0 and ms > 0 (k experts together take longer than one)");
        Card = card;
        Dtype = dtype;
        Hidden = hidden;
        Intermediate = intermediate;
        Source = source;
    }

    public string Card { get; }

    public string Dtype { get; }

    public int Hidden { get; }

    public int Intermediate { get; }

    /// <summary>Where the table came from (file or embedded resource).</summary>
    public string Source { get; }

    /// <summary>The default: FP8 e4m3 on NVIDIA H200, measured 2026-11-28 (docs/hardware/README.md).</summary>
    public static GemmTable Default { get; } = LoadEmbedded("gemm-h200-fp8.json");

    /// <summary>BF16 on NVIDIA H200, measured 2026-11-28.</summary>
    public static GemmTable H200Bf16 { get; } = LoadEmbedded("gemm-h200-bf16.json");

    // Sorted (tokens, ms) arrays of a curve; every point has tokens > 0 and ms > 0, no two the same tokens.
    private static (double[] Tokens, double[] Millis) Curve(IReadOnlyList<(double Tokens, double Millis)> points, string source, string rule)
    {
        var sorted = points.OrderBy(p => p.Tokens).ToArray();
        for (var i = 0; i < sorted.Length; i++)
        {
            if (!(sorted[i].Tokens > 0) || !(sorted[i].Millis > 0) || (i > 0 && sorted[i].Tokens == sorted[i - 1].Tokens))
            {
                throw new InputException(source, rule, $"point {i}: tokens {sorted[i].Tokens}, ms {sorted[i].Millis}");
            }
        }

        return (sorted.Select(p => p.Tokens).ToArray(), sorted.Select(p => p.Millis).ToArray());
    }

    /// <summary>Milliseconds for one expert with <paramref name="tokens"/> tokens (0 tokens: 0 ms, the expert is skipped).</summary>
    public double Millis(double tokens) => tokens <= 0 ? 0 : Interpolate(_tokens, _millis, tokens, extrapolate: true);

    /// <summary>
    /// Milliseconds of an expert with <paramref name="tokens"/> tokens that runs right after another expert on the same
    /// device (0 tokens: 0 ms).
    /// </summary>
    public double BackToBackMillis(double tokens)
    {
        if (tokens <= 0 || _followTokens.Length == 0)
        {
            return Millis(tokens);
        }

        var last = _followTokens[^1];
        return tokens <= last
            ? Interpolate(_followTokens, _followMillis, tokens, extrapolate: false)
            : Millis(tokens) + (_followMillis[^1] - Millis(last));
    }

    /// <summary>
    /// Time of <paramref name="active"/> experts run back to back on one device, from the sums of their single-call and
    /// back-to-back times: every expert costs its back-to-back time, and one of them (the first; the mean difference
    /// stands for it) its single-call time.
    /// </summary>
    internal static double BackToBack(double sumSingle, double sumFollow, int active) =>
        active <= 1 ? sumSingle : sumFollow + ((sumSingle - sumFollow) / active);

    // Piecewise-linear through (xs, ys), flat below the first point; above the last, extended by the last segment or flat.
    private static double Interpolate(double[] xs, double[] ys, double x, bool extrapolate)
    {
        if (xs.Length == 1 || x <= xs[0])
        {
            return ys[0];
        }

        var i = Array.BinarySearch(xs, x);
        if (i >= 0)
        {
            return ys[i];
        }

        var hi = ~i;
        if (hi >= xs.Length)
        {
            if (!extrapolate)
            {
                return ys[^1];
            }

            hi = xs.Length - 1;
        }

        var lo = hi - 1;
        var slope = (ys[hi] - ys[lo]) / (xs[hi] - xs[lo]);
        return ys[lo] + (slope * (x - xs[lo]));
    }

    /// <summary>
    /// Reads a table written by tests/gpu/gemm-calibrate (JSON): an object with <c>points</c> (required: tokens, ms),
    /// <c>additivity</c> (optional: tokens, experts, msTogether, msOne), and the descriptive <c>card</c>, <c>dtype</c>,
    /// <c>hidden</c> and <c>intermediate</c>. Every mistake is one <see cref="InputException"/> naming the source and
    /// the entry's key (e.g. <c>t.json: points[1].tokens</c>), read with the same checks as the host's config file.
    /// </summary>
    public static GemmTable Parse(string json, string source)
    {
        JToken parsed;
        try
        {
            parsed = JToken.Parse(json);
        }
        catch (Newtonsoft.Json.JsonReaderException ex)
        {
            throw new InputException(source, "valid JSON", $"line {ex.LineNumber} position {ex.LinePosition}: {ex.Message.Split('.')[0]}");
        }

        if (parsed is not JObject root)
        {
            throw new InputException(source, "a GEMM table is a JSON object with a 'points' array", $"the top level is {JsonFields.Describe(parsed)}");
        }

        var fields = new JsonFields(source);
        fields.OnlyKeys(root, "", "card", "dtype", "hidden", "intermediate", "reps", "points", "additivity");
        var points = fields.Array(root, "points", required: true)!
            .Select((p, i) => Entry(fields, p, $"points[{i}]", "tokens", "ms"))
            .Select(e => (e[0], e[1]))
            .ToList();

        // Additivity: k experts back to back took msTogether, one alone msOne; each of the k - 1 followers cost
        // (msTogether - msOne) / (k - 1). Repeated token counts (several k) are averaged.
        var follow = new List<(double Tokens, double Millis)>();
        var additivity = (fields.Array(root, "additivity", required: false) ?? [])
            .Select((a, i) => Entry(fields, a, $"additivity[{i}]", "experts", "tokens", "msTogether", "msOne"));
        foreach (var group in additivity.GroupBy(a => a[1]))
        {
            var perFollower = new List<double>();
            foreach (var a in group)
            {
                var (k, together, one) = (a[0], a[2], a[3]);
                if (!(k >= 2) || !(one > 0) || !(together > one))
                {
                    throw new InputException(source, "additivity entries have experts >= 2 and msTogether > msOne > 0", $"tokens {group.Key}: experts {k}, msTogether {together}, msOne {one}");
                }

                perFollower.Add((together - one) / (k - 1));
            }

            follow.Add((group.Key, perFollower.Average()));
        }

        return new GemmTable(
            fields.String(root, "card", "unknown"),
            fields.String(root, "dtype", "unknown"),
            fields.Int(root, "hidden", 0, min: 1),
            fields.Int(root, "intermediate", 0, min: 1),
            points,
            follow,
            source);
    }

    // An array entry: an object with exactly these number fields (each required, finite, >= 0), in this order.
    private static double[] Entry(JsonFields fields, JToken token, string key, params string[] names)
    {
        var entry = fields.Element(token, key);
        fields.OnlyKeys(entry, key, names);
        return names.Select(n => fields.Double(entry, $"{key}.{n}", fallback: null)).ToArray();
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
