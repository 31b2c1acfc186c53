using ExpertBridge.Core;
using ExpertBridge.Core.Latency;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

public class LatencyModelTests
{
    // follow: the back-to-back time of an expert with 64 tokens (0: no additivity points, followers cost a single call).
    private static GemmTable Table(double follow = 0) =>
        new("test", "fp8", 1024, 512, [(1, 0.04), (128, 0.04), (1024, 0.10)], follow > 0 ? [(64, follow)] : [], "test table");

    [Fact]
    public void GemmTable_Interpolates_FlatBelowLinearBetweenExtrapolatesAbove()
    {
        var t = Table();
        Assert.Equal(0, t.Millis(0));
        Assert.Equal(0.04, t.Millis(0.5), 12);
        Assert.Equal(0.04, t.Millis(100), 12);
        Assert.Equal(0.07, t.Millis(576), 12);
        Assert.Equal(0.10 + (0.06 / 896 * 1024), t.Millis(2048), 12);
    }

    [Fact]
    public void GemmTable_Default_IsTheCommittedH200Measurement()
    {
        var t = GemmTable.Default;
        Assert.Equal("NVIDIA H200", t.Card);
        Assert.Equal("fp8", t.Dtype);
        Assert.InRange(t.BackToBackMillis(64), 0.5 * t.Millis(64), t.Millis(64));
        Assert.True(t.BackToBackMillis(8192) > t.BackToBackMillis(4096));
        Assert.True(t.Millis(4096) > t.Millis(64));
    }

