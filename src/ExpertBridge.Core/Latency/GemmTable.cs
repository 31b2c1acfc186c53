using System.Globalization;
using System.Reflection;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Core.Latency;

/// <summary>
/// Measured time of one expert's FFN (gate/up GEMM, activation, down GEMM) against the tokens routed to it, for one
/// expert shape on one card (tests/gpu/gemm-calibrate). Piecewise-linear between points; flat below the first point
/// (memory-bound: the weights are read whatever the token count); linear extrapolation by the last segment above the
/// last point (compute-bound). <see cref="BackToBackSavingMillis"/> is the time an expert saves when it runs right
/// after another on the same device (launch and tail gaps hidden behind the previous expert), from the table's
/// additivity measurements: k experts back to back against k single calls at a few token counts. The saving is an
/// absolute time, not a ratio: a fixed share (the first model, 0.75 to 0.84 of single calls) held for small experts
/// but under-predicted compute-bound ones by 22 to 25% (docs/hardware/README.md, prefill on 4x H200).
/// </summary>
public sealed class GemmTable
{
    private readonly double[] _tokens;
    private readonly double[] _millis;
    private readonly double[] _savingTokens;
    private readonly double[] _savingMillis;

    /// <param name="card">Card the table was measured on.</param>
    /// <param name="dtype">Weight type (fp8, bf16).</param>
    /// <param name="hidden">Expert shape: hidden size.</param>
    /// <param name="intermediate">Expert shape: intermediate size.</param>
    /// <param name="points">Single-expert FFN time (ms) against tokens.</param>
    /// <param name="backToBack">Saving per back-to-back expert (ms) against tokens; empty: experts cost their single-call time.</param>
    /// <param name="source">File or resource, for messages.</param>
    public GemmTable(string card, string dtype, int hidden, int intermediate, IReadOnlyList<(double Tokens, double Millis)> points, IReadOnlyList<(double Tokens, double SavingMillis)> backToBack, string source)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(backToBack);
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

        _tokens = sorted.Select(p => p.Tokens).ToArray();
        _millis = sorted.Select(p => p.Millis).ToArray();

        var savings = backToBack.OrderBy(p => p.Tokens).ToArray();
        for (var i = 0; i < savings.Length; i++)
        {
            var (t, saving) = savings[i];
            if (!(t > 0) || (i > 0 && t == savings[i - 1].Tokens))
            {
                throw new InputException(source, "additivity points have distinct tokens > 0", $"point {i}: tokens {t}");
            }

            // A saving is gaps hidden between calls: never negative (noise is clamped), never the whole call.
            if (!(saving < Millis(t)))
            {
                throw new InputException(source, "a back-to-back saving is below the single-call time", $"point {i}: tokens {t}, saving {saving} ms, single call {Millis(t)} ms");
            }
        }

        _savingTokens = savings.Select(p => p.Tokens).ToArray();
        _savingMillis = savings.Select(p => Math.Max(0, p.SavingMillis)).ToArray();
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

    /// <summary>Milliseconds for one expert with <paramref name="tokens"/> tokens (0 tokens: 0 ms, the expert is skipped).</summary>
    public double Millis(double tokens) => tokens <= 0 ? 0 : Interpolate(_tokens, _millis, tokens, extrapolate: true);

    /// <summary>
    /// Milliseconds an expert with <paramref name="tokens"/> tokens saves when it runs right after another expert on the
    /// same device: piecewise-linear between the additivity points, flat outside them (0 without points).
    /// </summary>
    public double BackToBackSavingMillis(double tokens) =>
        tokens <= 0 || _savingTokens.Length == 0 ? 0 : Interpolate(_savingTokens, _savingMillis, tokens, extrapolate: false);

    /// <summary>
    /// Time of <paramref name="active"/> experts run back to back on one device, given the sum of their single-call
    /// times and of their savings: every expert but one saves (the mean saving stands for the one that does not).
    /// </summary>
    internal static double BackToBack(double sumMillis, double sumSaving, int active) =>
        active <= 1 ? sumMillis : sumMillis - (sumSaving * (active - 1) / active);

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
        // Additivity: k experts back to back took msTogether, one took msOne; each of the k - 1 followers saved
        // (k * msOne - msTogether) / (k - 1). Repeated token counts (several k) are averaged.
        var savings = new List<(double Tokens, double SavingMillis)>();
        foreach (var group in (root["additivity"] as JArray ?? []).GroupBy(a => (double?)a["tokens"] ?? 0))
        {
            var perFollower = new List<double>();
            foreach (var a in group)
            {
                var k = (double?)a["experts"] ?? 0;
                var together = (double?)a["msTogether"] ?? 0;
                var one = (double?)a["msOne"] ?? 0;
                if (!(k >= 2) || !(together > 0) || !(one > 0))
                {
                    throw new InputException(source, "additivity entries have experts >= 2, msTogether > 0 and msOne > 0", $"tokens {group.Key}: experts {k}, msTogether {together}, msOne {one}");
                }

                perFollower.Add(((k * one) - together) / (k - 1));
            }

            savings.Add((group.Key, perFollower.Average()));
        }

        return new GemmTable(
            (string?)root["card"] ?? "unknown",
            (string?)root["dtype"] ?? "unknown",
            (int?)root["hidden"] ?? 0,
            (int?)root["intermediate"] ?? 0,
            points,
            savings,
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
