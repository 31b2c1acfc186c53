using ExpertBridge.Cli.Output;
using ExpertBridge.Core;
using ExpertBridge.Core.Formats;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Tests;

/// <summary>Each verb's happy path, run in process on small generated traces.</summary>
public sealed class VerbTests : IDisposable
{
    private static readonly string[] s_replayFields =
        ["policy", "steps", "scoredSteps", "rebalances", "expertsMoved", "bytesMoved", "imbalanceMean", "imbalanceP99", "balancednessMean", "policyMillisMedian"];

    private static readonly string[] s_topology = ["--devices", "8", "--slots-per-device", "5"];

    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void TraceGenerate_SameSeed_WritesTheSameReadableTrace()
    {
        var a = _cli.SkewedTrace("a.npy", steps: 50, seed: 3);
        var b = _cli.SkewedTrace("b.npy", steps: 50, seed: 3);

        var trace = LoadFiles.Read(a);
        Assert.Equal((50, 4, 32), (trace.Steps, trace.Layers, trace.Experts));
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.True(trace.Sum().LayerTotal(0) > 0);
    }

    [Fact]
    public void Replay_OnePolicyJson_HasExactlyTheIssueFields()
    {
        var trace = _cli.SkewedTrace();

        var r = _cli.Run(["replay", "--trace", trace, "--policy", "trivial", .. s_topology, "--window", "100", "--interval", "50", "--json", "-"]);

        Assert.Equal(0, r.ExitCode);
        var json = (JObject)r.Json;
        Assert.Equal(s_replayFields, json.Properties().Select(p => p.Name));
        Assert.Equal("trivial", (string?)json["policy"]);
        Assert.Equal(300, (int)json["steps"]!);
        Assert.Equal(200, (int)json["scoredSteps"]!);
        Assert.Equal(0, (int)json["rebalances"]!);
        Assert.Equal(0, (long)json["expertsMoved"]!);
        Assert.Equal(0, (long)json["bytesMoved"]!);
        Assert.True((double)json["imbalanceMean"]! > 1.1, "a skewed trace is unbalanced under trivial");
        Assert.True((double)json["imbalanceP99"]! >= (double)json["imbalanceMean"]!);
        Assert.InRange((double)json["balancednessMean"]!, 0.01, 1);
    }

    [Fact]
    public void Replay_EplbAndTrivial_EplbBalancesBetterAndMoves()
    {
        var trace = _cli.SkewedTrace();
        var json = _cli.PathOf("replay.json");

        var r = _cli.Run(["replay", "--trace", trace, "--policy", "trivial", "--policy", "eplb", .. s_topology, "--nodes", "2", "--groups", "4", "--window", "100", "--interval", "50", "--expert-bytes", "1000", "--json", json]);

        Assert.Equal(0, r.ExitCode);
        var results = (JArray)JObject.Parse(File.ReadAllText(json))["results"]!;
        Assert.Equal(["trivial", "eplb"], results.Select(x => (string?)x["policy"]));
        Assert.All(results, x => Assert.Equal(s_replayFields, ((JObject)x).Properties().Select(p => p.Name)));
        var trivial = results[0];
        var eplb = results[1];
        Assert.True((double)eplb["imbalanceMean"]! < (double)trivial["imbalanceMean"]!, $"eplb {eplb["imbalanceMean"]} vs trivial {trivial["imbalanceMean"]}");
        Assert.InRange((int)eplb["rebalances"]!, 1, 4);
        Assert.True((long)eplb["expertsMoved"]! > 0);
        Assert.Equal((long)eplb["expertsMoved"]! * 1000, (long)eplb["bytesMoved"]!);

        // The table on stdout names both policies under the header.
        Assert.Contains("imbalance", r.Stdout, StringComparison.Ordinal);
        Assert.Contains(r.Stdout.Split('\n'), l => l.StartsWith("eplb ", StringComparison.Ordinal));
        Assert.Contains(r.Stdout.Split('\n'), l => l.StartsWith("trivial ", StringComparison.Ordinal));
    }

    [Fact]
    public void Compare_IsReplayUnderAnotherName()
    {
        var trace = _cli.SkewedTrace(steps: 120);
        string[] rest = ["--trace", trace, "--policy", "trivial", "--policy", "trivial", .. s_topology, "--window", "20", "--json", "-"];

        var replay = _cli.Run(["replay", .. rest]);
        var compare = _cli.Run(["compare", .. rest]);

        Assert.Equal(0, compare.ExitCode);
        static JToken WithoutTiming(JToken json)
        {
            foreach (var result in json["results"]!)
            {
                ((JObject)result).Remove("policyMillisMedian");
            }

            return json;
        }

        Assert.True(JToken.DeepEquals(WithoutTiming(replay.Json), WithoutTiming(compare.Json)));
    }

    [Fact]
    public void Replay_RedirectedProgress_PrintsPlainLinesOnStderr()
    {
        var trace = _cli.SkewedTrace(steps: 60);

        var r = CliHarness.Run(new CliServices { Progress = ProgressMode.Lines, Cancellation = TestContext.Current.CancellationToken }, ["replay", "--trace", trace, "--policy", "trivial", .. s_topology, "--window", "10"]);

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(10, r.StderrLines.Length);
        Assert.StartsWith("replay trivial: 100% (step 60/60", r.StderrLines[^1], StringComparison.Ordinal);
        Assert.DoesNotContain('\r', r.Stderr);
    }