    [Fact]
    public void GemmTable_MalformedJson_NamesSourceAndLine()
    {
        var ex = Assert.Throws<InputException>(() => GemmTable.Parse("{\"points\": [", "t.json"));
        Assert.Equal("t.json", ex.Subject);
        Assert.Contains("valid JSON", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[1, 2]", "t.json", "the top level is Array")]
    [InlineData("""{"points": {"tokens": 1}}""", "t.json: points", "found Object (rule: an array)")]
    [InlineData("""{"points": [1, 2]}""", "t.json: points[0]", "found Integer 1 (rule: an object)")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": "many", "ms": 0.04}]}""", "t.json: points[1].tokens", "found String \"many\" (rule: a number)")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8}]}""", "t.json: points[1].ms", "missing (rule: required)")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8, "ms": -0.04}]}""", "t.json: points[1].ms", "got -0.04 (rule: a finite number >= 0)")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03, "msec": 1}]}""", "t.json: points[0].msec", "unknown key; known keys here: tokens, ms")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8, "ms": 0.04}], "hidden": "wide"}""", "t.json: hidden", "found String \"wide\" (rule: a whole number)")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8, "ms": 0.04}], "intermediate": -5}""", "t.json: intermediate", "got -5 (rule: >= 1)")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8, "ms": 0.04}], "card": 5}""", "t.json: card", "found Integer 5 (rule: a string)")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8, "ms": 0.04}], "cards": "x"}""", "t.json: cards", "unknown key")]
    [InlineData("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8, "ms": 0.04}], "additivity": [{"tokens": 8, "experts": true, "msTogether": 1, "msOne": 0.1}]}""", "t.json: additivity[0].experts", "found Boolean true (rule: a number)")]
    public void GemmTable_WrongShapeOrType_OneInputErrorNamingTheEntry(string json, string subject, string expected)
    {
        // Hand-edited tables: every mistake is an input error that names the file and the entry, never an exception of
        // the JSON library (which the CLI would report as an internal error); the checks and wording are the config
        // file's (JsonFields).
        var ex = Assert.Throws<InputException>(() => GemmTable.Parse(json, "t.json"));
        Assert.Equal(subject, ex.Subject);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GemmTable_OptionalFieldsAbsent_ParsesWithUnknownCardAndNoShape()
    {
        var t = GemmTable.Parse("""{"points": [{"tokens": 1, "ms": 0.03}, {"tokens": 8, "ms": 0.04}]}""", "t.json");
        Assert.Equal("unknown", t.Card);
        Assert.Equal(0, t.Hidden);
        Assert.Equal(0.04, t.Millis(8), 12);
    }

    [Fact]
    public void Step_UniformLoadTrivialPlacement_EqualsBestEp()
    {
        var topology = Topology.Create(devices: 4, slotsPerDevice: 8);
        var model = new LatencyModel(MoeModel.Small, Table(0.03), Interconnect.Default);
        var placement = TrivialPolicy.Build(topology, layers: 2, experts: 32);
        var counts = Enumerable.Repeat(64f, 64).ToArray();
        var step = model.Step(placement, counts);
        var best = model.BestEp(topology, 32, counts);
        Assert.Equal(best.Millis, step.Millis, 9);
        Assert.True(step.ComputeMillisOfSlowest > 0);
        Assert.True(step.CommMillisOfSlowest > 0);
    }

    [Fact]
    public void Step_HotExpertsOnOneDevice_SlowerThanSpreadOut()
    {
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        var model = new LatencyModel(MoeModel.Small with { NonMoeMillisPerLayer = 0 }, Table(), Interconnect.Default);
        float[] counts = [2000, 2000, 10, 10];
        var together = Placement.FromRows(topology, 4, [[0, 1, 2, 3]]);
        var spread = Placement.FromRows(topology, 4, [[0, 2, 1, 3]]);
        Assert.True(model.Step(together, counts).Millis > model.Step(spread, counts).Millis * 1.5);
    }

    [Fact]
    public void Step_SingleNode_HasNoNetworkTerm()
    {
        var one = Topology.Create(devices: 4, slotsPerDevice: 8, nodes: 1);
        var two = Topology.Create(devices: 4, slotsPerDevice: 8, nodes: 2);
        var model = new LatencyModel(MoeModel.Small, Table(), Interconnect.Default);
        var counts = Enumerable.Repeat(64f, 32).ToArray();
        var a = model.Step(TrivialPolicy.Build(one, 1, 32), counts);
        var b = model.Step(TrivialPolicy.Build(two, 1, 32), counts);
        Assert.True(b.CommMillisOfSlowest > a.CommMillisOfSlowest * 2, $"{b.CommMillisOfSlowest} vs {a.CommMillisOfSlowest}");
    }

    [Fact]
    public void Step_ReplicaSplitsTokens_IdleExpertsCostNothing()
    {
        var topology = Topology.Create(devices: 2, slotsPerDevice: 2);
        var model = new LatencyModel(MoeModel.Small with { NonMoeMillisPerLayer = 0 }, Table(), Interconnect.Default with { IntraNodeGBps = 1e12 });
        // expert 0 replicated on both devices with 2048 tokens -> 1024 each; experts 1, 2 idle.
        var p = Placement.FromRows(topology, 3, [[0, 1, 0, 2]]);
        var step = model.Step(p, [2048, 0, 0]);
        Assert.Equal(0.10, step.ComputeMillisOfSlowest, 9);
    }
    [Fact]
    public void GemmTable_Additivity_FollowerTimeInterpolatedFlatBelowOffsetAbove()
    {
        const string json = """
            {"card": "c", "dtype": "fp8", "hidden": 1024, "intermediate": 512,
             "points": [{"tokens": 1, "ms": 0.04}, {"tokens": 1024, "ms": 0.10}],
             "additivity": [{"experts": 9, "tokens": 64, "msTogether": 0.25, "msOne": 0.035},
                            {"experts": 9, "tokens": 1024, "msTogether": 1.0, "msOne": 0.1}]}
            """;
        var t = GemmTable.Parse(json, "t.json");
        Assert.Equal((0.25 - 0.035) / 8, t.BackToBackMillis(64), 12);
        Assert.Equal((1.0 - 0.1) / 8, t.BackToBackMillis(1024), 12);
        Assert.Equal(((0.25 - 0.035) / 8 / 2) + ((1.0 - 0.1) / 8 / 2), t.BackToBackMillis(544), 12);
        Assert.Equal(t.BackToBackMillis(64), t.BackToBackMillis(2), 12);
        // Above the last point: the single-call curve plus the last point's difference to it.
        Assert.Equal(t.Millis(4096) + ((1.0 - 0.1) / 8) - 0.10, t.BackToBackMillis(4096), 12);
        Assert.Equal(0, t.BackToBackMillis(0));
    }

    [Fact]
    public void GemmTable_AdditivityFasterThanOneCall_RejectedNamingTheRule()
    {
        const string json = """
            {"points": [{"tokens": 1, "ms": 0.04}, {"tokens": 1024, "ms": 0.10}],
             "additivity": [{"experts": 9, "tokens": 64, "msTogether": 0.03, "msOne": 0.035}]}
            """;
        var ex = Assert.Throws<InputException>(() => GemmTable.Parse(json, "t.json"));
        Assert.Equal("t.json", ex.Subject);
        Assert.Contains("msTogether > msOne", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeviceCompute_BackToBack_FollowersCostTheirBackToBackTimeOneCostsASingleCall()
    {
        var model = new LatencyModel(MoeModel.Small, Table(0.03), Interconnect.Default);
        Assert.Equal(0.04, model.DeviceComputeMillis([64]), 12);
        Assert.Equal(0.04 + (3 * 0.03), model.DeviceComputeMillis([64, 64, 0, 64, 64]), 12);
        // Above the one additivity point the follower keeps its difference to a single call (0.03 - 0.04).
        Assert.Equal(0.10 + (0.10 - 0.01), model.DeviceComputeMillis([1024, 1024]), 12);
    }

    [Fact]
    public void BalancedBound_UniformRouting_EqualsBestEp()
    {
        var topology = Topology.Create(devices: 4, slotsPerDevice: 8, nodes: 2);
        var model = new LatencyModel(MoeModel.Small, Table(0.03), Interconnect.Default);
        var counts = Enumerable.Repeat(96f, 64).ToArray();
        Assert.Equal(model.BestEp(topology, 32, counts).Millis, model.BalancedBound(topology, 32, counts).Millis, 9);
    }

    [Theory]
    [InlineData(ReplicaDispatch.Even, 11)]
    [InlineData(ReplicaDispatch.Balanced, 12)]
    [InlineData(ReplicaDispatch.Balanced, 13)]
    public void BalancedBound_SkewedRouting_BetweenBestEpAndEveryPlacement(ReplicaDispatch dispatch, int seed)
    {
        // With every expert active, the skew of the routing itself costs (hot experts leave the flat regime): the bound
        // sits above BestEP's uniform routing; and no placement (the trivial one, random ones with replicas, colocated
        // ones included) gets below it.
        var random = new Random(seed);
        var topology = Topology.Create(devices: 4, slotsPerDevice: 10, nodes: 2);
        var model = new LatencyModel(MoeModel.Small, Table(0.03), Interconnect.Default, dispatch);
        var counts = new float[2 * 32];
        for (var i = 0; i < counts.Length; i++)
        {
            counts[i] = 1 + MathF.Floor(MathF.Pow(random.NextSingle(), 4) * 3000);
        }

        var bound = model.BalancedBound(topology, 32, counts).Millis;
        Assert.True(bound > model.BestEp(topology, 32, counts).Millis);
        Assert.True(model.Step(TrivialPolicy.Build(topology, 2, 32), counts).Millis >= bound);
        for (var trial = 0; trial < 20; trial++)
        {
            var rows = new List<IReadOnlyList<int>>();
            for (var l = 0; l < 2; l++)
            {
                var row = Enumerable.Range(0, topology.Slots).Select(s => s < 32 ? s : random.Next(32)).ToArray();
                random.Shuffle(row);
                rows.Add(row);
            }

            var placement = Placement.FromRows(topology, 32, rows, "random placement");
            Assert.True(model.Step(placement, counts).Millis >= bound);
        }
    }

    [Fact]
    public void BalancedBound_IdleExperts_CanSitBelowBestEp()
    {
        // Idle experts cost nothing (no weight reads), while BestEP's uniform routing gives each of them tokens: with
        // half the experts idle the routed load is cheaper than BestEP's, so BestEP is a reference, not a bound.
        var topology = Topology.Create(devices: 4, slotsPerDevice: 8);
        var model = new LatencyModel(MoeModel.Small, Table(0.03), Interconnect.Default);
        var counts = Enumerable.Range(0, 32).Select(e => e % 2 == 0 ? 100f : 0f).ToArray();
        Assert.True(model.BalancedBound(topology, 32, counts).Millis < model.BestEp(topology, 32, counts).Millis);
    }
}
