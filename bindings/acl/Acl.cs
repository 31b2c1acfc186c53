using ExpertBridge.Interop;

namespace ExpertBridge.Interop.Acl;

/// <summary>The AscendCL runtime. The imports are generated (Generated/Acl.g.cs); this half finds the library in the
/// CANN install (ASCEND_HOME_PATH, ASCEND_TOOLKIT_HOME, the default /usr/local/Ascend paths) or the loader path.</summary>
public static partial class Acl
{
    /// <summary>Full path of a libascendcl to load instead of CANN's (e.g. the host-memory emulator). Checked first.</summary>
    public const string LibraryVariable = "EXPERTBRIDGE_ACL_LIBRARY";

    /// <summary>Environment variables naming a CANN install, with the folder of its libraries (shared with HCCL).</summary>
    public static readonly IReadOnlyList<(string Variable, string SubPath)> CannRoots =
        [("ASCEND_HOME_PATH", "lib64"), ("ASCEND_TOOLKIT_HOME", "lib64")];

    /// <summary>The default CANN install directories of the runtime libraries.</summary>
    public static readonly IReadOnlyList<string> CannDirectories =
        ["/usr/local/Ascend/ascend-toolkit/latest/lib64", "/usr/local/Ascend/cann/lib64", "/usr/local/Ascend/latest/lib64"];

    internal static readonly NativeLibrarySpec Spec = new(
        "AscendCL (libascendcl.so)", LibraryVariable, ["libascendcl.so"], CannDirectories, CannRoots);

    private static readonly NativeLibraryProbe s_library = NativeLibraryProbe.Load(Spec);

#pragma warning disable CA1810 // the resolver must be registered before the first import binds
    static Acl() => s_library.RegisterResolver(typeof(Acl).Assembly, LibraryName);
#pragma warning restore CA1810

    /// <summary>False when no AscendCL library could be loaded; <see cref="LibraryProbe"/> says where it looked.</summary>
    public static bool IsSupported => s_library.IsLoaded;

    /// <summary>Which library was loaded, or why none was, with every path tried.</summary>
    public static NativeLibraryProbe LibraryProbe => s_library;
}
