using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Tests;

/// <summary>The latency-model verb: JSON shape, ordering against trivial and BestEP, workload export, bad input.</summary>
public sealed class SimulateVerbTests : IDisposable
{
    private static readonly string[] s_topology = ["--devices", "8", "--slots-per-device", "5", "--model", "small"];

    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Simulate_EplbOnSkewedTrace_FasterThanTrivialNoFasterThanBestEp()
    {
        var trace = _cli.SkewedTrace();

        var r = _cli.Run(["simulate", "--trace", trace, "--policies", "eplb", .. s_topology, "--window", "100", "--allow-colocated", "--json", "-"]);

        Assert.Equal(0, r.ExitCode);
        var json = (JObject)r.Json;
        var policies = (JArray)json["policies"]!;
        Assert.Equal(["trivial", "eplb"], policies.Select(p => (string)p["policy"]!));
        foreach (var p in policies)
        {
            Assert.True((double)p["stepLatencyMeanMs"]! > 0);
            Assert.True((double)p["stepLatencyP99Ms"]! >= (double)p["stepLatencyMeanMs"]! * 0.999);
            Assert.True((double)p["throughputTokensPerS"]! > 0);
        }

        var trivial = (double)policies[0]["stepLatencyMeanMs"]!;
        var eplb = (double)policies[1]["stepLatencyMeanMs"]!;
        var best = (double)json["bestEp"]!["stepLatencyMeanMs"]!;
        Assert.True(eplb < trivial, $"eplb {eplb} ms should beat trivial {trivial} ms on a skewed trace");
        Assert.True(best <= eplb, $"BestEP {best} ms is a bound; eplb gave {eplb} ms");
        // EPLB fitted on each step's own loads beats EPLB fitted on the past window, and stays above BestEP.
        var hindsight = (double)json["eplbHindsight"]!["stepLatencyMeanMs"]!;
        Assert.True(hindsight < eplb, $"eplb in hindsight {hindsight} ms vs eplb {eplb} ms");
        Assert.True(best <= hindsight, $"BestEP {best} ms vs eplb in hindsight {hindsight} ms");
    }

    [Fact]
    public void Simulate_ExportWorkload_WritesEverySlotForEveryPolicy()
    {
        var trace = _cli.SkewedTrace();
        var workload = _cli.PathOf("workload.txt");

        var r = _cli.Run(["simulate", "--trace", trace, "--policies", "trivial,eplb", .. s_topology, "--window", "100", "--allow-colocated", "--export-workload", workload, "--export-steps", "3", "--export-layers", "2", "--quiet"]);

        Assert.Equal(0, r.ExitCode);
        var lines = File.ReadAllLines(workload);
        Assert.Equal("ebmoe 1", lines[0]);
        Assert.Equal("shape 8 5 2 3 1024 512", lines[1]);
        Assert.Equal(2, lines.Count(l => l.StartsWith("policy ", StringComparison.Ordinal)));
        var rows = lines.Where(l => !l.StartsWith("policy", StringComparison.Ordinal) && !l.StartsWith("shape", StringComparison.Ordinal) && !l.StartsWith("ebmoe", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2 * 3 * 2, rows.Length);
        Assert.All(rows, row => Assert.Equal(40, row.Split(' ').Length));
        // Every layer of a step routes tokens x top-k pairs in total (512 x 4), whichever placement serves them.
        Assert.All(rows, row => Assert.InRange(row.Split(' ').Sum(int.Parse), 2048 - 32, 2048 + 32));
    }

    [Fact]
    public void Simulate_UnknownModel_NamesOptionAndRule()
    {
        var trace = _cli.SkewedTrace(steps: 120);

        var r = _cli.Run(["simulate", "--trace", trace, "--policies", "eplb", "--devices", "8", "--slots-per-device", "5", "--model", "gpt-5"]);

        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.StderrLines);
        Assert.Contains("--model", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("deepseek-v3", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Simulate_BalancedDispatch_NoSlowerThanEvenAndAboveTheBalancedBound()
    {
        var trace = _cli.SkewedTrace();
        string[] args = ["simulate", "--trace", trace, "--policies", "eplb", .. s_topology, "--window", "100", "--json", "-"];

        var even = (JObject)_cli.Run(args).Json;
        var r = _cli.Run([.. args, "--dispatch", "balanced"]);

        Assert.Equal(0, r.ExitCode);
        var balanced = (JObject)r.Json;
        Assert.Equal("even", (string)even["dispatch"]!);
        Assert.Equal("balanced", (string)balanced["dispatch"]!);
        static double Eplb(JObject j) => (double)j["policies"]![1]!["stepLatencyMeanMs"]!;
        Assert.True(Eplb(balanced) < Eplb(even), $"balanced {Eplb(balanced)} ms vs even {Eplb(even)} ms: EPLB's replicas let the split absorb each step's noise");
        // The step's own load spread perfectly is the same bound under both dispatches, and nothing beats it.
        var bound = (double)balanced["balancedBound"]!["stepLatencyMeanMs"]!;
        Assert.Equal((double)even["balancedBound"]!["stepLatencyMeanMs"]!, bound, 9);
        Assert.All((JArray)balanced["policies"]!, p => Assert.True((double)p["stepLatencyMeanMs"]! >= bound));
        Assert.True((double)balanced["eplbHindsight"]!["stepLatencyMeanMs"]! >= bound);
    }

    [Fact]
    public void Simulate_UnknownDispatch_NamesOptionAndChoices()
    {
        var trace = _cli.SkewedTrace(steps: 120);

        var r = _cli.Run(["simulate", "--trace", trace, "--policies", "eplb", .. s_topology, "--dispatch", "lp"]);

        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.StderrLines);
        Assert.Contains("--dispatch", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("even|balanced", r.Stderr, StringComparison.Ordinal);
    }
}
