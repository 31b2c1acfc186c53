using ExpertBridge.Core;
using ExpertBridge.Host;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Host.Tests;

public class HostConfigTests
{
    private const string Model = "\"model\": { \"layers\": 2, \"experts\": 8 }, \"topology\": { \"devices\": 4, \"slotsPerDevice\": 3 }";

    [Fact]
    public void Parse_MinimalConfig_AppliesDocumentedDefaults()
    {
        var c = HostConfig.Parse("{" + Model + "}", "bridge.json");

        Assert.Equal(2, c.Layers);
        Assert.Equal(8, c.Experts);
        Assert.Equal(12, c.Topology.Slots);
        Assert.Equal(BackendKind.Host, c.Backend);
        Assert.Equal("trivial", c.Policy);
        Assert.Equal(TimeSpan.FromSeconds(2), c.PolicyTimeout);
        Assert.Equal(0, c.Rebalance.CadenceSteps);
        Assert.Equal(1.3, c.Rebalance.ImbalanceTrigger);
        Assert.Equal(50, c.Rebalance.CheckEverySteps);
        Assert.Equal(512, c.Rebalance.WindowSteps);
        Assert.Equal(100, c.Rebalance.WarmupSteps);
        Assert.Equal(200, c.Rebalance.MinStepsBetween);
        Assert.Equal(0, c.MoveBudget.MaxExpertsPerRebalance);
        Assert.Equal(1, c.MoveBudget.MaxLayersPerBoundary);
        Assert.Equal(0, c.Metrics.Port);
        Assert.Equal(LogLevel.Information, c.LogLevel);
    }

    [Fact]
    public void Parse_EveryKey_ReadsEveryValue()
    {
        var c = HostConfig.Parse("""
            { "model": { "layers": 3, "experts": 16, "expertGroups": 4 },
              "topology": { "devices": 4, "slotsPerDevice": 5, "nodes": 2, "expertBytes": 4096 },
              "backend": "none", "policy": "trivial", "policyOptions": { "alpha": 0.5, "mode": "fast", "on": true },
              "policyTimeoutMs": 250,
              "rebalance": { "cadenceSteps": 100, "imbalanceTrigger": 1.1, "checkEverySteps": 10, "windowSteps": 64, "warmupSteps": 5, "minStepsBetween": 7 },
              "moveBudget": { "maxExpertsPerRebalance": 9, "maxBytesPerRebalance": 1000000, "maxLayersPerBoundary": 2 },
              "metrics": { "port": 9105, "host": "localhost" },
              "logging": { "level": "debug" } }
            """);

        Assert.Equal(4, c.ExpertGroups);
        Assert.Equal(2, c.Topology.Nodes);
        Assert.Equal(4096, c.Topology.ExpertBytes);
        Assert.Equal(BackendKind.None, c.Backend);
        Assert.Equal("0.5", c.PolicyOptions.GetString("alpha", ""));
        Assert.True(c.PolicyOptions.GetBool("on", false));
        Assert.Equal(TimeSpan.FromMilliseconds(250), c.PolicyTimeout);
        Assert.Equal(new RebalanceConfig { CadenceSteps = 100, ImbalanceTrigger = 1.1, CheckEverySteps = 10, WindowSteps = 64, WarmupSteps = 5, MinStepsBetween = 7 }, c.Rebalance);
        Assert.Equal(new MoveBudgetConfig { MaxExpertsPerRebalance = 9, MaxBytesPerRebalance = 1_000_000, MaxLayersPerBoundary = 2 }, c.MoveBudget);
        Assert.Equal(9105, c.Metrics.Port);
        Assert.Equal(LogLevel.Debug, c.LogLevel);
    }

