using ExpertBridge.Cli.Policies;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Tests;

/// <summary><c>--policy F.csx</c> in the verbs, <c>policy check</c> and <c>policy list</c>, with scripts written into a temp directory.</summary>
public sealed class ScriptPolicyTests : IDisposable
{
    private static readonly string[] s_topology = ["--devices", "8", "--slots-per-device", "5"];

    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Replay_ScriptWrappingEplb_GivesTheBuiltInsNumbers()
    {
        var trace = _cli.SkewedTrace(steps: 60);
        var script = _cli.WriteScript("eplb-script.csx", Scripts.Eplb);

        var r = _cli.Run(["replay", "--trace", trace, "--policy", "eplb", "--policy", script, .. s_topology, "--window", "20", "--interval", "10", "--json", "-"]);

        Assert.True(r.ExitCode == 0, r.Stderr);
        var results = (JArray)r.Json["results"]!;
        Assert.Equal("eplb", (string?)results[1]["policy"]);
        Assert.True((int)results[1]["rebalances"]! > 0);
        foreach (var field in new[] { "imbalanceMean", "expertsMoved", "rebalances" })
        {
            Assert.Equal((double)results[0][field]!, (double)results[1][field]!);
        }
    }

    [Fact]
    public void Replay_OptionValue_ReachesTheScriptsTopLevelOverItsHeader()
    {
        var trace = _cli.SkewedTrace(steps: 30);
        var script = _cli.WriteScript("shift.csx", Scripts.Shift);

        var byHeader = _cli.Run(["replay", "--trace", trace, "--policy", script, .. s_topology, "--window", "10", "--json", "-"]);
        var byOption = _cli.Run(["replay", "--trace", trace, "--policy", script, .. s_topology, "--window", "10", "--option", "shift=3", "--json", "-"]);

        Assert.True(byHeader.ExitCode == 0, byHeader.Stderr);
        Assert.Equal("shift1", (string?)byHeader.Json["policy"]);
        Assert.True(byOption.ExitCode == 0, byOption.Stderr);
        Assert.Equal("shift3", (string?)byOption.Json["policy"]);
        Assert.True((long)byOption.Json["expertsMoved"]! > 0);
    }

