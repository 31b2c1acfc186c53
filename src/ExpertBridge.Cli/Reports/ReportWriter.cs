using System.Globalization;
using System.Text;
using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Verbs;
using ExpertBridge.Core;
using ExpertBridge.Core.Replay;
using Newtonsoft.Json.Linq;
using ScottPlot;

namespace ExpertBridge.Cli.Reports;

/// <summary>What a report is about: the trace, the topology and the cadence every policy was replayed with.</summary>
internal sealed record ReportInput(string TracePath, LoadTrace Trace, Topology Topology, ReplayOptions Options, IReadOnlyList<ReplayResult> Results);

/// <summary>
/// Writes a replay comparison as <c>report.md</c> (tables and the figures), <c>report.json</c> (the same numbers,
/// unrounded) and PNG figures into one directory.
/// </summary>
internal static class ReportWriter
{
    public const string MarkdownFile = "report.md";
    public const string JsonFile = "report.json";
    public const string LayerMaxLoadFile = "layer-max-load.png";
    public const string ImbalanceFile = "imbalance.png";
    public const string MovesFile = "moves.png";

    /// <summary>Writes every file into <paramref name="directory"/> (which must exist); returns their paths in writing order.</summary>
    public static IReadOnlyList<string> Write(string directory, ReportInput input)
    {
        var series = Series(input.Results);
        var heatmaps = HeatmapFiles(series);
        var written = new List<string>();

        string Path(string file)
        {
            var path = System.IO.Path.Combine(directory, file);
            written.Add(path);
            return path;
        }

        ReportPlots.LayerMaxLoad(Path(LayerMaxLoadFile), series);
        ReportPlots.ImbalanceOverTime(Path(ImbalanceFile), series);
        ReportPlots.MovesOverTime(Path(MovesFile), series);
        var scaleMax = HeatmapScale(input.Results);
        for (var i = 0; i < series.Count; i++)
        {
            ReportPlots.DeviceLayerHeatmap(Path(heatmaps[i]), series[i], scaleMax);
        }

        JsonOutput.Write(Path(JsonFile), ToJson(input, series), TextWriter.Null);
        File.WriteAllText(Path(MarkdownFile), ToMarkdown(input, series, heatmaps));
        return written;
    }

    /// <summary>Labels (a repeated policy name gets <c>#2</c>, <c>#3</c>) and one palette colour per policy.</summary>
    internal static IReadOnlyList<ReportSeries> Series(IReadOnlyList<ReplayResult> results)
    {
        var palette = new ScottPlot.Palettes.Category10();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var series = new List<ReportSeries>(results.Count);
        for (var i = 0; i < results.Count; i++)
        {
            var name = results[i].Policy;
            var n = seen[name] = seen.GetValueOrDefault(name) + 1;
            series.Add(new ReportSeries(n == 1 ? name : $"{name}#{n}", results[i], palette.GetColor(i)));
        }

        return series;
    }