    [Theory]
    [InlineData("{" + Model + ", \"cadence\": 5}", "bridge.json: cadence", "a known key")]
    [InlineData("{" + Model + ", \"rebalance\": { \"cadenceStep\": 5 } }", "bridge.json: rebalance.cadenceStep", "cadenceSteps")]
    [InlineData("{" + Model + ", \"rebalance\": { \"cadenceSteps\": -1 } }", "bridge.json: rebalance.cadenceSteps", ">= 0")]
    [InlineData("{" + Model + ", \"rebalance\": { \"imbalanceTrigger\": 0.5 } }", "bridge.json: rebalance.imbalanceTrigger", ">= 1")]
    [InlineData("{" + Model + ", \"rebalance\": { \"checkEverySteps\": 0 } }", "bridge.json: rebalance.checkEverySteps", ">= 1")]
    [InlineData("{ \"model\": { \"layers\": \"two\", \"experts\": 8 }, \"topology\": { \"devices\": 4, \"slotsPerDevice\": 3 } }", "bridge.json: model.layers", "a whole number")]
    [InlineData("{ \"topology\": { \"devices\": 4, \"slotsPerDevice\": 3 } }", "bridge.json: model", "required")]
    [InlineData("{ \"model\": { \"layers\": 2, \"experts\": 8 }, \"topology\": { \"devices\": 2, \"slotsPerDevice\": 3 } }", "bridge.json: topology.slotsPerDevice", "devices x slotsPerDevice >= model.experts")]
    [InlineData("{ \"model\": { \"layers\": 2, \"experts\": 8 }, \"topology\": { \"devices\": 3, \"slotsPerDevice\": 3, \"nodes\": 2 } }", "bridge.json: topology.nodes", "multiple of nodes")]
    [InlineData("{ \"model\": { \"layers\": 2, \"experts\": 8, \"expertGroups\": 3 }, \"topology\": { \"devices\": 4, \"slotsPerDevice\": 3 } }", "bridge.json: model.expertGroups", "divide evenly")]
    [InlineData("{" + Model + ", \"backend\": \"tpu\" }", "bridge.json: backend", "host, none, cuda, cann")]
    [InlineData("{" + Model + ", \"metrics\": { \"port\": 9100, \"host\": \"0.0.0.0\" } }", "bridge.json: metrics.host", "loopback")]
    [InlineData("{" + Model + ", \"metrics\": { \"port\": 70000 } }", "bridge.json: metrics.port", "0 <= value <= 65535")]
    [InlineData("{" + Model + ", \"policyTimeoutMs\": 0 }", "bridge.json: policyTimeoutMs", "1 <= value")]
    [InlineData("{" + Model + ", \"policyOptions\": { \"k\": [1] } }", "bridge.json: policyOptions.k", "a string, number or boolean")]
    [InlineData("{" + Model + ", \"logging\": { \"level\": \"loud\" } }", "bridge.json: logging.level", "Information")]
    [InlineData("{" + Model + ", \"moveBudget\": { \"maxBytesPerRebalance\": -5 } }", "bridge.json: moveBudget.maxBytesPerRebalance", ">= 0")]
    [InlineData("{" + Model + ", \"device\": { \"emulated\": true } }", "bridge.json: device", "only with backend cuda or cann")]
    [InlineData("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"emulate\": true } }", "bridge.json: device.emulate", "emulated, verify")]
    [InlineData("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"verify\": \"yes\" } }", "bridge.json: device.verify", "true or false")]
    [InlineData("{" + Model + ", \"backend\": \"cann\", \"device\": { \"copyStreamsPerDevice\": 0 } }", "bridge.json: device.copyStreamsPerDevice", "1 <= value <= 16")]
    [InlineData("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"withinDeviceCapGBps\": -1 } }", "bridge.json: device.withinDeviceCapGBps", "a finite number >= 0")]
    [InlineData("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"betweenDevicesCapGBps\": 2e6 } }", "bridge.json: device.betweenDevicesCapGBps", "0 (unlimited) <= GB/s <= 1000000")]
    [InlineData("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"withinDeviceCapGBps\": \"200\" } }", "bridge.json: device.withinDeviceCapGBps", "a number")]
    [InlineData("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"capGBps\": 200 } }", "bridge.json: device.capGBps", "withinDeviceCapGBps, betweenDevicesCapGBps")]
    [InlineData("[1, 2]", "bridge.json", "JSON object")]
    [InlineData("{ \"model\": ", "bridge.json", "valid JSON")]
    public void Parse_Mistake_NamesTheKeyAndTheRule(string json, string subject, string rule)
    {
        var ex = Assert.Throws<InputException>(() => HostConfig.Parse(json, "bridge.json"));

        Assert.Equal(subject, ex.Subject);
        Assert.Contains(rule, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_DeviceSettings_AreReadForBackendCuda()
    {
        var c = HostConfig.Parse("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"emulated\": true, \"verify\": true, \"copyStreamsPerDevice\": 3, \"maxInFlightPerDevice\": 8, \"transferTimeoutMs\": 1500 } }", "bridge.json");

        Assert.Equal(BackendKind.Cuda, c.Backend);
        Assert.Equal(new DeviceConfig { Emulated = true, Verify = true, CopyStreamsPerDevice = 3, MaxInFlightPerDevice = 8, TransferTimeout = TimeSpan.FromMilliseconds(1500) }, c.Device);
    }

    [Fact]
    public void Parse_BandwidthCaps_AreGigabytesPerSecondAndDefaultToUnlimited()
    {
        var capped = HostConfig.Parse("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"withinDeviceCapGBps\": 200.5, \"betweenDevicesCapGBps\": 0 } }", "bridge.json");
        var plain = HostConfig.Parse("{" + Model + ", \"backend\": \"cuda\", \"device\": { \"verify\": true } }", "bridge.json");

        Assert.Equal(200_500_000_000L, capped.Device.WithinDeviceBytesPerSecond);
        Assert.Equal(0, capped.Device.BetweenDevicesBytesPerSecond);
        Assert.Equal(0, plain.Device.WithinDeviceBytesPerSecond);
        Assert.Equal(0, plain.Device.BetweenDevicesBytesPerSecond);
    }

    [Fact]
    public void Parse_DuplicateKey_IsRefused()
    {
        var ex = Assert.Throws<InputException>(() => HostConfig.Parse("{" + Model + ", \"backend\": \"host\", \"backend\": \"none\"}", "bridge.json"));

        Assert.Contains("backend", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_RelativePolicyPath_ResolvesAgainstTheConfigFolder()
    {
        var dir = Directory.CreateTempSubdirectory("eb-config-");
        try
        {
            Directory.CreateDirectory(Path.Combine(dir.FullName, "policies"));
            File.WriteAllText(Path.Combine(dir.FullName, "policies", "p.csx"), "// policy");
            var path = Path.Combine(dir.FullName, "bridge.json");
            File.WriteAllText(path, "{" + Model + ", \"policy\": \"policies/p.csx\"}");

            var c = HostConfig.Load(path);

            Assert.Equal(Path.Combine(dir.FullName, "policies", "p.csx"), c.Policy);
            Assert.Equal(path, c.Source);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Load_MissingPolicyFile_NamesThePolicyKeyAndThePath()
    {
        var ex = Assert.Throws<InputException>(() => HostConfig.Parse("{" + Model + ", \"policy\": \"nowhere/p.csx\"}", "bridge.json", "/tmp"));

        Assert.Equal("bridge.json: policy", ex.Subject);
        Assert.Contains("/tmp/nowhere/p.csx", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_NamesThePath()
    {
        var ex = Assert.Throws<InputException>(() => HostConfig.Load("/nonexistent/bridge.json"));

        Assert.Equal("/nonexistent/bridge.json", ex.Subject);
    }
}
