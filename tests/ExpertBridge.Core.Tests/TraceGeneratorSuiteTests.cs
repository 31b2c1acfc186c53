using ExpertBridge.Core.Traces;

namespace ExpertBridge.Core.Tests;

public class TraceGeneratorSuiteTests
{
    public static TheoryData<string> CaseNames() => [.. TraceSuite.All.Select(c => c.Name)];

    [Fact]
    public void Suite_HasEveryRegimeAtBothScales()
    {
        string[] expected =
        [
            TraceSuite.Stable, TraceSuite.Drifting, TraceSuite.Switching, TraceSuite.StableEp64,
            TraceSuite.StableSmall, TraceSuite.DriftingSmall, TraceSuite.SwitchingSmall,
        ];
        Assert.Equal(expected, TraceSuite.All.Select(c => c.Name));
        Assert.Equal(TraceSuite.All.Count, TraceSuite.All.Select(c => c.Name).Distinct().Count());
        Assert.All(TraceSuite.All, c => Assert.False(string.IsNullOrWhiteSpace(c.Description)));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Case_FitsItsTopologyAndGroups(string name)
    {
        var c = TraceSuite.Get(name);
        c.Options.Validate();
        Assert.True(c.Topology.Slots >= c.Options.Experts, $"{name}: fewer slots than experts");
        Assert.Equal(0, c.Options.Experts % c.Groups);
        Assert.Equal(0, c.Groups % c.Topology.Nodes); // EPLB's hierarchical mode applies
    }

    [Theory]
    [InlineData(TraceSuite.Stable)]
    [InlineData(TraceSuite.Drifting)]
    [InlineData(TraceSuite.Switching)]
    public void Large_IsDeepSeekV3Scale(string name)
    {
        var c = TraceSuite.Get(name);
        Assert.Equal((58, 256, 8), (c.Options.Layers, c.Options.Experts, c.Options.TopK));
        Assert.Equal((32, 9, 4, 8), (c.Topology.Devices, c.Topology.SlotsPerDevice, c.Topology.Nodes, c.Groups));
    }

    [Fact]
    public void Large_RegimesDiffer()
    {
        Assert.Equal(0, TraceSuite.Get(TraceSuite.Stable).Options.Drift);
        Assert.True(TraceSuite.Get(TraceSuite.Drifting).Options.Drift > 0);
        Assert.True(TraceSuite.Get(TraceSuite.Switching).Options.SwitchEvery > 0);
        Assert.Equal((64, 5), (TraceSuite.Get(TraceSuite.StableEp64).Topology.Devices, TraceSuite.Get(TraceSuite.StableEp64).Topology.SlotsPerDevice));
    }

    [Theory]
    [InlineData(TraceSuite.StableSmall)]
    [InlineData(TraceSuite.DriftingSmall)]
    [InlineData(TraceSuite.SwitchingSmall)]
    public void Small_GeneratesTheDeclaredShape(string name)
    {
        var c = TraceSuite.Get(name);
        var trace = c.Generate();
        Assert.Equal((c.Options.Steps, c.Options.Layers, c.Options.Experts), (trace.Steps, trace.Layers, trace.Experts));
        Assert.Equal(c.Options.TokensPerStep * c.Options.TopK, trace.Sum(0, 1).LayerTotal(0), 6);
    }

    [Fact]
    public void Get_IsCaseInsensitive()
    {
        Assert.Same(TraceSuite.Get(TraceSuite.DriftingSmall), TraceSuite.Get("Drifting-Small"));
    }

    [Fact]
    public void Get_UnknownName_ListsTheKnownOnes()
    {
        var ex = Assert.Throws<InputException>(() => TraceSuite.Get("bursty"));
        Assert.Equal("bursty", ex.Subject);
        Assert.Contains("stable, drifting, switching", ex.Message, StringComparison.Ordinal);
    }
}
