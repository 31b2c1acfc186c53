using System.Globalization;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ExpertBridge.Core.Formats;

/// <summary>The placement file formats ExpertBridge reads and writes.</summary>
public enum PlacementFormat
{
    /// <summary>
    /// ExpertBridge's self-describing JSON: <c>{"format":"expertbridge.placement/1","layers":L,"logicalExperts":E,
    /// "devices":P,"slotsPerDevice":S,"nodes":N,"phy2log":[[...]]}</c>.
    /// </summary>
    Native,

    /// <summary>SGLang's <c>--init-expert-location</c> JSON <c>{"physical_to_logical_map": [[...]]}</c>; the topology comes from the caller.</summary>
    Sglang,

    /// <summary>
    /// TensorRT-LLM's MoE load balancer YAML: <c>num_slots</c>, <c>initial_global_assignments</c> (MoE layer index to the
    /// expert of every slot, rank-major) and <c>layer_updates_per_iter</c>.
    /// </summary>
    TrtLlm,

    /// <summary>
    /// omni-infer's placement pattern .npy: int32 0/1, shape [devices, layers, experts]; 1 = the device holds the expert.
    /// </summary>
    Omni,
}

/// <summary>
/// Reads and writes placements in <see cref="PlacementFormat"/>s. Reading detects the format from the content (the .npy
/// magic, the JSON keys) and the extension (.yaml/.yml = TensorRT-LLM). A reader checks the file's shape and that every
/// id is -1 (empty) or a valid expert; the placement rules (every expert placed, no co-located replicas) are left to
/// <see cref="PlacementValidator"/>, so a faulty placement can still be loaded and reported.
/// <para>Formats that do not record the topology (SGLang; TensorRT-LLM without <c>ep_size</c>) need it from the caller.
/// Formats that do not record the expert count (SGLang, TensorRT-LLM) take it from the caller, else the largest id + 1.</para>
/// <para>omni-infer's pattern holds sets, not slot order: reading puts each device's experts in ascending id order in its
/// first slots, then empty slots (-1); slots per device = the caller's, else the most experts any device holds in any
/// layer. Every format round-trips exactly, except omni, which round-trips up to slot order within a device.</para>
/// </summary>
public static class PlacementFiles
{
    /// <summary>The <c>format</c> value of native files.</summary>
    public const string NativeFormatId = "expertbridge.placement/1";

    public const string RuleFormat = "a placement file is native JSON, SGLang JSON, TensorRT-LLM YAML or an omni-infer .npy pattern";
    public const string RuleTopologyGiven = "the topology is given for formats that do not record it";
    /// <summary>The same words as <see cref="Placement"/>'s constructor uses for this rule.</summary>
    public const string RuleLayerSlots = "each layer has devices x slots-per-device entries";
    public const string RuleIds = "expert ids are integers, -1 (empty) or in [0, experts)";
    public const string RuleExpressible = "the target format can express the placement";
    public const string RuleYaml = "valid YAML";
    public const string RulePattern = "an omni-infer pattern holds 0/1 in shape [devices, layers, experts]";

    /// <summary>
    /// Reads the placement at <paramref name="path"/>. <paramref name="topology"/> is required for SGLang files (and
    /// TensorRT-LLM files without <c>ep_size</c>); when given for other formats it must agree with the file and its expert
    /// byte size is kept. <paramref name="experts"/>, when given, must agree with files that record the expert count.
    /// </summary>
    public static Placement Read(string path, Topology? topology = null, int? experts = null)
    {
        using var stream = FileIo.OpenRead(path);
        var extension = FileIo.Extension(path);
        PlacementFormat? hint = extension switch
        {
            ".npy" => PlacementFormat.Omni,
            ".yaml" or ".yml" => PlacementFormat.TrtLlm,
            _ => null,
        };
        return Read(stream, path, hint, topology, experts);
    }

