using System.Text;
using ExpertBridge.Bindings.Generator;

namespace ExpertBridge.Bindings.Tests;

/// <summary>Snapshot tests of the generator: a small C snippet in, the committed baseline out
/// (Baselines/&lt;Test&gt;.txt: every generated file). <c>UPDATE_BASELINES=1</c> rewrites the baselines.</summary>
public class GeneratorSnapshotTests
{
    internal static TargetSettings Settings(string language = "c") => new()
    {
        Manifest = "snippet.h",
        Language = language,
        Library = "libfoo.so.1",
        Namespace = "Foo.Interop",
        Class = "Foo",
        FunctionPrefixes = ["foo"],
        AbiCheckIncludes = ["foo.h"],
        LayoutTests = "tests/Foo.Tests/Generated/FooLayoutTests.g.cs",
    };

    internal static IReadOnlyList<GeneratedFile> Generate(string snippet, TargetSettings settings)
    {
        var dir = TestPaths.NewTempDirectory();
        var path = Path.Combine(dir, settings.Manifest);
        return BindingGenerator.Generate(settings, "snippets/" + settings.Manifest, path, snippet, "snippets/settings.json",
            Path.Combine(TestPaths.Root, "bindings/generator/include"), "snippets/Generated");
    }

    private static void Verify(string name, IReadOnlyList<GeneratedFile> files)
    {
        var actual = new StringBuilder();
        foreach (var f in files) actual.Append("==> ").Append(f.RelativePath).Append('\n').Append(f.Contents);
        var path = Path.Combine(TestPaths.Root, "tests/ExpertBridge.Bindings.Tests/Baselines", name + ".txt");
        if (Environment.GetEnvironmentVariable("UPDATE_BASELINES") == "1")
        {
            File.WriteAllText(path, actual.ToString());
            return;
        }
        Assert.True(File.Exists(path), $"no baseline {path}; run the tests with UPDATE_BASELINES=1 and review it");
        Assert.Equal(File.ReadAllText(path), actual.ToString());
    }

    [Fact]
    public void Generate_OpaquePointerTypedefs_BecomeTypedHandleStructs()
    {
        var files = Generate("""
            typedef struct FooCtx_st *FooContext;
            typedef void *FooStream;
            typedef struct FooCtx_st *FooAlias;
            int fooUse(FooContext ctx, FooStream stream, FooContext *out);
            """, Settings());
        Verify("OpaquePointerTypedefs", files);
        var types = files.Single(f => f.RelativePath.EndsWith("Foo.Types.g.cs", StringComparison.Ordinal)).Contents;
        Assert.Contains("public readonly partial struct FooContext(nint handle)", types, StringComparison.Ordinal);
        Assert.Contains("public readonly partial struct FooStream(nint handle)", types, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_Enums_GetCSharpNamesWithoutSharedPrefix()
    {
        var settings = Settings();
        settings.FlagEnums = ["FooFlags"];
        settings.Renames = new() { ["FOO_MODE_2D"] = "TwoD" };
        var files = Generate("""
            typedef enum foo_mode_enum { FOO_MODE_LINEAR = 0, FOO_MODE_2D = 1, FOO_MODE_3D = 2 } foo_mode_t;
            typedef enum { FOO_FLAG_NONE = 0x0, FOO_FLAG_SYNC = 0x1, FOO_FLAG_TIMING = 0x2 } FooFlags;
            typedef enum { fooDirUp = 1, fooDirDown = -1 } FooDirection;
            int fooSetMode(foo_mode_t mode, FooDirection direction, unsigned int flags);
            """, settings);
        Verify("Enums", files);
    }

    [Fact]
    public void Generate_VersionedEntryPoints_BindTheVersionedSymbol()
    {
        var settings = Settings();
        settings.EntryPoints = new() { ["fooAlloc"] = "fooAlloc_v2", ["fooElapsed"] = "fooElapsed_v2" };
        settings.EntryPointFallbacks = new() { ["fooElapsed"] = "fooElapsed" };
        var files = Generate("""
            #include <stddef.h>
            typedef unsigned long long FooPtr;
            int fooAlloc(FooPtr *ptr, size_t bytes);
            int fooFree(FooPtr ptr);
            int fooElapsed(float *ms, FooPtr a);
            """, settings);
        Verify("VersionedEntryPoints", files);
        var functions = files[0].Contents;
        Assert.Contains("EntryPoint = \"fooAlloc_v2\"", functions, StringComparison.Ordinal);
        Assert.Contains("public static extern int Alloc(ulong* ptr, nuint bytes);", functions, StringComparison.Ordinal);
        Assert.Contains("ResolveExport(\"fooElapsed_v2\", \"fooElapsed\")", functions, StringComparison.Ordinal);
        Assert.Contains("private static partial nint ResolveExport(string symbol, string fallback);", functions, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_ResultCodesFromConstants_GatheredIntoStatusEnum()
    {
        var settings = Settings("c++");
        settings.Result = new ResultSettings { Type = "fooError", Constants = ["FOO_SUCCESS", "FOO_ERROR_"] };
        var files = Generate("""
            typedef int fooError;
            static const int FOO_SUCCESS = 0;
            static const int FOO_ERROR_BAD_PARAM = 100000;
            #define FOO_ERROR_RT_NO_DEVICE 207004
            #define FOO_EVENT_TIME_LINE 0x00000008U
            extern "C" fooError fooInit(const char *config);
            """, settings);
        Verify("ResultCodesFromConstants", files);
    }

    [Fact]
    public void Generate_StructsWithPaddingAndFixedArrays_LaidOutAsClangComputes()
    {
        var files = Generate("""
            #include <stdint.h>
            #define FOO_ID_BYTES 128
            typedef struct { char internal[FOO_ID_BYTES]; } fooId;
            typedef enum { FOO_SEND = 0, FOO_RECV = 1 } FooKind;
            typedef struct FooItemDef { FooKind kind; void *buf; uint64_t count; int32_t dataType; uint32_t rank; } FooItem;
            typedef struct FooOpaque_st FooOpaque;
            typedef struct FooParams_st { FooOpaque *opaque; int n; FooItem *items; } FooParams;
            int fooBatch(FooItem *items, uint32_t n, fooId id, const FooParams *params, int event);
            """, Settings());
        Verify("Structs", files);
    }

    [Fact]
    public void Generate_RemappedType_UsesTheExternalTypeAndEmitsNoCopy()
    {
        var settings = Settings();
        settings.TypeRemaps = new() { ["cudaStream_t"] = "global::Other.CUstream" };
        var files = Generate("""
            typedef struct CUstream_st *cudaStream_t;
            int fooLaunch(cudaStream_t stream);
            """, settings);
        Verify("RemappedType", files);
        Assert.DoesNotContain("struct CudaStream", files[1].Contents, StringComparison.Ordinal);
        Assert.Contains("Launch(global::Other.CUstream stream)", files[0].Contents, StringComparison.Ordinal);
    }
}
