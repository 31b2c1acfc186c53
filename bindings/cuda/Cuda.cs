using ExpertBridge.Interop;

namespace ExpertBridge.Interop.Cuda;

/// <summary>The CUDA driver API. The imports are generated (Generated/Cuda.g.cs); this half finds the library.</summary>
public static partial class Cuda
{
    /// <summary>Full path of a libcuda to load instead of the driver's (e.g. the host-memory emulator). Checked first.</summary>
    public const string LibraryVariable = "EXPERTBRIDGE_CUDA_LIBRARY";

    internal static readonly NativeLibrarySpec Spec = new(
        "CUDA driver (libcuda.so.1)",
        LibraryVariable,
        ["libcuda.so.1", "libcuda.so"],
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib"],
        []);

    private static readonly NativeLibraryProbe s_library = NativeLibraryProbe.Load(Spec);

#pragma warning disable CA1810 // the resolver must be registered before the first import binds; a field initializer cannot
    static Cuda() => s_library.RegisterResolver(typeof(Cuda).Assembly, LibraryName);
#pragma warning restore CA1810

    /// <summary>False when no CUDA driver library could be loaded; <see cref="LibraryProbe"/> says where it looked.</summary>
    public static bool IsSupported => s_library.IsLoaded;

    /// <summary>Which library was loaded, or why none was, with every path tried.</summary>
    public static NativeLibraryProbe LibraryProbe => s_library;

    private static partial nint ResolveExport(string symbol, string fallback)
    {
        if (!s_library.IsLoaded) throw new DllNotFoundException(s_library.FailureMessage);
        var address = s_library.GetExport(symbol);
        if (address == 0) address = s_library.GetExport(fallback);
        return address != 0
            ? address
            : throw new EntryPointNotFoundException($"{Spec.DisplayName} at {s_library.LoadedPath}: exports neither {symbol} nor {fallback}");
    }
}

/// <summary>The special stream handles of cuda.h (casts of integers, so not in the manifest).</summary>
public readonly partial struct CUstream
{
    /// <summary><c>CU_STREAM_LEGACY</c>: the legacy default stream, which synchronizes with other blocking streams.</summary>
    public static CUstream Legacy => new(0x1);

    /// <summary><c>CU_STREAM_PER_THREAD</c>: the calling thread's default stream.</summary>
    public static CUstream PerThread => new(0x2);
}