    /// <summary>Reads a placement from <paramref name="stream"/>; the format is <paramref name="format"/> or detected from the content.</summary>
    public static Placement Read(Stream stream, string subject, PlacementFormat? format = null, Topology? topology = null, int? experts = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(subject);
        if (experts is < 1)
        {
            throw new InputException("--experts", "experts >= 1", $"got {experts}");
        }

        var bytes = ReadAll(stream);
        return (format ?? Detect(bytes, subject)) switch
        {
            PlacementFormat.Omni => ReadOmni(bytes, subject, topology, experts),
            PlacementFormat.TrtLlm => ReadTrtLlm(bytes, subject, topology, experts),
            _ => ReadJson(bytes, subject, format, topology, experts),
        };
    }

    /// <summary>
    /// Writes <paramref name="placement"/> to <paramref name="path"/> in <paramref name="format"/> (atomically).
    /// <paramref name="firstLayerIndex"/> is the model layer index of the placement's layer 0, used where a format keys
    /// layers by model index: TensorRT-LLM (DeepSeek-V3/R1: 3, its first MoE layer). Other formats ignore it.
    /// </summary>
    public static void Write(string path, Placement placement, PlacementFormat format, int firstLayerIndex = 0) =>
        FileIo.WriteAtomically(path, stream => Write(stream, placement, format, firstLayerIndex));