    [Fact]
    public void Place_Eplb_WritesValidPlacementAndStats()
    {
        var trace = _cli.SkewedTrace();
        var outPath = _cli.PathOf("placement.json");
        var stats = _cli.PathOf("stats.json");

        var r = _cli.Run(["place", "--policy", "eplb", "--load", trace, .. s_topology, "--nodes", "2", "--groups", "4", "--out", outPath, "--repeat", "3", "--stats", stats]);

        Assert.Equal(0, r.ExitCode);
        var placement = PlacementFiles.Read(outPath);
        Assert.Equal((4, 32, 40), (placement.Layers, placement.LogicalExperts, placement.Slots));
        Assert.DoesNotContain(PlacementValidator.Validate(placement, allowColocatedReplicas: true), v => v.Rule != PlacementValidator.RuleNoColocatedReplicas);
        var json = JObject.Parse(File.ReadAllText(stats));
        Assert.Equal("eplb", (string?)json["policy"]);
        Assert.Equal(3, (int)json["repeat"]!);
        Assert.True((double)json["policyMillisMedian"]! > 0);
        var trivial = PlacementMetrics.Evaluate(Core.Policies.TrivialPolicy.Build(placement.Topology, 4, 32), LoadFiles.Read(trace).Sum());
        Assert.True((double)json["imbalanceMean"]! < trivial.ImbalanceMean);
        Assert.True((double)json["imbalanceMax"]! >= (double)json["imbalanceMean"]!);
        Assert.True((double)json["maxLoadSum"]! >= (double)json["bestEpSum"]!);
        Assert.Contains("wrote " + outPath, r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Place_SglangFormatWithPrevious_RoundTripsAndCountsMoves()
    {
        var trace = _cli.SkewedTrace(steps: 60);
        var eplbPath = _cli.PathOf("eplb.json");
        var sglangPath = _cli.PathOf("trivial-sglang.json");
        Assert.Equal(0, _cli.Run(["place", "--policy", "eplb", "--load", trace, .. s_topology, "--out", eplbPath]).ExitCode);

        // Trivial from EPLB's placement: it moves back, and says how many slots changed.
        var r = _cli.Run(["place", "--policy", "trivial", "--load", trace, .. s_topology, "--previous", eplbPath, "--out", sglangPath, "--format", "sglang", "--stats", "-"]);

        Assert.Equal(0, r.ExitCode);
        var written = PlacementFiles.Read(sglangPath, Topology.Create(8, 5), 32);
        Assert.Equal(Core.Policies.TrivialPolicy.Build(Topology.Create(8, 5), 4, 32).Phy2Log.ToArray(), written.Phy2Log.ToArray());
        var statsStart = r.Stdout.IndexOf('{', StringComparison.Ordinal);
        var stats = JObject.Parse(r.Stdout[statsStart..]);
        Assert.False((bool)stats["kept"]!);
        Assert.Equal(PlacementDiff.CountChanges(PlacementFiles.Read(eplbPath), written), (int)stats["expertsMoved"]!);
    }

    [Fact]
    public void Evaluate_Json_HasEveryLayerAndSummary()
    {
        var trace = _cli.SkewedTrace(steps: 60);
        var placement = _cli.PathOf("p.json");
        Assert.Equal(0, _cli.Run(["place", "--policy", "trivial", "--load", trace, .. s_topology, "--out", placement]).ExitCode);

        var r = _cli.Run("evaluate", "--placement", placement, "--load", trace, "--json", "-");

        Assert.Equal(0, r.ExitCode);
        var layers = (JArray)r.Json["layers"]!;
        Assert.Equal([0, 1, 2, 3], layers.Select(l => (int)l["layer"]!));
        Assert.All(layers, l => Assert.True((double)l["imbalance"]! >= 1));
        Assert.All(layers, l => Assert.Equal(40, (int)l["replicas"]!));
        var expected = PlacementMetrics.Evaluate(PlacementFiles.Read(placement), LoadFiles.Read(trace).Sum());
        Assert.Equal(expected.ImbalanceMean, (double)r.Json["imbalanceMean"]!, 9);
        Assert.Equal(expected.BestEpSum, (double)r.Json["bestEpSum"]!, 6);
    }

    [Fact]
    public void Evaluate_Table_PrintsOneRowPerLayerAndASummary()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var placement = _cli.PathOf("p.json");
        Assert.Equal(0, _cli.Run(["place", "--policy", "trivial", "--load", trace, .. s_topology, "--out", placement]).ExitCode);

        var r = _cli.Run("evaluate", "--placement", placement, "--load", trace);

        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.Split('\n');
        Assert.Equal(4, lines.Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^[0-3] ")));
        Assert.Contains(lines, l => l.StartsWith("summary ", StringComparison.Ordinal));
    }

    [Fact]
    public void Help_ListsVerbsAndEachVerbsOptions()
    {
        var top = _cli.Run("--help");
        Assert.Equal(0, top.ExitCode);
        foreach (var verb in new[] { "place", "evaluate", "replay", "compare", "report", "trace generate", "policy check", "policy list", "conformance" })
        {
            Assert.Contains("  " + verb + " ", top.Stdout, StringComparison.Ordinal);
            var help = _cli.Run([.. verb.Split(' '), "--help"]);
            Assert.Equal(0, help.ExitCode);
            Assert.StartsWith("usage: expertbridge " + verb, help.Stdout, StringComparison.Ordinal);
            Assert.Contains("example:", help.Stdout, StringComparison.Ordinal);
        }

        var none = _cli.Run();
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("usage:", none.Stderr, StringComparison.Ordinal);
    }
}