    [Fact]
    public void Place_BareName_IsFoundInThePolicyDirectory()
    {
        var trace = _cli.SkewedTrace(steps: 20);
        _cli.WriteScript("shift.csx", Scripts.Shift);

        var r = _cli.Run(["place", "--policy", "shift", "--load", trace, .. s_topology, "--out", _cli.PathOf("p.json")]);

        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(_cli.PathOf("p.json")));
    }

    [Fact]
    public void Replay_ScriptWithCompileError_ExitsTwoNamingFileLineColumn()
    {
        var trace = _cli.SkewedTrace(steps: 20);
        var script = _cli.WriteScript("broken.csx", Scripts.CompileError);

        var r = _cli.Run(["replay", "--trace", trace, "--policy", script, .. s_topology, "--window", "10"]);

        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.StderrLines);
        Assert.StartsWith($"expertbridge: {script}:2:12: CS0246: ", line, StringComparison.Ordinal);
        Assert.Contains("NoSuchPolicy", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Simulate_ScriptTouchingFiles_IsRefusedByTheGuardWithItsRule()
    {
        var trace = _cli.SkewedTrace(steps: 20);
        var script = _cli.WriteScript("files.csx", Scripts.ForbiddenApi);

        var r = _cli.Run(["simulate", "--trace", trace, "--model", "small", "--policies", $"eplb,{script}", .. s_topology, "--window", "10"]);

        Assert.Equal(2, r.ExitCode);
        Assert.Equal($"expertbridge: {script}:2:1: System.IO.File is not allowed in policies (rule: no file system access) (rule: the policy script compiles and loads)", Assert.Single(r.StderrLines));
    }

    [Fact]
    public void Replay_ScriptReturningInvalidPlacement_ExitsTwoNamingScriptAndStep()
    {
        var trace = _cli.SkewedTrace(steps: 20);
        var script = _cli.WriteScript("zeros.csx", Scripts.InvalidPlacement);

        var r = _cli.Run(["replay", "--trace", trace, "--policy", script, .. s_topology, "--window", "10"]);

        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.StderrLines);
        Assert.StartsWith($"expertbridge: {script}: policy 'zeros' failed at step 10 (InvalidPlacement): ", line, StringComparison.Ordinal);
        Assert.EndsWith($"(rule: {ScriptPolicy.RuleDecides})", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_ScriptThatThrows_ExitsTwoNamingTheScriptLineAndWritesNoReport()
    {
        var trace = _cli.SkewedTrace(steps: 20);
        var script = _cli.WriteScript("boom.csx", Scripts.Throws);
        var outDir = _cli.PathOf("report");

        var r = _cli.Run(["report", "--trace", trace, "--policies", $"trivial,{script}", .. s_topology, "--window", "10", "--out", outDir]);

        Assert.Equal(2, r.ExitCode);
        var line = Assert.Single(r.StderrLines);
        Assert.StartsWith($"expertbridge: {script}: policy 'boom' failed at step 10 (Exception): ", line, StringComparison.Ordinal);
        Assert.Contains("boom at step 10", line, StringComparison.Ordinal);
        Assert.Contains($"{script}:7", line, StringComparison.Ordinal);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Replay_PolicyTimeout_BelowTheDecisionTimeStopsWithTheRule_AboveItRuns()
    {
        var trace = _cli.SkewedTrace(steps: 12);
        var script = _cli.WriteScript("slow.csx", Scripts.Slow);
        string[] replay = ["replay", "--trace", trace, "--policy", script, .. s_topology, "--window", "10"];

        var tight = _cli.Run([.. replay, "--policy-timeout-ms", "50"]);
        var loose = _cli.Run([.. replay, "--policy-timeout-ms", "20000"]);
        var invalid = _cli.Run([.. replay, "--policy-timeout-ms", "0"]);

        Assert.Equal(2, tight.ExitCode);
        var line = Assert.Single(tight.StderrLines);
        Assert.StartsWith($"expertbridge: {script}: policy 'slow' failed at step 10 (Timeout", line, StringComparison.Ordinal);
        Assert.True(loose.ExitCode == 0, loose.Stderr);
        Assert.Equal(2, invalid.ExitCode);
        Assert.StartsWith("expertbridge: --policy-timeout-ms", Assert.Single(invalid.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyCheck_MisspeltOption_PassesButWarnsThatTheKeyHadNoEffect()
    {
        var script = _cli.WriteScript("shift.csx", Scripts.Shift);

        var r = _cli.Run("policy", "check", script, "--option", "shift=2", "--option", "shfit=3");

        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Contains("policy 'shift2'", r.Stdout, StringComparison.Ordinal);
        var warning = Assert.Single(r.StderrLines);
        Assert.StartsWith("expertbridge: warning: --option shfit=3: no policy of this run read it", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyCheck_ValidScript_PrintsWhatItCheckedAndExitsZero()
    {
        var script = _cli.WriteScript("shift.csx", Scripts.Shift);

        var r = _cli.Run("policy", "check", script);

        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        var summary = Assert.Single(r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"ok: {script}: policy 'shift1' loaded in ", summary, StringComparison.Ordinal);
        Assert.Contains("synthetic case 3 layers x 8 experts", summary, StringComparison.Ordinal);
        Assert.Contains("first call applied", summary, StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyCheck_BrokenScripts_PrintFileLineColumnAndExitTwo()
    {
        var good = _cli.WriteScript("shift.csx", Scripts.Shift);
        var compile = _cli.WriteScript("broken.csx", Scripts.CompileError);
        var guard = _cli.WriteScript("files.csx", Scripts.ForbiddenApi);

        var r = _cli.Run("policy", "check", good, compile, "--script", guard);

        Assert.Equal(2, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith($"ok: {good}: ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"{compile}:2:12: CS0246: ", StringComparison.Ordinal));
        Assert.Contains($"failed: {compile}: 1 error(s)", lines);
        Assert.Contains($"{guard}:2:1: System.IO.File is not allowed in policies (rule: no file system access)", lines);
        Assert.Contains(lines, l => l.StartsWith($"failed: {guard}: ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("zeros.csx", Scripts.InvalidPlacement, "failed (InvalidPlacement")]
    [InlineData("boom.csx", Scripts.Throws, "failed (Exception")]
    public void PolicyCheck_ScriptFailingOnTheSyntheticCase_ExitsTwoSayingHow(string name, string text, string expected)
    {
        var script = _cli.WriteScript(name, text);

        var r = _cli.Run("policy", "check", script);

        Assert.Equal(2, r.ExitCode);
        var summary = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        Assert.StartsWith($"failed: {script}: ", summary, StringComparison.Ordinal);
        Assert.Contains(expected, summary, StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyCheck_NoScript_IsAUserError()
    {
        var r = _cli.Run("policy", "check");

        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("expertbridge: --script: ", Assert.Single(r.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyList_Directory_ShowsBuiltInsThenScriptsWithTheirHeaderLine()
    {
        _cli.WriteScript("shift.csx", Scripts.Shift);
        _cli.WriteScript("eplb.csx", Scripts.Eplb);
        _cli.WriteScript("bad-header.csx", "// bad header\n// @option budget\nreturn BuiltInPolicies.TryCreate(\"trivial\")!;\n");

        var r = _cli.Run("policy", "list", "--dir", _cli.PolicyDirectory);

        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^policy\s+kind\s+description\s+options$", lines[0]);
        Assert.Matches(@"^eplb\s+built-in\s+built into ExpertBridge\.Core\s+-$", lines[1]);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^shift\s+script\s+shift: moves every device's experts to the device `shift` further on \(a test policy\)\s+shift=1$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^eplb\.csx\s+script\s+eplb through a script\s+-$"));
        Assert.Contains(lines, l => l.StartsWith(Path.Combine(_cli.PolicyDirectory, "bad-header.csx") + ":2:", StringComparison.Ordinal));
    }

    [Fact]
    public void PolicyList_DefaultDirectoryAbsent_ListsBuiltInsAndSaysWhere()
    {
        var r = _cli.Run("policy", "list");

        Assert.Equal(0, r.ExitCode);
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^trivial\s+built-in\s"));
        Assert.DoesNotContain(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"\sscript\s"));
        Assert.Contains($"(no policy directory '{_cli.PolicyDirectory}' here", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void PolicyList_NamedDirectoryMissing_IsAUserError()
    {
        var missing = _cli.PathOf("nowhere");

        var r = _cli.Run("policy", "list", "--dir", missing);

        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith($"expertbridge: {missing}: directory not found", Assert.Single(r.StderrLines), StringComparison.Ordinal);
    }
}
