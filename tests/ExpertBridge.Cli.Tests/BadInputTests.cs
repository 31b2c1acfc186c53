using ExpertBridge.Core.Formats;
using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Cli.Tests;

/// <summary>
/// Every class of user mistake: exit code 2, exactly one line on stderr of the form
/// <c>expertbridge: subject: detail (rule: rule)</c>, no stack trace. Internal errors: exit 1.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private static readonly string[] s_topology = ["--devices", "8", "--slots-per-device", "5"];

    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Evaluate_PlacementWithOtherLayerCount_WrongShape()
    {
        var small = _cli.SkewedTrace("small.npy", steps: 20);
        var placement = _cli.PathOf("p.json");
        Assert.Equal(0, _cli.Run(["place", "--policy", "trivial", "--load", small, .. s_topology, "--out", placement]).ExitCode);
        var otherLoad = _cli.WriteFile("load.json", "{\"load\": [" + string.Join(',', Enumerable.Repeat("[" + string.Join(',', Enumerable.Repeat(1, 32)) + "]", 3)) + "]}");

        var r = _cli.Run("evaluate", "--placement", placement, "--load", otherLoad);

        AssertUserError(r, placement, PlacementValidator.RuleShape);
    }

    [Fact]
    public void Replay_NegativeCount_NamesFileAndRule()
    {
        var load = _cli.WriteFile("neg.json", "{\"load\": [[[1, 2, -3, 4]], [[1, 2, 3, 4]]]}");

        var r = _cli.Run("replay", "--trace", load, "--policy", "trivial", "--devices", "2", "--slots-per-device", "2", "--window", "1");

        AssertUserError(r, load, ">= 0");
        Assert.Contains("-3", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Place_NaNCount_NamesFileAndRule()
    {
        var npy = _cli.RawNpy("nan.npy", "(2, 4)", [1, 2, 3, 4, 5, float.NaN, 7, 8]);

        var r = _cli.Run("place", "--policy", "trivial", "--load", npy, "--devices", "2", "--slots-per-device", "2", "--out", _cli.PathOf("p.json"));

        AssertUserError(r, npy, "finite");
    }

    [Fact]
    public void Evaluate_SlotsNotDevicesTimesSlotsPerDevice_NamesFileAndRule()
    {
        var load = _cli.WriteFile("load.json", "{\"load\": [[5, 1, 1, 1]]}");
        var sglang = _cli.WriteFile("sglang.json", "{\"physical_to_logical_map\": [[0, 1, 2, 3, 0, 1, 2]]}");

        var r = _cli.Run("evaluate", "--placement", sglang, "--load", load, "--devices", "2", "--slots-per-device", "4");

        AssertUserError(r, sglang, PlacementFiles.RuleLayerSlots);
        Assert.Contains("7 slots", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Replay_ExpertsNotDivisibleByGroups_NamesGroups()
    {
        var trace = _cli.SkewedTrace(steps: 20);

        var r = _cli.Run(["replay", "--trace", trace, "--policy", "trivial", .. s_topology, "--groups", "5", "--window", "5"]);

        AssertUserError(r, "--groups", "experts divisible by groups");
    }

    [Fact]
    public void Replay_FewerSlotsThanExperts_NamesSlotsPerDevice()
    {
        var trace = _cli.SkewedTrace(steps: 20);

        var r = _cli.Run("replay", "--trace", trace, "--policy", "trivial", "--devices", "4", "--slots-per-device", "4", "--window", "5");

        AssertUserError(r, "--slots-per-device", "devices x slots-per-device >= experts");
    }

    [Fact]
    public void Replay_MissingTraceFile_NamesOptionAndFile()
    {
        var missing = _cli.PathOf("nope.npy");

        var r = _cli.Run(["replay", "--trace", missing, "--policy", "trivial", .. s_topology]);

        AssertUserError(r, "--trace", "input files exist");
        Assert.Contains(missing, r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Place_MalformedJson_NamesFile()
    {
        var broken = _cli.WriteFile("broken.json", "{\"load\": [[1, 2, 3");

        var r = _cli.Run(["place", "--policy", "trivial", "--load", broken, .. s_topology, "--out", _cli.PathOf("p.json")]);

        AssertUserError(r, broken, "");
    }

    [Fact]
    public void Replay_NpyWithBadMagic_NamesFile()
    {
        var bad = _cli.PathOf("bad.npy");
        File.WriteAllBytes(bad, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

        var r = _cli.Run(["replay", "--trace", bad, "--policy", "trivial", .. s_topology]);

        AssertUserError(r, bad, "");
    }

    [Fact]
    public void Replay_TruncatedNpy_NamesFile()
    {
        var truncated = _cli.RawNpy("short.npy", "(3, 1, 4)", new float[12], dataBytes: 20);

        var r = _cli.Run("replay", "--trace", truncated, "--policy", "trivial", "--devices", "2", "--slots-per-device", "2", "--window", "1");

        AssertUserError(r, truncated, "");
    }

    [Theory]
    [InlineData("--window", "abc", "a whole number")]
    [InlineData("--window", "0", "--window >= 1")]
    [InlineData("--interval", "1.5", "a whole number")]
    [InlineData("--devices", "-3", "--devices >= 1")]
    [InlineData("--nodes", "3", "devices must be a multiple of nodes")]
    [InlineData("--window", "300", "window < trace steps")]
    [InlineData("--expert-bytes", "-1", "--expert-bytes >= 0")]
    public void Replay_BadOptionValue_NamesOptionAndRule(string option, string value, string rule)
    {
        var trace = _cli.SkewedTrace(steps: 300);
        string[] args = ["replay", "--trace", trace, "--policy", "trivial", "--devices", "8", "--slots-per-device", "5", "--window", "10"];
        var i = Array.IndexOf(args, option);
        args = i >= 0 ? [.. args[..(i + 1)], value, .. args[(i + 2)..]] : [.. args, option, value];

        var r = _cli.Run(args);

        AssertUserError(r, option, rule);
    }

    [Theory]
    [InlineData(new[] { "trace", "generate", "--skew", "nan", "--out", "{dir}/t.npy" }, "--skew", "a finite number")]
    [InlineData(new[] { "trace", "generate", "--steps", "0", "--out", "{dir}/t.npy" }, "--steps", "steps >= 1")]
    [InlineData(new[] { "trace", "generate", "--seed", "1e3", "--out", "{dir}/t.npy" }, "--seed", "a whole number")]
    [InlineData(new[] { "trace", "generate", "--top-k", "40", "--experts", "32", "--out", "{dir}/t.npy" }, "--top-k", "1 <= top-k <= experts")]
    [InlineData(new[] { "trace", "generate", "--out", "{dir}/no-such-dir/t.npy" }, "--out", "the output's directory exists")]
    [InlineData(new[] { "trace", "generate", "--layers", "4" }, "--out", "needs --out F")]
    [InlineData(new[] { "trace", "generate", "--layers", "4", "--layers", "5", "--out", "{dir}/t.npy" }, "--layers", "given at most once")]
    [InlineData(new[] { "trace", "generate", "--out" }, "--out", "takes a value")]
    [InlineData(new[] { "trace", "generate", "--lyers", "4", "--out", "{dir}/t.npy" }, "--lyers", "options listed by 'expertbridge trace generate --help'")]
    [InlineData(new[] { "trace", "generate", "stray", "--out", "{dir}/t.npy" }, "stray", "options listed by 'expertbridge trace generate --help'")]
    [InlineData(new[] { "trace", "make" }, "trace", "one of: trace generate")]
    [InlineData(new[] { "plcae" }, "plcae", "a verb")]
    [InlineData(new[] { "place", "--policy", "trivial", "--load", "{dir}/x", "--devices", "2", "--slots-per-device", "2", "--out", "{dir}/p.json", "--format", "xml" }, "--format", "one of native|sglang|trtllm|omni")]
    [InlineData(new[] { "replay", "--trace", "{dir}/x", "--policy", "nosuch", "--devices", "2", "--slots-per-device", "2", "--quiet" }, "--policy", "a built-in policy")]
    public void Cli_BadArguments_NameOptionAndRule(string[] args, string subject, string rule)
    {
        // {dir} is the harness directory; a load file 'x' exists there.
        _cli.WriteFile("x", "{\"load\": [[1, 1, 1, 1]]}");

        var r = _cli.Run(args.Select(a => a.Replace("{dir}", _cli.Directory, StringComparison.Ordinal)).ToArray());

        AssertUserError(r, subject, rule);
    }

    [Fact]
    public void Replay_PolicyReturnsInvalidPlacement_NamesPolicyLayerSlotAndRule()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var services = new CliServices { Progress = ProgressMode.None, Policies = new FixedResolver(new OutOfRangePolicy()), Cancellation = TestContext.Current.CancellationToken };

        var r = CliHarness.Run(services, ["replay", "--trace", trace, "--policy", "broken", .. s_topology, "--window", "10"]);

        AssertUserError(r, "policy 'broken' at step 10", PlacementValidator.RuleIdInRange);
        Assert.Contains("layer 2 slot 7", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_PlacementMissingAnExpert_NamesFileLayerAndRule()
    {
        var load = _cli.WriteFile("load.json", "{\"load\": [[5, 1, 1, 1]]}");
        var placement = _cli.WriteFile("p.json", "{\"format\":\"expertbridge.placement/1\",\"layers\":1,\"logicalExperts\":4,\"devices\":2,\"slotsPerDevice\":2,\"nodes\":1,\"phy2log\":[[0,1,2,-1]]}");

        var r = _cli.Run("evaluate", "--placement", placement, "--load", load);

        AssertUserError(r, placement, PlacementValidator.RuleEveryExpertPlaced);
        Assert.Contains("expert 3", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Replay_PolicyThrows_InternalErrorIsOneLineAndVerboseAddsStack()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var services = new CliServices { Progress = ProgressMode.None, Policies = new FixedResolver(new ThrowingPolicy()), Cancellation = TestContext.Current.CancellationToken };
        string[] args = ["replay", "--trace", trace, "--policy", "crash", .. s_topology, "--window", "10"];

        var quiet = CliHarness.Run(services, args);
        var verbose = CliHarness.Run(services, [.. args, "--verbose"]);

        Assert.Equal(1, quiet.ExitCode);
        Assert.Single(quiet.StderrLines);
        Assert.StartsWith("expertbridge: internal error: PolicyFailedException: policy 'crash' failed at step 10", quiet.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, verbose.ExitCode);
        Assert.Contains(verbose.StderrLines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public void Simulate_JsonOverTheTrace_RefusedBeforeAnythingRunsAndTheTraceSurvives()
    {
        var trace = _cli.SkewedTrace("t.npy", steps: 30);
        var before = File.ReadAllBytes(trace);

        var r = _cli.Run(["simulate", "--trace", trace, "--policies", "eplb", .. s_topology, "--window", "10", "--json", trace]);

        AssertUserError(r, "--json", "an output never overwrites an input");
        Assert.Contains("is also the --trace input", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(trace));
    }

    [Fact]
    public void Simulate_TwoOutputsToOneFile_Refused()
    {
        var trace = _cli.SkewedTrace("t.npy", steps: 30);
        var output = _cli.PathOf("out.json");

        var r = _cli.Run(["simulate", "--trace", trace, "--policies", "eplb", .. s_topology, "--window", "10", "--json", output, "--export-workload", output]);

        AssertUserError(r, "--export-workload", "outputs go to different files");
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Replay_JsonInADirectoryThatTakesNoFiles_RefusedBeforeTheReplay()
    {
        // /proc exists but refuses new files: the output is probed when the arguments are read, not after the run.
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("needs /proc, a directory that exists and refuses new entries (Linux)");
        }

        var trace = _cli.SkewedTrace("t.npy", steps: 30);

        var r = _cli.Run(["replay", "--trace", trace, "--policy", "eplb", .. s_topology, "--window", "10", "--json", "/proc/expertbridge.json"]);

        AssertUserError(r, "--json", "the output's directory is writable");
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void Replay_OptionNoPolicyReads_WarnsNamingItAndStillRuns()
    {
        // keep-slot is a misspelt keep-slots: the run goes on (one --option list serves every policy of a comparison)
        // but says, once, that the key had no effect; the key eplb does read is not mentioned.
        var trace = _cli.SkewedTrace("t.npy", steps: 30);

        var r = _cli.Run(["replay", "--trace", trace, "--policy", "eplb", .. s_topology, "--window", "10", "--option", "keep-slot=true", "--option", "window=10"]);

        Assert.Equal(0, r.ExitCode);
        var line = Assert.Single(r.StderrLines, l => l.Contains("warning", StringComparison.Ordinal));
        Assert.StartsWith("expertbridge: warning: --option keep-slot=true: no policy of this run read it", line, StringComparison.Ordinal);
        Assert.DoesNotContain("window=10", r.Stderr, StringComparison.Ordinal);
    }

    private static void AssertUserError(CliResult r, string subject, string rule)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}, stderr: {r.Stderr}");
        var line = Assert.Single(r.StderrLines);
        Assert.StartsWith($"expertbridge: {subject}: ", line, StringComparison.Ordinal);
        Assert.Matches(@"\(rule: [^)]*" + System.Text.RegularExpressions.Regex.Escape(rule), line);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal);
    }

    private sealed class FixedResolver(IPlacementPolicy policy) : IPolicyResolver
    {
        public IPlacementPolicy Resolve(string spec, PolicyOptions options) => policy;
    }

    private sealed class OutOfRangePolicy : IPlacementPolicy
    {
        public string Name => "broken";

        public PolicyDecision Decide(PolicyContext context)
        {
            var p = context.Current.CopyPhy2Log();
            p[(2 * context.Topology.Slots) + 7] = 999;
            return PolicyDecision.Apply(new Placement(context.Topology, context.LogicalExperts, p));
        }
    }

    private sealed class ThrowingPolicy : IPlacementPolicy
    {
        public string Name => "crash";

        public PolicyDecision Decide(PolicyContext context) => throw new InvalidOperationException("boom");
    }

    [Fact]
    public void Serve_HostBackend_NamesTheBackendKey()
    {
        var config = _cli.WriteFile("bridge.json", "{ \"model\": { \"layers\": 1, \"experts\": 4 }, \"topology\": { \"devices\": 2, \"slotsPerDevice\": 2 }, \"backend\": \"host\" }");

        var result = _cli.Run("serve", "--config", config);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("bridge.json: backend", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Serve_UnknownConfigKey_NamesTheKey()
    {
        var config = _cli.WriteFile("bridge.json", "{ \"model\": { \"layers\": 1, \"experts\": 4 }, \"topology\": { \"devices\": 2, \"slotsPerDevice\": 2 }, \"cadence\": 3 }");

        var result = _cli.Run("serve", "--config", config);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("bridge.json: cadence", result.Stderr, StringComparison.Ordinal);
    }
}