    /// <summary>Writes <paramref name="placement"/> to <paramref name="stream"/> in <paramref name="format"/>.</summary>
    public static void Write(Stream stream, Placement placement, PlacementFormat format, int firstLayerIndex = 0)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentOutOfRangeException.ThrowIfNegative(firstLayerIndex);
        switch (format)
        {
            case PlacementFormat.Omni:
                Npy.Write(stream, OmniPattern(placement));
                return;
            case PlacementFormat.TrtLlm:
                RequireFull(placement, format);
                WriteText(stream, TrtLlmText(placement, firstLayerIndex));
                return;
            case PlacementFormat.Sglang:
                RequireFull(placement, format);
                WriteText(stream, JsonText(placement, native: false));
                return;
            default:
                WriteText(stream, JsonText(placement, native: true));
                return;
        }
    }

    /// <summary>Parses a <c>--format</c> value: native, sglang, trtllm or omni (case-insensitive).</summary>
    public static PlacementFormat ParseFormat(string value, string subject = "--format") => value?.ToLowerInvariant() switch
    {
        "native" => PlacementFormat.Native,
        "sglang" => PlacementFormat.Sglang,
        "trtllm" or "tensorrt-llm" => PlacementFormat.TrtLlm,
        "omni" => PlacementFormat.Omni,
        _ => throw new InputException(subject, "format is native, sglang, trtllm or omni", $"got '{value}'"),
    };

    // ------------------------------------------------------------------ detection

    private static byte[] ReadAll(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static PlacementFormat Detect(byte[] bytes, string subject)
    {
        if (Npy.HasMagic(bytes))
        {
            return PlacementFormat.Omni;
        }

        var text = Encoding.UTF8.GetString(bytes).TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        if (text.StartsWith('{'))
        {
            return PlacementFormat.Native; // native or SGLang: ReadJson tells them apart by their keys
        }

        if (text.Contains("initial_global_assignments", StringComparison.Ordinal))
        {
            return PlacementFormat.TrtLlm;
        }

        throw new InputException(subject, RuleFormat, bytes.Length == 0 ? "the file is empty" : "the format is not recognised");
    }

    // ------------------------------------------------------------------ JSON (native, SGLang)

    /// <summary>Native or SGLang JSON (or TensorRT-LLM's config written as JSON), told apart by the keys.</summary>
    private static Placement ReadJson(byte[] bytes, string subject, PlacementFormat? expected, Topology? topology, int? experts)
    {
        var root = JsonNumbers.Parse(new MemoryStream(bytes), subject, reader =>
        {
            var token = JToken.ReadFrom(reader, new JsonLoadSettings { LineInfoHandling = LineInfoHandling.Load });
            JsonNumbers.ExpectEnd(reader, subject);
            return token;
        });
        if (root is not JObject obj)
        {
            throw new InputException(subject, RuleFormat, $"the top level is a JSON {root.Type.ToString().ToLowerInvariant()}, expected an object");
        }

        PlacementFormat? actual =
            obj.ContainsKey("physical_to_logical_map") ? PlacementFormat.Sglang
            : obj.ContainsKey("format") ? PlacementFormat.Native
            : obj.ContainsKey("initial_global_assignments") ? PlacementFormat.TrtLlm
            : null;
        if (actual is null)
        {
            var hint = obj.ContainsKey("logical_count") || obj.ContainsKey("load") ? " (this is a load file; pass it as the load)" : "";
            throw new InputException(subject, RuleFormat, $"a JSON placement has \"format\": \"{NativeFormatId}\" or \"physical_to_logical_map\"{hint}");
        }

        if (expected is not null && expected != actual)
        {
            throw new InputException(subject, RuleFormat, $"expected a {expected} placement, the file is {actual}");
        }

        return actual switch
        {
            PlacementFormat.Sglang => ReadSglang(obj, subject, topology, experts),
            PlacementFormat.Native => ReadNative(obj, subject, topology, experts),
            _ => ReadTrtLlm(bytes, subject, topology, experts),
        };
    }

    private static Placement ReadNative(JObject obj, string subject, Topology? topology, int? experts)
    {
        var format = obj["format"];
        if (format?.Type != JTokenType.String || (string?)format != NativeFormatId)
        {
            throw new InputException(subject, RuleFormat, $"\"format\" is {format?.ToString(Formatting.None)}, expected \"{NativeFormatId}\"");
        }

        var layers = PositiveInt(obj, "layers", subject);
        var logical = PositiveInt(obj, "logicalExperts", subject);
        var devices = PositiveInt(obj, "devices", subject);
        var slotsPerDevice = PositiveInt(obj, "slotsPerDevice", subject);
        var nodes = PositiveInt(obj, "nodes", subject);
        if (devices % nodes != 0)
        {
            throw new InputException($"{subject}: \"nodes\"", "devices must be a multiple of nodes", $"{devices} devices do not split evenly over {nodes} nodes");
        }

        var own = Topology.Create(devices, slotsPerDevice, nodes);
        if (topology is not null && (topology.Devices != devices || topology.SlotsPerDevice != slotsPerDevice || topology.Nodes != nodes))
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"the file is for {Describe(own)}, the topology given is {Describe(topology)}");
        }

        if (experts is not null && experts != logical)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"the file has {logical} logical experts, the model has {experts}");
        }

        var rows = IntRows(obj, "phy2log", subject);
        if (rows.Count != layers)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"\"layers\" is {layers} but \"phy2log\" has {rows.Count} rows");
        }

        return Build(topology ?? own, logical, rows, subject, "phy2log");
    }

    private static Placement ReadSglang(JObject obj, string subject, Topology? topology, int? experts)
    {
        if (topology is null)
        {
            throw new InputException(subject, RuleTopologyGiven,
                "SGLang's physical_to_logical_map does not record how slots split over devices; give the topology (--devices and --slots-per-device)");
        }

        var rows = IntRows(obj, "physical_to_logical_map", subject);
        return Build(topology, experts ?? InferExperts(rows, subject), rows, subject, "physical_to_logical_map");
    }

    private static string JsonText(Placement placement, bool native)
    {
        var text = new StringBuilder();
        if (native)
        {
            var t = placement.Topology;
            text.Append(CultureInfo.InvariantCulture,
                $"{{\"format\":\"{NativeFormatId}\",\"layers\":{placement.Layers},\"logicalExperts\":{placement.LogicalExperts},\"devices\":{t.Devices},\"slotsPerDevice\":{t.SlotsPerDevice},\"nodes\":{t.Nodes},\"phy2log\":[");
        }
        else
        {
            text.Append("{\"physical_to_logical_map\":[");
        }

        AppendRows(text, placement);
        text.Append("]}\n");
        return text.ToString();
    }

    // ------------------------------------------------------------------ TensorRT-LLM YAML

    private static Placement ReadTrtLlm(byte[] bytes, string subject, Topology? topology, int? experts)
    {
        YamlMappingNode root;
        try
        {
            var yaml = new YamlStream();
            using var reader = new StreamReader(new MemoryStream(bytes), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            yaml.Load(reader);
            root = yaml.Documents.Count == 1 && yaml.Documents[0].RootNode is YamlMappingNode m
                ? m
                : throw new InputException(subject, RuleFormat, "a TensorRT-LLM load balancer file is one YAML mapping");
        }
        catch (YamlException ex)
        {
            throw new InputException(subject, RuleYaml, $"malformed YAML at line {ex.Start.Line}, column {ex.Start.Column}: {ex.Message.ReplaceLineEndings(" ")}");
        }

        if (!root.Children.TryGetValue(new YamlScalarNode("initial_global_assignments"), out var assignmentsNode) || assignmentsNode is not YamlMappingNode assignments)
        {
            throw new InputException(subject, RuleFormat, "the YAML has no \"initial_global_assignments\" mapping (MoE layer index: [expert per slot])");
        }

        var numSlots = YamlInt(root, "num_slots", subject);
        var epSize = YamlInt(root, "ep_size", subject);
        if (topology is null)
        {
            if (epSize is null || numSlots is null)
            {
                throw new InputException(subject, RuleTopologyGiven,
                    "this TensorRT-LLM file has no ep_size, so it does not record how slots split over devices; give the topology (--devices and --slots-per-device)");
            }

            if (epSize < 1 || numSlots % epSize != 0)
            {
                throw new InputException(subject, "num_slots is a multiple of ep_size", $"num_slots {numSlots}, ep_size {epSize}");
            }

            topology = Topology.Create(epSize.Value, numSlots.Value / epSize.Value);
        }
        else if ((numSlots is not null && numSlots != topology.Slots) || (epSize is not null && epSize != topology.Devices))
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"the file has num_slots {numSlots} and ep_size {epSize?.ToString(CultureInfo.InvariantCulture) ?? "unset"}, the topology has {Describe(topology)}");
        }

        var layers = new SortedDictionary<int, (YamlNode Node, List<int> Row)>();
        foreach (var (keyNode, valueNode) in assignments.Children)
        {
            var key = ScalarInt(keyNode, subject, "a layer index");
            if (valueNode is not YamlSequenceNode sequence)
            {
                throw new InputException(subject, RuleFormat, $"layer {key} at line {valueNode.Start.Line} is not a list of expert ids");
            }

            var row = new List<int>(sequence.Children.Count);
            foreach (var item in sequence.Children)
            {
                row.Add(ScalarInt(item, subject, $"an expert id of layer {key}"));
            }

            if (!layers.TryAdd(key, (keyNode, row)))
            {
                throw new InputException(subject, RuleFormat, $"layer {key} appears twice");
            }
        }

        if (layers.Count == 0)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, "\"initial_global_assignments\" is empty");
        }

        var first = layers.Keys.First();
        var expected = first;
        foreach (var key in layers.Keys)
        {
            if (key != expected)
            {
                throw new InputException(subject, "layer indices are consecutive", $"layers run from {first} but {expected} is missing (found {key})");
            }

            expected++;
        }

        var rows = layers.Values.Select(v => (IReadOnlyList<int>)v.Row).ToList();
        return Build(topology, experts ?? InferExperts(rows, subject), rows, subject, "initial_global_assignments", first);
    }

    private static string TrtLlmText(Placement placement, int firstLayerIndex)
    {
        var t = placement.Topology;
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"# ExpertBridge placement: {placement.Layers} MoE layers x {placement.LogicalExperts} experts on {t.Devices} ranks x {t.SlotsPerDevice} slots ({t.Nodes} node(s)); layer keys are model layer indices\n");
        text.Append(CultureInfo.InvariantCulture, $"num_slots: {t.Slots}\n");
        text.Append("initial_global_assignments:\n");
        for (var l = 0; l < placement.Layers; l++)
        {
            text.Append(CultureInfo.InvariantCulture, $"  {firstLayerIndex + l}: [");
            AppendIds(text, placement.Layer(l), ", ");
            text.Append("]\n");
        }

        text.Append("layer_updates_per_iter: 0\n");
        return text.ToString();
    }

    private static int? YamlInt(YamlMappingNode root, string key, string subject) =>
        root.Children.TryGetValue(new YamlScalarNode(key), out var node) ? ScalarInt(node, subject, $"\"{key}\"") : null;

    private static int ScalarInt(YamlNode node, string subject, string what)
    {
        if (node is YamlScalarNode scalar && int.TryParse(scalar.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }

        throw new InputException(subject, RuleIds, $"{what} at line {node.Start.Line}, column {node.Start.Column} is not an integer");
    }

    // ------------------------------------------------------------------ omni-infer pattern

    private static Placement ReadOmni(byte[] bytes, string subject, Topology? topology, int? experts)
    {
        var array = Npy.Read(new MemoryStream(bytes), subject);
        if (array.Shape.Count != 3 || array.DType is not (NpyDType.Int32 or NpyDType.Int64))
        {
            throw new InputException(subject, RulePattern, $"the array is {array.DType.ToString().ToLowerInvariant()} with shape {array.ShapeText}");
        }

        int devices = array.Shape[0], layers = array.Shape[1], logical = array.Shape[2];
        if (devices < 1 || layers < 1 || logical < 1)
        {
            throw new InputException(subject, RulePattern, $"shape {array.ShapeText} has an empty axis");
        }

        if (experts is not null && experts != logical)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"the pattern has {logical} experts, the model has {experts}");
        }

        if (topology is not null && topology.Devices != devices)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"the pattern has {devices} devices, the topology has {topology.Devices}");
        }

        // Count per (device, layer) to size the slots.
        var widest = 0;
        for (var d = 0; d < devices; d++)
        {
            for (var l = 0; l < layers; l++)
            {
                var n = 0;
                var offset = ((d * layers) + l) * logical;
                for (var e = 0; e < logical; e++)
                {
                    var v = array.GetDouble(offset + e);
                    if (v is not (0 or 1))
                    {
                        throw new InputException(subject, RulePattern, $"device {d} layer {l} expert {e} holds {v}");
                    }

                    n += (int)v;
                }

                widest = Math.Max(widest, n);
            }
        }

        if (topology is not null && topology.SlotsPerDevice < widest)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"a device holds {widest} experts in one layer, the topology has {topology.SlotsPerDevice} slots per device");
        }

        topology ??= Topology.Create(devices, Math.Max(widest, 1));
        var phy2log = new int[layers * topology.Slots];
        Array.Fill(phy2log, -1);
        for (var d = 0; d < devices; d++)
        {
            for (var l = 0; l < layers; l++)
            {
                var slot = (l * topology.Slots) + (d * topology.SlotsPerDevice);
                var offset = ((d * layers) + l) * logical;
                for (var e = 0; e < logical; e++)
                {
                    if (array.GetDouble(offset + e) == 1)
                    {
                        phy2log[slot++] = e;
                    }
                }
            }
        }

        return new Placement(topology, logical, phy2log, subject);
    }

    private static NpyArray OmniPattern(Placement placement)
    {
        var t = placement.Topology;
        int layers = placement.Layers, logical = placement.LogicalExperts;
        var pattern = new int[t.Devices * layers * logical];
        for (var l = 0; l < layers; l++)
        {
            var row = placement.Layer(l);
            for (var s = 0; s < row.Length; s++)
            {
                var e = row[s];
                if (e < 0)
                {
                    continue;
                }

                var d = t.DeviceOf(s);
                var index = ((d * layers) + l) * logical + e;
                if (pattern[index] != 0)
                {
                    throw new InputException($"layer {l} slot {s}", RuleExpressible,
                        $"an omni-infer pattern cannot hold two replicas of expert {e} on device {d}");
                }

                pattern[index] = 1;
            }
        }

        return new NpyArray(pattern, t.Devices, layers, logical);
    }

    // ------------------------------------------------------------------ shared

    private static int PositiveInt(JObject obj, string key, string subject)
    {
        var token = obj[key];
        if (token is not JValue { Value: long value } || value < 1 || value > int.MaxValue)
        {
            var where = token is IJsonLineInfo info && info.HasLineInfo() ? $" (line {info.LineNumber})" : "";
            throw new InputException($"{subject}: \"{key}\"", "an integer >= 1", token is null ? "missing" : $"got {token.ToString(Formatting.None)}{where}");
        }

        return (int)value;
    }

    private static List<IReadOnlyList<int>> IntRows(JObject obj, string key, string subject)
    {
        if (obj[key] is not JArray outer || outer.Count == 0)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, $"\"{key}\" is not a non-empty array of rows");
        }

        var rows = new List<IReadOnlyList<int>>(outer.Count);
        for (var l = 0; l < outer.Count; l++)
        {
            if (outer[l] is not JArray inner)
            {
                throw new InputException(subject, PlacementValidator.RuleShape, $"\"{key}\"[{l}] is not an array");
            }

            var row = new int[inner.Count];
            for (var s = 0; s < inner.Count; s++)
            {
                var item = inner[s];
                if (item is not JValue { Value: long id } || id < int.MinValue || id > int.MaxValue)
                {
                    throw new InputException($"{subject}: layer {l} slot {s}", RuleIds, $"got {item.ToString(Formatting.None)}");
                }

                row[s] = (int)id;
            }

            rows.Add(row);
        }

        return rows;
    }

    private static int InferExperts(List<IReadOnlyList<int>> rows, string subject)
    {
        var max = rows.SelectMany(r => r).DefaultIfEmpty(-1).Max();
        if (max < 0)
        {
            throw new InputException(subject, PlacementValidator.RuleShape, "no slot holds an expert");
        }

        return max + 1;
    }

    /// <summary>Checks row lengths and ids, then builds the placement. <paramref name="firstLayer"/> is the key of row 0 in messages.</summary>
    private static Placement Build(Topology topology, int experts, List<IReadOnlyList<int>> rows, string subject, string key, int firstLayer = 0)
    {
        for (var l = 0; l < rows.Count; l++)
        {
            if (rows[l].Count != topology.Slots)
            {
                throw new InputException(subject, RuleLayerSlots,
                    $"\"{key}\" layer {firstLayer + l} has {rows[l].Count} slots, the topology has {topology.Slots} ({topology.Devices} devices x {topology.SlotsPerDevice} slots)");
            }

            for (var s = 0; s < rows[l].Count; s++)
            {
                var e = rows[l][s];
                if (e < -1 || e >= experts)
                {
                    throw new InputException($"{subject}: layer {firstLayer + l} slot {s}", RuleIds, $"expert id {e} is out of range (experts: {experts})");
                }
            }
        }

        return Placement.FromRows(topology, experts, rows, subject);
    }

    private static string Describe(Topology t) => $"{t.Devices} devices x {t.SlotsPerDevice} slots on {t.Nodes} node(s)";

    private static void RequireFull(Placement placement, PlacementFormat format)
    {
        for (var l = 0; l < placement.Layers; l++)
        {
            var s = placement.Layer(l).IndexOf(-1);
            if (s >= 0)
            {
                throw new InputException($"layer {l} slot {s}", RuleExpressible, $"the slot is empty and {format} files cannot express empty slots");
            }
        }
    }

    private static void AppendRows(StringBuilder text, Placement placement)
    {
        for (var l = 0; l < placement.Layers; l++)
        {
            text.Append(l == 0 ? "\n[" : ",\n[");
            AppendIds(text, placement.Layer(l), ",");
            text.Append(']');
        }
    }

    private static void AppendIds(StringBuilder text, ReadOnlySpan<int> ids, string separator)
    {
        for (var s = 0; s < ids.Length; s++)
        {
            if (s > 0)
            {
                text.Append(separator);
            }

            text.Append(ids[s]);
        }
    }

    private static void WriteText(Stream stream, string text)
    {
        var bytes = new UTF8Encoding(false).GetBytes(text);
        stream.Write(bytes);
    }
}
