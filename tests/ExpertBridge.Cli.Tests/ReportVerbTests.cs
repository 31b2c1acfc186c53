using System.Buffers.Binary;
using System.Globalization;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Tests;

/// <summary><c>report</c>: the PNG figures render, and report.md carries report.json's numbers.</summary>
public sealed class ReportVerbTests : IDisposable
{
    private static readonly string[] s_topology = ["--devices", "8", "--slots-per-device", "5", "--nodes", "2", "--groups", "4"];

    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Report_TwoPolicies_WritesRenderedPngsAndMarkdownHoldingTheJsonNumbers()
    {
        var trace = _cli.SkewedTrace(steps: 160);
        var outDir = _cli.PathOf("report");

        var r = _cli.Run(["report", "--trace", trace, "--policies", "trivial, eplb", .. s_topology, "--window", "40", "--interval", "30", "--out", outDir]);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("wrote 7 files to ", r.Stdout, StringComparison.Ordinal);
        foreach (var png in new[] { "layer-max-load.png", "imbalance.png", "moves.png", "heatmap-trivial.png", "heatmap-eplb.png" })
        {
            AssertRenderedPng(Path.Combine(outDir, png));
        }

        var json = JObject.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        var markdown = File.ReadAllText(Path.Combine(outDir, "report.md")).Split('\n');
        var results = (JArray)json["results"]!;
        Assert.Equal(["trivial", "eplb"], results.Select(x => (string)x["policy"]!));
        Assert.True((int)results[1]["rebalances"]! > 0);
        foreach (var result in results)
        {
            var row = Row(markdown, (string)result["label"]!);
            Assert.Equal(Num(result["imbalanceMean"]!, "0.000"), row[1]);
            Assert.Equal(Num(result["imbalanceP99"]!, "0.000"), row[2]);
            Assert.Equal(Num(result["balancednessMean"]!, "0.000"), row[3]);
            Assert.Equal(Num((double)result["overBestEp"]! * 100, "0.0") + "%", row[4]);
            Assert.Equal((string?)result["rebalances"], row[5]);
            Assert.Equal((string?)result["expertsMoved"], row[6]);
        }

        var bestEp = (JArray)json["layerBestEpMean"]!;
        Assert.Equal(4, bestEp.Count);
        for (var layer = 0; layer < bestEp.Count; layer++)
        {
            var row = Row(markdown, layer.ToString(CultureInfo.InvariantCulture));
            Assert.Equal([Num(bestEp[layer], "0.0"), .. results.Select(x => Num(x["layerMaxLoadMean"]![layer]!, "0.0"))], row[1..]);
        }

        foreach (var figure in new[] { "layer-max-load.png", "imbalance.png", "moves.png", "heatmap-trivial.png", "heatmap-eplb.png" })
        {
            Assert.Contains(markdown, l => l.StartsWith("![", StringComparison.Ordinal) && l.EndsWith($"]({figure})", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Report_TwoSpecsOfOneName_GetDistinctLabelsAndHeatmaps()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var outDir = _cli.PathOf("dup");

        var r = _cli.Run(["report", "--trace", trace, "--policies", "trivial,TRIVIAL", .. s_topology, "--window", "10", "--out", outDir, "--quiet"]);

        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = JObject.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        Assert.Equal(["trivial", "trivial#2"], ((JArray)json["results"]!).Select(x => (string)x["label"]!));
        Assert.True(File.Exists(Path.Combine(outDir, "heatmap-trivial.png")));
        Assert.True(File.Exists(Path.Combine(outDir, "heatmap-trivial-2.png")));
    }

    [Fact]
    public void Report_OutIsAFile_IsAUserErrorBeforeAnyReplay()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var file = _cli.WriteFile("taken", "x");

        var r = _cli.Run(["report", "--trace", trace, "--policies", "eplb", .. s_topology, "--window", "10", "--out", file]);

        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"expertbridge: --out: '{file}' is a file (rule: a directory for the report)", Assert.Single(r.StderrLines));
    }

    [Fact]
    public void Report_OutCannotBeCreated_IsAUserErrorBeforeAnyReplay()
    {
        // /proc exists but takes no new entries: where the directory would be made is probed before the replays, so the
        // mistake costs nothing (it used to surface after them, as a bare IO message).
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("needs /proc, a directory that exists and refuses new entries (Linux)");
        }

        var trace = _cli.SkewedTrace(steps: 30);

        var r = _cli.Run(["report", "--trace", trace, "--policies", "eplb", .. s_topology, "--window", "10", "--out", "/proc/expertbridge-report"]);

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("expertbridge: --out: cannot create files in '/proc': it takes no new files (rule: the report directory can be written)", Assert.Single(r.StderrLines));
        Assert.Equal("", r.Stdout);
    }

    /// <summary>A PNG signature, an IHDR of a plausible figure size, and enough bytes to hold a drawing (a blank image compresses to far less).</summary>
    private static void AssertRenderedPng(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 8_000, $"{path}: {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        var width = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16));
        var height = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20));
        Assert.InRange(width, 800, 2000);
        Assert.InRange(height, 300, 1200);
    }

    /// <summary>The cells of the one Markdown table row whose first cell is <paramref name="first"/>.</summary>
    private static string[] Row(string[] markdown, string first)
    {
        var rows = markdown
            .Where(l => l.StartsWith("| ", StringComparison.Ordinal))
            .Select(l => l.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray())
            .Where(cells => cells[0] == first);
        return Assert.Single(rows);
    }

    private static string Num(JToken value, string format) => Num((double)value, format);

    private static string Num(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
