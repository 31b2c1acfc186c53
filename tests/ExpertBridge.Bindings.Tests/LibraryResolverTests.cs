using ExpertBridge.Interop;
using ExpertBridge.Interop.Acl;
using ExpertBridge.Interop.Cuda;
using ExpertBridge.Interop.Hccl;
using ExpertBridge.Interop.Nccl;

namespace ExpertBridge.Bindings.Tests;

/// <summary>The library probe (no library needed) and, through the stub libraries, the resolver, the override
/// variables, the versioned entry points and the error mapping of all four bindings.</summary>
public class LibraryResolverTests(StubLibraries stubs)
{
    private static readonly NativeLibrarySpec s_missing = new(
        "Missing vendor (libeb-missing.so.1)",
        "EB_TEST_MISSING_LIBRARY",
        ["libeb-missing.so.1", "libeb-missing.so"],
        ["/nonexistent/eb/lib64", "/nonexistent/eb/lib"],
        [("EB_TEST_MISSING_HOME", "lib64")]);

    [Fact]
    public void Probe_LibraryAbsent_NotLoadedAndTraceNamesEveryPathTried()
    {
        var probe = NativeLibraryProbe.Load(s_missing, _ => null);

        Assert.False(probe.IsLoaded);
        Assert.Null(probe.LoadedPath);
        foreach (var path in new[]
        {
            "/nonexistent/eb/lib64/libeb-missing.so.1", "/nonexistent/eb/lib64/libeb-missing.so",
            "/nonexistent/eb/lib/libeb-missing.so.1", "/nonexistent/eb/lib/libeb-missing.so",
            "libeb-missing.so.1 (system loader)", "libeb-missing.so (system loader)", "$EB_TEST_MISSING_HOME: not set",
        })
        {
            Assert.Contains(path, probe.Trace, StringComparison.Ordinal);
        }
        Assert.Contains("set EB_TEST_MISSING_LIBRARY", probe.FailureMessage, StringComparison.Ordinal);
        Assert.Contains(probe.Trace, probe.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_DirectoryVariable_TriedBeforeFixedDirectories()
    {
        var probe = NativeLibraryProbe.Load(s_missing, v => v == "EB_TEST_MISSING_HOME" ? "/opt/eb-cann" : null);
        var trace = probe.Trace;
        Assert.True(trace.IndexOf("/opt/eb-cann/lib64/libeb-missing.so.1", StringComparison.Ordinal)
            < trace.IndexOf("/nonexistent/eb/lib64/libeb-missing.so.1", StringComparison.Ordinal), trace);
    }

    [Fact]
    public void Probe_OverrideVariableSet_TriesOnlyThatPath()
    {
        var probe = NativeLibraryProbe.Load(s_missing, v => v == "EB_TEST_MISSING_LIBRARY" ? "/nonexistent/emulator/libcuda.so" : null);

        Assert.False(probe.IsLoaded);
        Assert.Contains("EB_TEST_MISSING_LIBRARY=/nonexistent/emulator/libcuda.so", probe.Trace, StringComparison.Ordinal);
        Assert.DoesNotContain("/nonexistent/eb/lib64", probe.Trace, StringComparison.Ordinal);
        Assert.DoesNotContain("system loader", probe.Trace, StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_OverrideVariablePointsAtLibrary_LoadsIt()
    {
        stubs.SkipIfUnavailable();
        var probe = NativeLibraryProbe.Load(s_missing, v => v == "EB_TEST_MISSING_LIBRARY" ? stubs.Hccl : null);
        Assert.True(probe.IsLoaded, probe.Trace);
        Assert.Equal(stubs.Hccl, probe.LoadedPath);
        Assert.NotEqual(0, probe.GetExport("HcclGetRankSize"));
        Assert.Equal(0, probe.GetExport("HcclNoSuchFunction"));
    }

    [Fact]
    public void Cuda_OverrideVariable_LoadsTheStubFirst()
    {
        stubs.SkipIfUnavailable();
        Assert.True(Cuda.IsSupported, Cuda.LibraryProbe.Trace);
        Assert.Equal(stubs.Cuda, Cuda.LibraryProbe.LoadedPath);
        Assert.Contains($"{Cuda.LibraryVariable}={stubs.Cuda}: loaded", Cuda.LibraryProbe.Trace, StringComparison.Ordinal);
    }

    [Fact]
    public unsafe void Cuda_MemAlloc_CallsTheVersionedSymbolNotTheLegacyOne()
    {
        stubs.SkipIfUnavailable();
        ulong ptr;
        // The stub's legacy cuMemAlloc returns 999; cuMemAlloc_v2 returns 0x1000 + size.
        Assert.Equal(CUresult.Success, Cuda.MemAlloc(&ptr, 24));
        Assert.Equal(0x1000UL + 24, ptr);
    }

    [Fact]
    public unsafe void Cuda_EventElapsedTimeOnDriverWithoutV2_FallsBackToV1Symbol()
    {
        stubs.SkipIfUnavailable();
        float ms;
        Assert.Equal(CUresult.Success, Cuda.EventElapsedTime(&ms, CUevent.Null, CUevent.Null));
        Assert.Equal(1.5f, ms);
    }

    [Fact]
    public void Cuda_FailedStatus_ExceptionCarriesDriverNameTextAndCall()
    {
        stubs.SkipIfUnavailable();
        var e = Assert.Throws<CudaException>(() => CudaException.ThrowIfFailed(Cuda.Init(0)));

        Assert.Equal(CUresult.ErrorNoDevice, e.Status);
        Assert.Equal("CUDA_ERROR_NO_DEVICE", e.ErrorName);
        Assert.Equal("no CUDA-capable device is detected (stub)", e.ErrorText);
        Assert.Equal("Cuda.Init(0) failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected (stub)", e.Message);
    }

    [Fact]
    public void Cuda_StatusTheDriverCannotName_FallsBackToManifestName()
    {
        stubs.SkipIfUnavailable();
        var (name, text) = CudaException.Describe(CUresult.ErrorOutOfMemory);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", name);
        Assert.Equal("no description from the driver", text);
        Assert.Equal("CUresult 12345", CudaException.Describe((CUresult)12345).Name);
    }

    [Fact]
    public void Cuda_Success_DoesNotThrow()
    {
        CudaException.ThrowIfFailed(CUresult.Success);
        NcclException.ThrowIfFailed(NcclResult.Success);
        AclException.ThrowIfFailed(AclError.Success);
        HcclException.ThrowIfFailed(HcclResult.Success);
    }

    [Fact]
    public unsafe void Nccl_FailedStatus_ExceptionCarriesErrorStringAndLastError()
    {
        stubs.SkipIfUnavailable();
        int version;
        Assert.Equal(NcclResult.Success, Nccl.GetVersion(&version));
        Assert.Equal(22809, version);
        var e = Assert.Throws<NcclException>(() =>
        {
            int count;
            NcclException.ThrowIfFailed(Nccl.CommCount(NcclComm.Null, &count));
        });

        Assert.Equal(NcclResult.InvalidUsage, e.Status);
        Assert.Equal("ncclInvalidUsage", e.ErrorName);
        Assert.Equal("invalid usage (stub); last error: rank 1 is not in the communicator (stub)", e.ErrorText);
        Assert.StartsWith("Nccl.CommCount(NcclComm.Null, &count) failed: ncclInvalidUsage (5)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public unsafe void Acl_FailedStatus_ExceptionCarriesCodeNameAndRecentErrorMessage()
    {
        stubs.SkipIfUnavailable();
        Assert.True(Acl.IsSupported, Acl.LibraryProbe.Trace);
        var e = Assert.Throws<AclException>(() => AclException.ThrowIfFailed(Acl.Init(null)));

        Assert.Equal(AclError.ErrorRepeatInitialize, e.Status);
        Assert.Equal("ACL_ERROR_REPEAT_INITIALIZE", e.ErrorName);
        Assert.Equal("EE1001: repeated initialization (stub)", e.ErrorText);
        Assert.Equal(100002, e.Code);
    }

    [Fact]
    public unsafe void Hccl_FailedStatus_ExceptionCarriesResultNameAndDescription()
    {
        stubs.SkipIfUnavailable();
        var e = Assert.Throws<HcclException>(() =>
        {
            uint size;
            HcclException.ThrowIfFailed(Hccl.GetRankSize(HcclComm.Null, &size));
        });

        Assert.Equal(HcclResult.EPara, e.Status);
        Assert.Equal("HCCL_E_PARA", e.ErrorName);
        Assert.Equal("parameter error", e.ErrorText);
    }

    [Fact]
    public void Handles_NullAndConversions_BehaveAsValues()
    {
        var stream = (CUstream)0x1234;
        Assert.False(stream.IsNull);
        Assert.True(CUstream.Null.IsNull);
        Assert.Equal(0x1234, (nint)stream);
        Assert.Equal(stream, new CUstream(0x1234));
        Assert.NotEqual(CUstream.Legacy, CUstream.PerThread);
        Assert.Equal(0x2, (nint)CUstream.PerThread);
        Assert.Equal("CUstream(0x1234)", stream.ToString());
    }
}
