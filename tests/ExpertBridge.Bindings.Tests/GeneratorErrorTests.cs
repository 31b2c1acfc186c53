using ExpertBridge.Bindings.Generator;

namespace ExpertBridge.Bindings.Tests;

/// <summary>Mistakes in a manifest or settings file are errors naming the input and the rule, never silent output.</summary>
public class GeneratorErrorTests
{
    private static GeneratorException Fails(string snippet, TargetSettings? settings = null) =>
        Assert.Throws<GeneratorException>(() => GeneratorSnapshotTests.Generate(snippet, settings ?? GeneratorSnapshotTests.Settings()));

    [Fact]
    public void Generate_MissingInclude_FailsOnTheFatalDiagnosticThatLibclangReportsAsSuccess()
    {
        var e = Fails("#include <vendor_only.h>\nint fooInit(void);\n");
        Assert.Contains("snippets/snippet.h", e.Message, StringComparison.Ordinal);
        Assert.Contains("'vendor_only.h' file not found", e.Message, StringComparison.Ordinal);
        Assert.Contains("rule: clean parse", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_Warning_IsAnError()
    {
        var e = Fails("int fooInit(void);\nint fooInit(int x);\n");
        Assert.Contains("rule: clean parse", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_EntryPointForUndeclaredFunction_NamesTheSettingsKey()
    {
        var settings = GeneratorSnapshotTests.Settings();
        settings.EntryPoints = new() { ["fooAllocate"] = "fooAllocate_v2" };
        var e = Fails("int fooAlloc(void);\n", settings);
        Assert.Contains("entryPoints.fooAllocate: no such function in the manifest", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_TwoFunctionsWithOneCSharpName_AskForARename()
    {
        var settings = GeneratorSnapshotTests.Settings();
        settings.FunctionPrefixes = ["foo", "bar"];
        var e = Fails("int fooSync(void);\nint barSync(void);\n", settings);
        Assert.Contains("'barSync' and 'fooSync' would both be named 'Sync'", e.Message, StringComparison.Ordinal);
        Assert.Contains("add a rename", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_RemapOfUndeclaredType_NamesTheSettingsKey()
    {
        var settings = GeneratorSnapshotTests.Settings();
        settings.TypeRemaps = new() { ["cudaStream_t"] = "global::Other.CUstream" };
        var e = Fails("int fooSync(void);\n", settings);
        Assert.Contains("typeRemaps names 'cudaStream_t'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("union U { int a; float b; };\n", "unions are not supported")]
    [InlineData("int fooPrint(const char *fmt, ...);\n", "variadic functions are not supported")]
    [InlineData("int fooCall(int (*cb)(int));\n", "is not supported (rule: blittable C types)")]
    [InlineData("int fooVar = 3;\n", "only const integer variables")]
    [InlineData("#define FOO_NAME \"foo\"\n", "#define FOO_NAME: its value is not an integer constant")]
    [InlineData("int fooArr(int values[4]);\n", "array parameters are not supported")]
    public void Generate_UnsupportedDeclaration_NamesItAndTheRule(string snippet, string expected)
    {
        var e = Fails(snippet);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains("rule:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadSettings_UnknownKey_NamesTheFileAndKey()
    {
        var dir = TestPaths.NewTempDirectory();
        var path = Path.Combine(dir, "settings.json");
        File.WriteAllText(path, """{ "manifest": "a.h", "library": "l", "namespace": "N", "class": "C", "abiCheckIncludes": ["a.h"], "entrypoints": {} }""");
        var e = Assert.Throws<GeneratorException>(() => TargetSettings.Load(path, "bindings/x/settings.json"));
        Assert.Contains("bindings/x/settings.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("entrypoints", e.Message, StringComparison.Ordinal);
        Assert.Contains("rule: settings schema", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadSettings_NoAbiCheckHeader_IsRejected()
    {
        var dir = TestPaths.NewTempDirectory();
        var path = Path.Combine(dir, "settings.json");
        File.WriteAllText(path, """{ "manifest": "a.h", "library": "l", "namespace": "N", "class": "C" }""");
        var e = Assert.Throws<GeneratorException>(() => TargetSettings.Load(path, "s.json"));
        Assert.Contains("every target is ABI-checked", e.Message, StringComparison.Ordinal);
    }
}