    /// <summary>The Markdown report: what was replayed, the summary table, per-layer table, figures.</summary>
    internal static string ToMarkdown(ReportInput input, IReadOnlyList<ReportSeries> series, IReadOnlyList<string> heatmaps)
    {
        var trace = input.Trace;
        var options = input.Options;
        var md = new StringBuilder();
        void Line(string text = "") => md.Append(text).Append('\n');

        Line("# Expert placement report");
        Line();
        Line($"Trace `{System.IO.Path.GetFileName(input.TracePath)}`: {trace.Steps} steps x {trace.Layers} layers x {trace.Experts} experts. "
            + $"Topology: {input.Topology}. Every policy starts from the trivial placement and decides at steps {options.Window}, "
            + $"{options.Window + options.Interval}, ... from the {options.Window} steps before; steps {options.Window} to {trace.Steps - 1} "
            + $"({trace.Steps - options.Window} steps) are scored with the placement in force.");
        Line();
        Line("Imbalance is the busiest device's load over the mean device load of a layer at a step (1 is perfect; a replicated "
            + "expert's tokens split evenly over its replicas). BestEP is that mean: the busiest device's load under a perfect balance. "
            + "*Over BestEP* is the busiest device's load summed over layers, relative to BestEP's sum.");
        Line();
        Line("## Summary");
        Line();
        Line("| policy | imbalance (mean) | imbalance (p99) | balancedness | over BestEP | rebalances | experts moved | bytes moved | policy ms (median) |");
        Line("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in series)
        {
            var r = s.Result;
            Line($"| {s.Label} | {Fmt.Num(r.ImbalanceMean)} | {Fmt.Num(r.ImbalanceP99)} | {Fmt.Num(r.BalancednessMean)} | "
                + $"{Fmt.Num(OverBestEp(r) * 100, "0.0")}% | {Fmt.Int(r.Rebalances)} | {Fmt.Int(r.ExpertsMoved)} | {Fmt.Bytes(r.BytesMoved)} | {Fmt.Num(r.PolicyMillisMedian, "0.00")} |");
        }

        Line();
        Line("## Busiest device per layer");
        Line();
        Line($"![Busiest device per layer against BestEP]({LayerMaxLoadFile})");
        Line();
        Line("Tokens on the busiest device per step, averaged over the scored steps.");
        Line();
        Line("| layer | BestEP | " + string.Join(" | ", series.Select(s => s.Label)) + " |");
        Line("|---:|---:|" + string.Concat(series.Select(_ => "---:|")));
        var first = series[0].Result;
        for (var l = 0; l < first.Layers; l++)
        {
            Line($"| {l} | {Fmt.Num(first.LayerBestEpMean[l], "0.0")} | " + string.Join(" | ", series.Select(s => Fmt.Num(s.Result.LayerMaxLoadMean[l], "0.0"))) + " |");
        }

        Line();
        Line("## Imbalance over time");
        Line();
        Line($"![Imbalance over time]({ImbalanceFile})");
        Line();
        Line("## Expert moves over time");
        Line();
        Line($"![Expert moves per decision]({MovesFile})");
        Line();
        Line("A move is a (layer, slot) whose expert changed at a decision; a decision that keeps the placement moves nothing.");
        Line();
        Line("## Device load per layer");
        Line();
        Line("Each device's load in each layer over the scored steps, as a multiple of the layer's mean device load "
            + "(1 is its fair share); one colour scale for all policies.");
        for (var i = 0; i < series.Count; i++)
        {
            Line();
            Line($"### {series[i].Label}");
            Line();
            Line($"![Device load per layer: {series[i].Label}]({heatmaps[i]})");
        }

        return md.ToString();
    }

    /// <summary>The numbers of the report, unrounded: replay's fields per policy plus the per-layer series.</summary>
    internal static JObject ToJson(ReportInput input, IReadOnlyList<ReportSeries> series) => new()
    {
        ["trace"] = new JObject
        {
            ["path"] = input.TracePath,
            ["steps"] = input.Trace.Steps,
            ["layers"] = input.Trace.Layers,
            ["experts"] = input.Trace.Experts,
        },
        ["devices"] = input.Topology.Devices,
        ["slotsPerDevice"] = input.Topology.SlotsPerDevice,
        ["nodes"] = input.Topology.Nodes,
        ["window"] = input.Options.Window,
        ["interval"] = input.Options.Interval,
        ["layerBestEpMean"] = new JArray(series[0].Result.LayerBestEpMean),
        ["results"] = new JArray(series.Select(s =>
        {
            var o = ReplayVerb.ToJson(s.Result);
            o["label"] = s.Label;
            o["overBestEp"] = OverBestEp(s.Result);
            o["layerMaxLoadMean"] = new JArray(s.Result.LayerMaxLoadMean);
            return o;
        })),
    };

    /// <summary>Busiest-device load summed over layers relative to BestEP's sum, minus one (0 = perfect).</summary>
    internal static double OverBestEp(ReplayResult r)
    {
        var bestEp = r.LayerBestEpMean.Sum();
        return bestEp > 0 ? (r.LayerMaxLoadMean.Sum() / bestEp) - 1 : 0;
    }

    /// <summary>The heatmaps' shared colour scale: the largest relative device load of any policy, at least 2.</summary>
    private static double HeatmapScale(IReadOnlyList<ReplayResult> results)
    {
        var max = 2.0;
        foreach (var r in results)
        {
            foreach (var v in ReportPlots.RelativeDeviceLoad(r))
            {
                max = Math.Max(max, v);
            }
        }

        return max;
    }

    /// <summary>One file per policy, <c>heatmap-NAME.png</c>; a name that slugs like an earlier one gets its position.</summary>
    private static string[] HeatmapFiles(IReadOnlyList<ReportSeries> series)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        return series.Select((s, i) =>
        {
            var file = $"heatmap-{Slug(s.Label)}.png";
            return used.Add(file) ? file : $"heatmap-{Slug(s.Label)}-{i + 1}.png";
        }).ToArray();
    }

    /// <summary>A file-name-safe form of a label: letters, digits, '-', '_' and '.'; others become '-'.</summary>
    internal static string Slug(string label)
    {
        var chars = label.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? char.ToLowerInvariant(c) : '-').ToArray();
        var slug = new string(chars).Trim('-', '.');
        return slug.Length > 0 ? slug : "policy";
    }
}
