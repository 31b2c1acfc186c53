using ExpertBridge.Devices;
using ExpertBridge.Devices.Conformance;
using Newtonsoft.Json.Linq;

namespace ExpertBridge.Cli.Tests;

/// <summary><c>conformance</c>: the suite on the host backend and on the emulated CUDA driver, its table and its JSON.</summary>
public sealed class ConformanceVerbTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Conformance_Host_PrintsTableWithBandwidthAndWritesJson()
    {
        var json = _cli.PathOf("host.json");

        var r = _cli.Run("conformance", "--backend", "host", "--bytes", "65536", "--json", json);

        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        AssertTableAndJson(r.Stdout, JObject.Parse(File.ReadAllText(json)), "host");
    }

    [Fact]
    public void Conformance_EmulatedCuda_RunsTheRealBindingOverTheEmulator()
    {
        // The emulator libraries are built by `build.ps1 build` into artifacts/native.
        if (!DeviceRuntime.IsAvailable(new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda, Emulated = true }, out var reason))
        {
            Assert.Skip($"the CUDA emulator cannot be opened here: {reason}");
        }

        var json = _cli.PathOf("cuda.json");

        var r = _cli.Run("conformance", "--backend", "cuda", "--emulated", "--bytes", "65536", "--json", json);

        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        var report = JObject.Parse(File.ReadAllText(json));
        AssertTableAndJson(r.Stdout, report, "cuda (emulated)");
        Assert.Equal(0, (int)report["skipped"]!);
    }

    [Fact]
    public void Conformance_Only_RunsTheNamedChecks()
    {
        var r = _cli.Run("conformance", "--only", "enumerate,device-bandwidth", "--bytes", "65536");

        Assert.Equal(0, r.ExitCode);
        Assert.Contains("conformance: 2 passed, 0 failed, 0 skipped", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("d2d_GBps", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Conformance_HostEmulated_IsAUserError()
    {
        var r = _cli.Run("conformance", "--backend", "host", "--emulated");

        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("expertbridge: --emulated: ", Assert.Single(r.StderrLines), StringComparison.Ordinal);
    }

    [Fact]
    public void Conformance_UnknownBackend_NamesTheChoices()
    {
        var r = _cli.Run("conformance", "--backend", "tpu");

        Assert.Equal(2, r.ExitCode);
        Assert.Equal("expertbridge: --backend: 'tpu' is not a choice (rule: one of host|cuda|cann)", Assert.Single(r.StderrLines));
    }

    [Fact]
    public void Conformance_AbsentVendorLibrary_ExitsOneWithTheReason()
    {
        if (DeviceRuntime.IsAvailable(new DeviceRuntimeOptions { Backend = DeviceBackend.Cann }, out _))
        {
            Assert.Skip("an Ascend device is present: this test needs a machine without one");
        }

        var r = _cli.Run("conformance", "--backend", "cann");

        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("conformance: backend not available: ", r.Stdout, StringComparison.Ordinal);
    }

    private static void AssertTableAndJson(string stdout, JObject report, string backend)
    {
        Assert.Equal(backend, (string?)report["backend"]);
        var tests = (JArray)report["tests"]!;
        Assert.Equal(ConformanceSuite.Names, tests.Select(t => (string)t["name"]!));
        var (passed, failed, skipped) = ((int)report["passed"]!, (int)report["failed"]!, (int)report["skipped"]!);
        Assert.Equal(0, failed);
        Assert.Equal(tests.Count, passed + failed + skipped);
        Assert.Equal(passed, tests.Count(t => (string?)t["result"] == "pass"));
        Assert.True((double)tests.Single(t => (string?)t["name"] == "device-bandwidth")["figures"]!["d2d_GBps"]! > 0);

        Assert.StartsWith($"backend: {backend}; devices: ", stdout, StringComparison.Ordinal);
        foreach (var name in ConformanceSuite.Names)
        {
            Assert.Matches($@"(?m)^{name}\s+(pass|skip)\s", stdout);
        }

        Assert.Matches(@"(?m)^device-bandwidth\s+pass\s+[0-9.]+\s+d2d_GBps [0-9.]+", stdout);
        Assert.Contains($"conformance: {passed} passed, 0 failed, {skipped} skipped", stdout, StringComparison.Ordinal);
    }
}
