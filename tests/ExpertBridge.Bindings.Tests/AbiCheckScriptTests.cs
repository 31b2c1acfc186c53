using ExpertBridge.Bindings.Generator;

namespace ExpertBridge.Bindings.Tests;

/// <summary>
/// bindings/abi-check.sh against stand-in vendor headers (the vendors' headers are not redistributable and not on
/// this machine). A stand-in is the manifest itself, which mirrors the vendor header, plus for CUDA the #define
/// block that renames API names to versioned symbols as cuda.h does. The checks must pass on the stand-ins and
/// fail, naming the declaration, on a stand-in with one thing changed.
/// </summary>
public class AbiCheckScriptTests
{
    private static string Manifest(string target) => File.ReadAllText(Path.Combine(TestPaths.Root, "bindings", target, target + "_api.h"));

    /// <summary>cuda.h's define block for the versioned entry points, as the settings map them.</summary>
    private static string CudaDefines()
    {
        var settings = TargetSettings.Load(Path.Combine(TestPaths.Root, "bindings/cuda/settings.json"), "cuda");
        return string.Concat(settings.EntryPoints.Select(kv => $"#define {kv.Key} {kv.Value}\n"));
    }

    /// <summary>Target to the text of its stand-in header.</summary>
    private static Dictionary<string, string> StandIns() => new()
    {
        ["cuda"] = CudaDefines() + Manifest("cuda"),
        ["nccl"] = Manifest("nccl"),
        ["acl"] = Manifest("acl"),
        ["hccl"] = Manifest("hccl"),
    };

    private static (int ExitCode, string Output) RunCheck(Dictionary<string, string> headers)
    {
        if (TestPaths.Which("bash") is null || TestPaths.Which("gcc") is null || TestPaths.Which("g++") is null)
        {
            Assert.Skip("bash, gcc and g++ are needed to run bindings/abi-check.sh");
        }
        var dir = TestPaths.NewTempDirectory();
        void Write(string rel, string text)
        {
            var path = Path.Combine(dir, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
        }
        Write("cuda/cuda.h", headers["cuda"]);
        Write("nccl/nccl.h", headers["nccl"]);
        Write("ascend/include/acl/acl.h", headers["acl"]);
        Write("ascend/include/hccl/hccl.h", headers["hccl"]);
        return TestPaths.Run("bash", [Path.Combine(TestPaths.Root, "bindings/abi-check.sh")], new Dictionary<string, string>
        {
            ["CUDA_INCLUDE"] = Path.Combine(dir, "cuda"),
            ["NCCL_INCLUDE"] = Path.Combine(dir, "nccl"),
            ["ASCEND_HOME_PATH"] = Path.Combine(dir, "ascend"),
        });
    }

    [Fact]
    public void AbiCheck_HeadersMatchingTheManifests_AllFourPass()
    {
        var (code, output) = RunCheck(StandIns());
        Assert.True(code == 0, output);
        foreach (var t in new[] { "cuda", "nccl", "acl", "hccl" }) Assert.Contains($"abi-check {t}: pass", output, StringComparison.Ordinal);
        Assert.Contains("pass=4 fail=0 skipped=0", output, StringComparison.Ordinal);
    }

    [Fact]
    public void AbiCheck_HeadersAbsent_AllSkippedAndSucceeds()
    {
        if (TestPaths.Which("bash") is null) Assert.Skip("bash is needed to run bindings/abi-check.sh");
        var empty = TestPaths.NewTempDirectory();
        var (code, output) = TestPaths.Run("bash", [Path.Combine(TestPaths.Root, "bindings/abi-check.sh")], new Dictionary<string, string>
        {
            ["CUDA_INCLUDE"] = empty,
            ["NCCL_INCLUDE"] = empty,
            ["ASCEND_HOME_PATH"] = empty,
        });
        Assert.True(code == 0, output);
        Assert.Contains($"abi-check cuda: skipped ({empty}/cuda.h not found)", output, StringComparison.Ordinal);
        Assert.Contains("pass=0 fail=0 skipped=4", output, StringComparison.Ordinal);
    }

    [Theory]
    // A cuda.h whose cuMemAlloc is the legacy symbol: binding cuMemAlloc_v2 would be wrong against it.
    [InlineData("cuda", "#define cuMemAlloc cuMemAlloc_v2\n", "", "EB_BOUND_cuMemAlloc")]
    [InlineData("nccl", "ncclInvalidUsage = 5", "ncclInvalidUsage = 6", "ncclInvalidUsage == 5")]
    [InlineData("acl", "size_t maxCount, int32_t value, size_t count);", "size_t maxCount, int64_t value, size_t count);", "aclrtMemset: type differs from the manifest")]
    [InlineData("hccl", "    void *buf;\n    uint64_t count;", "    void *buf;\n    uint32_t count;", "offsetof(HcclSendRecvItem, dataType) == 24")]
    public void AbiCheck_HeaderDiffersFromManifest_FailsThatTargetNamingTheDeclaration(string target, string from, string to, string expected)
    {
        var headers = StandIns();
        Assert.Contains(from, headers[target], StringComparison.Ordinal);
        headers[target] = headers[target].Replace(from, to, StringComparison.Ordinal);

        var (code, output) = RunCheck(headers);

        Assert.NotEqual(0, code);
        Assert.Contains($"abi-check {target}: FAIL", output, StringComparison.Ordinal);
        Assert.Contains(expected, output, StringComparison.Ordinal);
        Assert.Contains("pass=3 fail=1 skipped=0", output, StringComparison.Ordinal);
    }
}
