using System.Reflection;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Conformance;

namespace ExpertBridge.Conformance;

public class SuiteCoverageTests
{
    [Fact]
    public void Contract_EveryCheck_HasOneFact()
    {
        var facts = typeof(DeviceContract).GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => m.GetCustomAttribute<FactAttribute>() is not null)
            .ToList();
        Assert.Equal(ConformanceSuite.Names.Count, facts.Count);
    }

    [Fact]
    public void Report_Json_HasCountsAndPerTestEntries()
    {
        using var runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { HostDevices = 1, HostDeviceMemory = 64L << 20 });
        var report = ConformanceSuite.Run(runtime, new ConformanceOptions { Only = ["enumerate", "peer-copy"], BandwidthBytes = 1 << 20 });
        var json = System.Text.Json.JsonDocument.Parse(report.ToJson()).RootElement;
        Assert.Equal("host", json.GetProperty("backend").GetString());
        Assert.Equal(1, json.GetProperty("passed").GetInt32());
        Assert.Equal(0, json.GetProperty("failed").GetInt32());
        Assert.Equal(1, json.GetProperty("skipped").GetInt32());
        Assert.Equal(2, json.GetProperty("tests").GetArrayLength());
        Assert.Contains("conformance: 1 passed, 0 failed, 1 skipped", report.ToTable(), StringComparison.Ordinal);
    }

    [Fact]
    public void RunOne_UnknownCheck_NamesTheKnownOnes()
    {
        using var runtime = DeviceRuntime.Open();
        var ex = Assert.Throws<ExpertBridge.Core.InputException>(() => ConformanceSuite.RunOne(runtime, "nope"));
        Assert.Contains("relocation-bit-exact", ex.Message, StringComparison.Ordinal);
    }
}
