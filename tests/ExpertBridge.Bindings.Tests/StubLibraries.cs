[assembly: AssemblyFixture(typeof(ExpertBridge.Bindings.Tests.StubLibraries))]

namespace ExpertBridge.Bindings.Tests;

/// <summary>
/// Tiny stand-ins for libcuda, libnccl, libascendcl and libhccl, compiled with gcc once per test run, and the
/// EXPERTBRIDGE_*_LIBRARY variables pointing at them, set before any test touches a binding's static class (the
/// bindings probe once per process). Each stub returns a fixed failure status with a recognisable message, and
/// the CUDA stub exports both cuMemAlloc (legacy, returns an error) and cuMemAlloc_v2 (returns a fake pointer),
/// and cuEventElapsedTime without cuEventElapsedTime_v2 (as drivers before CUDA 12.8).
/// Without gcc the tests that need them skip.
/// </summary>
public sealed class StubLibraries
{
    private const string CudaSource = """
        typedef int CUresult;
        CUresult cuInit(unsigned int flags) { (void)flags; return 100; }
        CUresult cuMemAlloc(unsigned int *p, unsigned int n) { (void)p; (void)n; return 999; }
        CUresult cuMemAlloc_v2(unsigned long long *p, unsigned long n) { *p = 0x1000 + n; return 0; }
        CUresult cuEventElapsedTime(float *ms, void *start, void *end) { (void)start; (void)end; *ms = 1.5f; return 0; }
        CUresult cuGetErrorName(CUresult e, const char **s) { if (e != 100) { *s = 0; return 1; } *s = "CUDA_ERROR_NO_DEVICE"; return 0; }
        CUresult cuGetErrorString(CUresult e, const char **s) { if (e != 100) { *s = 0; return 1; } *s = "no CUDA-capable device is detected (stub)"; return 0; }
        """;

    private const string NcclSource = """
        int ncclGetVersion(int *v) { *v = 22809; return 0; }
        int ncclCommCount(void *comm, int *count) { (void)comm; (void)count; return 5; }
        const char *ncclGetErrorString(int r) { return r == 5 ? "invalid usage (stub)" : "unknown"; }
        const char *ncclGetLastError(void *comm) { (void)comm; return "rank 1 is not in the communicator (stub)"; }
        """;

    private const string AclSource = """
        int aclInit(const char *config) { (void)config; return 100002; }
        const char *aclGetRecentErrMsg(void) { return "EE1001: repeated initialization (stub)"; }
        """;

    private const string HcclSource = """
        int HcclGetRankSize(void *comm, unsigned int *size) { (void)comm; (void)size; return 1; }
        """;

    public StubLibraries()
    {
        var gcc = TestPaths.Which("gcc");
        if (gcc is null)
        {
            SkipReason = "gcc is not installed: the stub vendor libraries cannot be built";
            return;
        }
        Directory = TestPaths.NewTempDirectory();
        Cuda = Build(gcc, "libcuda-stub.so", CudaSource);
        Nccl = Build(gcc, "libnccl-stub.so", NcclSource);
        Acl = Build(gcc, "libascendcl-stub.so", AclSource);
        Hccl = Build(gcc, "libhccl-stub.so", HcclSource);
        Environment.SetEnvironmentVariable(Interop.Cuda.Cuda.LibraryVariable, Cuda);
        Environment.SetEnvironmentVariable(Interop.Nccl.Nccl.LibraryVariable, Nccl);
        Environment.SetEnvironmentVariable(Interop.Acl.Acl.LibraryVariable, Acl);
        Environment.SetEnvironmentVariable(Interop.Hccl.Hccl.LibraryVariable, Hccl);
    }

    public string? SkipReason { get; }

    public string Directory { get; } = "";

    public string Cuda { get; } = "";

    public string Nccl { get; } = "";

    public string Acl { get; } = "";

    public string Hccl { get; } = "";

    public void SkipIfUnavailable()
    {
        if (SkipReason is not null) Assert.Skip(SkipReason);
    }

    private string Build(string gcc, string name, string source)
    {
        var c = Path.Combine(Directory, Path.ChangeExtension(name, ".c"));
        var so = Path.Combine(Directory, name);
        File.WriteAllText(c, source);
        var (code, output) = TestPaths.Run(gcc, ["-shared", "-fPIC", "-o", so, c]);
        if (code != 0) throw new InvalidOperationException($"gcc failed on {c}: {output}");
        return so;
    }
}
