using ExpertBridge.Interop;

namespace ExpertBridge.Interop.Nccl;

/// <summary>NCCL. The imports are generated (Generated/Nccl.g.cs); this half finds the library.</summary>
public static partial class Nccl
{
    /// <summary>Full path of a libnccl to load instead of the system's (e.g. the host-memory emulator). Checked first.</summary>
    public const string LibraryVariable = "EXPERTBRIDGE_NCCL_LIBRARY";

    internal static readonly NativeLibrarySpec Spec = new(
        "NCCL (libnccl.so.2)",
        LibraryVariable,
        ["libnccl.so.2", "libnccl.so"],
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/cuda/lib64"],
        [("NCCL_HOME", "lib"), ("CUDA_HOME", "lib64")]);

    private static readonly NativeLibraryProbe s_library = NativeLibraryProbe.Load(Spec);

#pragma warning disable CA1810 // the resolver must be registered before the first import binds
    static Nccl() => s_library.RegisterResolver(typeof(Nccl).Assembly, LibraryName);
#pragma warning restore CA1810

    /// <summary>False when no NCCL library could be loaded; <see cref="LibraryProbe"/> says where it looked.</summary>
    public static bool IsSupported => s_library.IsLoaded;

    /// <summary>Which library was loaded, or why none was, with every path tried.</summary>
    public static NativeLibraryProbe LibraryProbe => s_library;
}
