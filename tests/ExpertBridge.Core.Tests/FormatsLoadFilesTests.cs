using System.Text;
using ExpertBridge.Core.Formats;

namespace ExpertBridge.Core.Tests;

public class FormatsLoadFilesTests
{
    private static LoadTrace ReadJson(string json, string name = "load.json") =>
        LoadFiles.Read(new MemoryStream(Encoding.UTF8.GetBytes(json)), name);

    private static LoadTrace SampleTrace(int steps) =>
        new(steps, 2, 3, Enumerable.Range(0, steps * 6).Select(i => (i * 3.25f) % 17).ToArray());

    [Fact]
    public void Read_NpyMatrix_IsOneStepTrace()
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 1, 2, 3, 4, 5, 6 }, 2, 3));
        stream.Position = 0;
        var trace = LoadFiles.Read(stream, "m.npy");
        Assert.Equal((1, 2, 3), (trace.Steps, trace.Layers, trace.Experts));
        Assert.Equal(new[] { 1f, 2, 3, 4, 5, 6 }, trace.Values.ToArray());
    }

    [Fact]
    public void Read_NpyInt64Trace_KeepsSteps()
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(Enumerable.Range(0, 24).Select(i => (long)i * 1000).ToArray(), 4, 2, 3));
        stream.Position = 0;
        var trace = LoadFiles.Read(stream, "t.npy");
        Assert.Equal((4, 2, 3), (trace.Steps, trace.Layers, trace.Experts));
        Assert.Equal(23000f, trace.GetStep(3)[5]);
    }

    [Theory]
    [InlineData("load.npy", 1)]
    [InlineData("load.npy", 4)]
    [InlineData("load.json", 1)]
    [InlineData("load.json", 4)]
    public void RoundTrip_ByExtension_PreservesShapeAndValues(string name, int steps)
    {
        using var dir = new TempDirectory();
        var path = dir.File(name);
        var trace = SampleTrace(steps);
        LoadFiles.Write(path, trace);
        var back = LoadFiles.Read(path);
        Assert.Equal((trace.Steps, trace.Layers, trace.Experts), (back.Steps, back.Layers, back.Experts));
        Assert.Equal(trace.Values.ToArray(), back.Values.ToArray());
    }

    [Fact]
    public void Write_Json_IsLoadObjectWithOneRowPerLine()
    {
        var stream = new MemoryStream();
        LoadFiles.Write(stream, new LoadTrace(2, 1, 2, [1, 2.5f, 3, 4]), LoadFileFormat.Json);
        Assert.Equal("{\"load\":[[\n[1,2.5]],\n[\n[3,4]]]}\n", Encoding.UTF8.GetString(stream.ToArray()));
    }

    [Fact]
    public void Read_SglangLogicalCount_ReadsTraceAndIgnoresOtherKeys()
    {
        var trace = ReadJson("""{"rank": 0, "logical_count": [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[0, 0], [1, 1]]], "meta": {"x": [1, "a"]}}""");
        Assert.Equal((3, 2, 2), (trace.Steps, trace.Layers, trace.Experts));
        Assert.Equal(new[] { 5f, 6, 7, 8 }, trace.GetStep(1).ToArray());
    }

    [Fact]
    public void Read_JsonMatrix_AcceptsFloatsAndBom()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes("""{"load": [[1.5, 2e2], [0, 3]]}""")).ToArray();
        var trace = LoadFiles.Read(new MemoryStream(bytes), "bom.json");
        Assert.Equal(new[] { 1.5f, 200, 0, 3 }, trace.Values.ToArray());
    }

    [Fact]
    public void Read_NegativeCount_NamesStepLayerExpert()
    {
        var ex = Assert.Throws<InputException>(() => ReadJson("""{"load": [[[1, 2], [3, 4]], [[5, 6], [7, -8]]]}"""));
        Assert.Equal("load.json", ex.Subject);
        Assert.Contains("finite and >= 0", ex.Rule, StringComparison.Ordinal);
        Assert.Contains("step 1 layer 1 expert 1 has -8", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NaNInJson_NamesStepLayerExpert()
    {
        var ex = Assert.Throws<InputException>(() => ReadJson("""{"load": [[1, NaN], [3, 4]]}"""));
        Assert.Contains("step 0 layer 0 expert 1 has NaN", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NaNInNpy_NamesStepLayerExpert()
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 1f, 2, 3, float.NaN }, 2, 2));
        stream.Position = 0;
        var ex = Assert.Throws<InputException>(() => LoadFiles.Read(stream, "nan.npy"));
        Assert.Equal("nan.npy", ex.Subject);
        Assert.Contains("step 0 layer 1 expert 1 has NaN", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_MalformedJson_NamesLineAndPosition()
    {
        var ex = Assert.Throws<InputException>(() => ReadJson("{\"load\": [[1, 2],\n  [3, 4}"));
        Assert.Equal("load.json", ex.Subject);
        Assert.Equal("valid JSON", ex.Rule);
        Assert.Contains("line 2, position", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Read_TrailingGarbage_IsMalformed()
    {
        var ex = Assert.Throws<InputException>(() => ReadJson("{\"load\": [[1]]} x"));
        Assert.Equal("valid JSON", ex.Rule);
    }

    public static TheoryData<string, string, string> BadJson() => new()
    {
        { """{"load": [[1, 2], [3]]}""", "rectangular", "\"load\"[1] has 1 entries" },
        { """{"load": [[1, "two"], [3, 4]]}""", "rectangular", "\"load\"[0][1] is the string \"two\"" },
        { """{"load": [[1, [2]], [3, 4]]}""", "rectangular", "array where a number was expected" },
        { """{"load": [1, 2, 3]}""", LoadFiles.RuleShape, "shape (3,)" },
        { """{"load": [[[[1]]]]}""", "rectangular", "deeper than 3" },
        { """{"load": [[]]}""", "rectangular", "no numbers" },
        { """{"load": [[1]], "logical_count": [[1]]}""", LoadFiles.RuleKeys, "both" },
        { """{"counts": [[1]]}""", LoadFiles.RuleKeys, "neither" },
        { """[[1, 2]]""", LoadFiles.RuleFormat, "neither a .npy file" },
        { """{"load": {"a": 1}}""", "rectangular", "expected an array" },
    };

    [Theory]
    [MemberData(nameof(BadJson))]
    public void Read_BadJson_NamesFileAndRule(string json, string rule, string detail)
    {
        var ex = Assert.Throws<InputException>(() => ReadJson(json));
        Assert.Equal("load.json", ex.Subject);
        Assert.Contains(rule, ex.Rule, StringComparison.Ordinal);
        Assert.Contains(detail, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NpyVector_RejectsShape()
    {
        var stream = new MemoryStream();
        Npy.Write(stream, new NpyArray(new[] { 1f, 2 }, 2));
        stream.Position = 0;
        var ex = Assert.Throws<InputException>(() => LoadFiles.Read(stream, "v.npy"));
        Assert.Equal(LoadFiles.RuleShape, ex.Rule);
        Assert.Contains("(2,)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NpyExtensionWithJsonContent_ReportsBadMagic()
    {
        using var dir = new TempDirectory();
        var path = dir.WriteText("wrong.npy", """{"load": [[1]]}""");
        var ex = Assert.Throws<InputException>(() => LoadFiles.Read(path));
        Assert.Equal(Npy.RuleMagic, ex.Rule);
    }

    [Fact]
    public void Read_MissingFile_NamesPathAndRule()
    {
        using var dir = new TempDirectory();
        var path = dir.File("nope.json");
        var ex = Assert.Throws<InputException>(() => LoadFiles.Read(path));
        Assert.Equal(path, ex.Subject);
        Assert.Contains("exists", ex.Rule, StringComparison.Ordinal);
    }

    [Fact]
    public void Write_UnknownExtension_NamesPath()
    {
        using var dir = new TempDirectory();
        var path = dir.File("load.csv");
        var ex = Assert.Throws<InputException>(() => LoadFiles.Write(path, SampleTrace(1)));
        Assert.Equal(path, ex.Subject);
        Assert.Equal(LoadFiles.RuleFormat, ex.Rule);
    }

    [Fact]
    public void Read_UnknownExtension_DetectsByContent()
    {
        using var dir = new TempDirectory();
        var path = dir.WriteText("dump.txt", """{"logical_count": [[4, 5]]}""");
        Assert.Equal(new[] { 4f, 5 }, LoadFiles.Read(path).Values.ToArray());
    }
}
