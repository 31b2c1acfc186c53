using ExpertBridge.Interop;
using ExpertBridge.Interop.Acl;

namespace ExpertBridge.Interop.Hccl;

/// <summary>HCCL. The imports are generated (Generated/Hccl.g.cs); this half finds the library in the CANN install
/// (as AscendCL does) or the loader path.</summary>
public static partial class Hccl
{
    /// <summary>Full path of a libhccl to load instead of CANN's (e.g. the host-memory emulator). Checked first.</summary>
    public const string LibraryVariable = "EXPERTBRIDGE_HCCL_LIBRARY";

    internal static readonly NativeLibrarySpec Spec = new(
        "HCCL (libhccl.so)", LibraryVariable, ["libhccl.so"], Acl.Acl.CannDirectories, Acl.Acl.CannRoots);

    private static readonly NativeLibraryProbe s_library = NativeLibraryProbe.Load(Spec);

#pragma warning disable CA1810 // the resolver must be registered before the first import binds
    static Hccl() => s_library.RegisterResolver(typeof(Hccl).Assembly, LibraryName);
#pragma warning restore CA1810

    /// <summary>False when no HCCL library could be loaded; <see cref="LibraryProbe"/> says where it looked.</summary>
    public static bool IsSupported => s_library.IsLoaded;

    /// <summary>Which library was loaded, or why none was, with every path tried.</summary>
    public static NativeLibraryProbe LibraryProbe => s_library;
}
