using System.Text;
using ExpertBridge.Core.Formats;

namespace ExpertBridge.Core.Tests;

public class FormatsPlacementFilesTests
{
    private static readonly Topology s_topology = Topology.Create(devices: 4, slotsPerDevice: 3, nodes: 2);

    // 2 layers, 8 experts, 12 slots: replicas of hot experts, each device's slots in arbitrary order.
    private static Placement Sample(Topology? topology = null) => Placement.FromRows(topology ?? s_topology, 8,
    [
        [5, 0, 1, 2, 3, 5, 4, 6, 0, 7, 1, 2],
        [7, 6, 5, 4, 3, 2, 1, 0, 7, 0, 6, 3],
    ]);

    private static Placement RoundTrip(Placement placement, PlacementFormat format, Topology? readTopology, int? experts = null, int firstLayerIndex = 0)
    {
        var stream = new MemoryStream();
        PlacementFiles.Write(stream, placement, format, firstLayerIndex);
        stream.Position = 0;
        return PlacementFiles.Read(stream, "p", null, readTopology, experts);
    }

    private static string Text(Placement placement, PlacementFormat format, int firstLayerIndex = 0)
    {
        var stream = new MemoryStream();
        PlacementFiles.Write(stream, placement, format, firstLayerIndex);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static InputException ReadFails(string text, string name = "p.json", Topology? topology = null) =>
        Assert.Throws<InputException>(() => PlacementFiles.Read(new MemoryStream(Encoding.UTF8.GetBytes(text)), name, null, topology));

    [Fact]
    public void Native_RoundTrip_IsExactWithoutATopology()
    {
        var p = Sample();
        Assert.Equal(p, RoundTrip(p, PlacementFormat.Native, readTopology: null));
    }

    [Fact]
    public void Native_Text_HasTheDocumentedKeysInOrder()
    {
        var p = Placement.FromRows(Topology.Create(2, 1), 2, [[0, 1]]);
        Assert.Equal(
            "{\"format\":\"expertbridge.placement/1\",\"layers\":1,\"logicalExperts\":2,\"devices\":2,\"slotsPerDevice\":1,\"nodes\":1,\"phy2log\":[\n[0,1]]}\n",
            Text(p, PlacementFormat.Native));
    }

    [Fact]
    public void Native_EmptySlots_RoundTrip()
    {
        var p = Placement.FromRows(Topology.Create(2, 2), 3, [[0, -1, 1, 2]]);
        Assert.Equal(p, RoundTrip(p, PlacementFormat.Native, null));
    }

    [Fact]
    public void Native_CallerTopology_KeepsExpertBytes()
    {
        var withBytes = s_topology.WithExpertBytes(1 << 20);
        var back = RoundTrip(Sample(), PlacementFormat.Native, withBytes);
        Assert.Equal(1 << 20, back.Topology.ExpertBytes);
    }

    [Fact]
    public void Native_TopologyMismatch_NamesBoth()
    {
        var ex = Assert.Throws<InputException>(() => RoundTrip(Sample(), PlacementFormat.Native, Topology.Create(6, 2, 2)));
        Assert.Equal(PlacementValidator.RuleShape, ex.Rule);
        Assert.Contains("the file is for 4 devices x 3 slots on 2 node(s)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("given is 6 devices x 2 slots on 2 node(s)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Native_ExpertsMismatch_IsRejected()
    {
        var ex = Assert.Throws<InputException>(() => RoundTrip(Sample(), PlacementFormat.Native, null, experts: 9));
        Assert.Contains("the model has 9", ex.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> BadNative() => new()
    {
        { """{"format":"expertbridge.placement/2","layers":1,"logicalExperts":2,"devices":2,"slotsPerDevice":1,"nodes":1,"phy2log":[[0,1]]}""", PlacementFiles.RuleFormat, "placement/2" },
        { """{"format":"expertbridge.placement/1","layers":1,"logicalExperts":2,"devices":2,"nodes":1,"phy2log":[[0,1]]}""", "an integer >= 1", "\"slotsPerDevice\"" },
        { """{"format":"expertbridge.placement/1","layers":1,"logicalExperts":2,"devices":2,"slotsPerDevice":1,"nodes":1,"phy2log":[[0,2]]}""", PlacementFiles.RuleIds, "layer 0 slot 1" },
        { """{"format":"expertbridge.placement/1","layers":1,"logicalExperts":2,"devices":2,"slotsPerDevice":1,"nodes":1,"phy2log":[[0,1.5]]}""", PlacementFiles.RuleIds, "layer 0 slot 1" },
        { """{"format":"expertbridge.placement/1","layers":1,"logicalExperts":2,"devices":2,"slotsPerDevice":1,"nodes":1,"phy2log":[[0,1,1]]}""", PlacementFiles.RuleLayerSlots, "3 slots" },
        { """{"format":"expertbridge.placement/1","layers":2,"logicalExperts":2,"devices":2,"slotsPerDevice":1,"nodes":1,"phy2log":[[0,1]]}""", PlacementValidator.RuleShape, "1 rows" },
        { """{"format":"expertbridge.placement/1","layers":1,"logicalExperts":2,"devices":3,"slotsPerDevice":1,"nodes":2,"phy2log":[[0,1,1]]}""", "multiple of nodes", "3 devices" },
        { """{"format":"expertbridge.placement/1","layers":1,""", "valid JSON", "line 1" },
        { """{"logical_count": [[1, 2]]}""", PlacementFiles.RuleFormat, "load file" },
        { """[1, 2]""", PlacementFiles.RuleFormat, "not recognised" },
        { """{"format":"expertbridge.placement/1","layers":1,"logicalExperts":2,"devices":2,"slotsPerDevice":1,"nodes":1,"phy2log":[[0,99999999999999999999999]]}""", PlacementFiles.RuleIds, "layer 0 slot 1" },
        { """{"format":"expertbridge.placement/1","layers":1e3,"logicalExperts":2,"devices":2,"slotsPerDevice":1,"nodes":1,"phy2log":[[0,1]]}""", "an integer >= 1", "\"layers\"" },
    };

    [Theory]
    [MemberData(nameof(BadNative))]
    public void Native_BadFile_NamesFileAndRule(string json, string rule, string detail)
    {
        var ex = ReadFails(json);
        Assert.StartsWith("p.json", ex.Subject, StringComparison.Ordinal);
        Assert.Contains(rule, ex.Rule, StringComparison.Ordinal);
        Assert.Contains(detail, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sglang_RoundTrip_WithCallerTopology()
    {
        var p = Sample();
        Assert.StartsWith("{\"physical_to_logical_map\":[", Text(p, PlacementFormat.Sglang), StringComparison.Ordinal);
        Assert.Equal(p, RoundTrip(p, PlacementFormat.Sglang, s_topology));
        Assert.Equal(p, RoundTrip(p, PlacementFormat.Sglang, s_topology, experts: 8));
    }

    [Fact]
    public void Read_ExplicitFormatDisagreeingWithContent_SaysWhich()
    {
        var bytes = Encoding.UTF8.GetBytes(Text(Sample(), PlacementFormat.Native));
        var ex = Assert.Throws<InputException>(() => PlacementFiles.Read(new MemoryStream(bytes), "p.json", PlacementFormat.Sglang, s_topology));
        Assert.Equal(PlacementFiles.RuleFormat, ex.Rule);
        Assert.Contains("expected a Sglang placement, the file is Native", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sglang_WithoutTopology_SaysTopologyIsNeeded()
    {
        var ex = ReadFails(Text(Sample(), PlacementFormat.Sglang));
        Assert.Equal(PlacementFiles.RuleTopologyGiven, ex.Rule);
        Assert.Contains("--devices", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sglang_RowLengthMismatch_NamesLayerAndTopology()
    {
        var ex = ReadFails("""{"physical_to_logical_map": [[0, 1, 2]]}""", topology: Topology.Create(2, 2));
        Assert.Equal(PlacementFiles.RuleLayerSlots, ex.Rule);
        Assert.Contains("layer 0 has 3 slots, the topology has 4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sglang_EmptySlot_CannotBeWritten()
    {
        var p = Placement.FromRows(Topology.Create(2, 2), 3, [[0, -1, 1, 2]]);
        var ex = Assert.Throws<InputException>(() => Text(p, PlacementFormat.Sglang));
        Assert.Equal("layer 0 slot 1", ex.Subject);
        Assert.Equal(PlacementFiles.RuleExpressible, ex.Rule);
    }

    [Fact]
    public void TrtLlm_RoundTrip_KeysAreModelLayerIndices()
    {
        var p = Sample();
        var text = Text(p, PlacementFormat.TrtLlm, firstLayerIndex: 3);
        Assert.Contains("num_slots: 12\n", text, StringComparison.Ordinal);
        Assert.Contains("initial_global_assignments:\n  3: [5, 0, 1, 2, 3, 5, 4, 6, 0, 7, 1, 2]\n  4: [", text, StringComparison.Ordinal);
        Assert.Contains("layer_updates_per_iter: 0\n", text, StringComparison.Ordinal);
        Assert.Equal(p, RoundTrip(p, PlacementFormat.TrtLlm, s_topology, firstLayerIndex: 3));
    }

    [Fact]
    public void TrtLlm_Path_DetectedByExtension()
    {
        using var dir = new TempDirectory();
        var path = dir.File("moe_load_balancer.yaml");
        PlacementFiles.Write(path, Sample(), PlacementFormat.TrtLlm, 3);
        Assert.Equal(Sample(), PlacementFiles.Read(path, s_topology));
    }

    [Fact]
    public void TrtLlm_EpSize_GivesTopologyWithoutCaller()
    {
        const string yaml = "ep_size: 2\nnum_slots: 4\ninitial_global_assignments:\n  1: [0, 1, 2, 0]\n  2: [2, 1, 0, 1]\n";
        var p = PlacementFiles.Read(new MemoryStream(Encoding.UTF8.GetBytes(yaml)), "lb.yaml", PlacementFormat.TrtLlm);
        Assert.Equal(2, p.Topology.Devices);
        Assert.Equal(2, p.Topology.SlotsPerDevice);
        Assert.Equal(3, p.LogicalExperts);
        Assert.Equal(new[] { 2, 1, 0, 1 }, p.Layer(1).ToArray());
    }

    [Fact]
    public void TrtLlm_WithoutTopology_SaysTopologyIsNeeded()
    {
        var ex = ReadFails(Text(Sample(), PlacementFormat.TrtLlm), "lb.yaml");
        Assert.Equal(PlacementFiles.RuleTopologyGiven, ex.Rule);
        Assert.Contains("ep_size", ex.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> BadTrtLlm() => new()
    {
        { "num_slots: 4\ninitial_global_assignments:\n  3: [0, 1, 2, 3]\n  5: [0, 1, 2, 3]\n", "consecutive", "4 is missing" },
        { "num_slots: 6\ninitial_global_assignments:\n  3: [0, 1, 2, 3]\n", PlacementValidator.RuleShape, "num_slots 6" },
        { "num_slots: 4\ninitial_global_assignments:\n  3: [0, 1, x, 3]\n", PlacementFiles.RuleIds, "line 3" },
        { "num_slots: 4\ninitial_global_assignments:\n  3: [0, 1, 2\n", PlacementFiles.RuleYaml, "line" },
        { "num_slots: 4\ninitial_global_assignments: [0, 1]\n", PlacementFiles.RuleFormat, "mapping" },
        { "num_slots: 4\ninitial_global_assignments:\n  3: 7\n", PlacementFiles.RuleFormat, "not a list" },
    };

    [Theory]
    [MemberData(nameof(BadTrtLlm))]
    public void TrtLlm_BadFile_NamesFileAndRule(string yaml, string rule, string detail)
    {
        var ex = ReadFails(yaml, "lb.yaml", Topology.Create(2, 2));
        Assert.StartsWith("lb.yaml", ex.Subject, StringComparison.Ordinal);
        Assert.Contains(rule, ex.Rule, StringComparison.Ordinal);
        Assert.Contains(detail, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Omni_RoundTrip_SortsEachDevicesSlotsByExpert()
    {
        var p = Sample();
        var back = RoundTrip(p, PlacementFormat.Omni, readTopology: null);
        Assert.Equal(new[] { 0, 1, 5, 2, 3, 5, 0, 4, 6, 1, 2, 7 }, back.Layer(0).ToArray());
        Assert.Equal(new[] { 5, 6, 7, 2, 3, 4, 0, 1, 7, 0, 3, 6 }, back.Layer(1).ToArray());
        Assert.Equal(p.Topology.Devices, back.Topology.Devices);
        Assert.Equal(p.Topology.SlotsPerDevice, back.Topology.SlotsPerDevice);
        for (var l = 0; l < p.Layers; l++)
        {
            Assert.Equal(p.ReplicaCounts(l), back.ReplicaCounts(l));
        }

        // Sorted placements are fixed points: a second round trip is exact.
        Assert.Equal(back, RoundTrip(back, PlacementFormat.Omni, readTopology: null));
    }

    [Fact]
    public void Omni_Pattern_IsInt32DevicesLayersExperts()
    {
        var stream = new MemoryStream();
        PlacementFiles.Write(stream, Sample(), PlacementFormat.Omni);
        stream.Position = 0;
        var array = Npy.Read(stream, "pattern.npy");
        Assert.Equal(NpyDType.Int32, array.DType);
        Assert.Equal(new[] { 4, 2, 8 }, array.Shape);
        Assert.Equal(1, array.GetDouble((0 * 2 * 8) + (0 * 8) + 5)); // device 0 layer 0 holds expert 5
        Assert.Equal(0, array.GetDouble((0 * 2 * 8) + (0 * 8) + 3));
        Assert.Equal(24, Enumerable.Range(0, array.Length).Sum(i => array.GetDouble(i)));
    }

    [Fact]
    public void Omni_UnevenDevices_PadWithEmptySlots()
    {
        // device 0 holds 3 experts, device 1 holds 1: slots per device = 3, device 1 padded with -1.
        var pattern = new NpyArray(new[] { 1, 1, 0, 1, /* device 1 */ 0, 0, 1, 0 }, 2, 1, 4);
        var stream = new MemoryStream();
        Npy.Write(stream, pattern);
        stream.Position = 0;
        var p = PlacementFiles.Read(stream, "pattern.npy");
        Assert.Equal(3, p.Topology.SlotsPerDevice);
        Assert.Equal(new[] { 0, 1, 3, 2, -1, -1 }, p.Layer(0).ToArray());

        stream.Position = 0;
        var wider = PlacementFiles.Read(stream, "pattern.npy", null, Topology.Create(2, 4));
        Assert.Equal(new[] { 0, 1, 3, -1, 2, -1, -1, -1 }, wider.Layer(0).ToArray());
    }

    [Fact]
    public void Omni_ColocatedReplicas_CannotBeWritten()
    {
        var p = Placement.FromRows(Topology.Create(2, 2), 3, [[0, 0, 1, 2]]);
        var ex = Assert.Throws<InputException>(() => Text(p, PlacementFormat.Omni));
        Assert.Equal("layer 0 slot 1", ex.Subject);
        Assert.Equal(PlacementFiles.RuleExpressible, ex.Rule);
    }

    [Theory]
    [InlineData(2, "holds 2")]
    [InlineData(-1, "holds -1")]
    public void Omni_ValueNotZeroOrOne_NamesDeviceLayerExpert(int value, string detail)
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 1, 0, 0, value }, 2, 1, 2));
        stream.Position = 0;
        var ex = Assert.Throws<InputException>(() => PlacementFiles.Read(stream, "pattern.npy"));
        Assert.Equal(PlacementFiles.RulePattern, ex.Rule);
        Assert.Contains($"device 1 layer 0 expert 1 {detail}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Omni_FloatPattern_IsRejected()
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 1f, 0 }, 1, 1, 2));
        stream.Position = 0;
        var ex = Assert.Throws<InputException>(() => PlacementFiles.Read(stream, "pattern.npy"));
        Assert.Equal(PlacementFiles.RulePattern, ex.Rule);
        Assert.Contains("float32", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Omni_TooFewSlotsInCallerTopology_IsRejected()
    {
        var stream = new MemoryStream();
        PlacementFiles.Write(stream, Sample(), PlacementFormat.Omni);
        stream.Position = 0;
        var ex = Assert.Throws<InputException>(() => PlacementFiles.Read(stream, "pattern.npy", null, Topology.Create(4, 2)));
        Assert.Contains("holds 3 experts", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("native", PlacementFormat.Native)]
    [InlineData("SGLang", PlacementFormat.Sglang)]
    [InlineData("trtllm", PlacementFormat.TrtLlm)]
    [InlineData("omni", PlacementFormat.Omni)]
    public void ParseFormat_KnownNames_Parse(string name, PlacementFormat expected) =>
        Assert.Equal(expected, PlacementFiles.ParseFormat(name));

    [Fact]
    public void ParseFormat_UnknownName_NamesOption()
    {
        var ex = Assert.Throws<InputException>(() => PlacementFiles.ParseFormat("vllm"));
        Assert.Equal("--format", ex.Subject);
        Assert.Contains("'vllm'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("p.json", PlacementFormat.Native)]
    [InlineData("p.json", PlacementFormat.Sglang)]
    [InlineData("p.yml", PlacementFormat.TrtLlm)]
    [InlineData("p.npy", PlacementFormat.Omni)]
    public void Read_Path_DetectsEveryFormat(string name, PlacementFormat format)
    {
        using var dir = new TempDirectory();
        var path = dir.File(name);
        var p = Placement.FromRows(Topology.Create(2, 2), 4, [[0, 1, 2, 3], [3, 2, 1, 0]]);
        PlacementFiles.Write(path, p, format);
        var back = PlacementFiles.Read(path, Topology.Create(2, 2), 4);
        for (var l = 0; l < p.Layers; l++)
        {
            Assert.Equal(p.ReplicaCounts(l), back.ReplicaCounts(l));
        }
    }
}
