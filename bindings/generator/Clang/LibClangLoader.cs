using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace ExpertBridge.Bindings.Generator.Clang;

/// <summary>
/// Finds libclang.so from the NuGet package <c>libclang.runtime.linux-x64</c> (copied beside the assembly under
/// runtimes/linux-x64/native, or recorded in deps.json); <c>EXPERTBRIDGE_LIBCLANG</c> (a full path) is tried first.
/// </summary>
internal static class LibClangLoader
{
    public const string OverrideVariable = "EXPERTBRIDGE_LIBCLANG";
    private static readonly Lazy<nint> s_handle = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    private static int s_registered;

    public static void EnsureRegistered()
    {
        if (Interlocked.Exchange(ref s_registered, 1) == 0)
        {
            NativeLibrary.SetDllImportResolver(typeof(LibClangLoader).Assembly, Resolve);
        }
        _ = s_handle.Value;
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == LibClang.LibraryName ? s_handle.Value : 0;

    private static nint Load()
    {
        var trace = new StringBuilder();
        var overridePath = Environment.GetEnvironmentVariable(OverrideVariable);
        if (!string.IsNullOrEmpty(overridePath))
        {
            if (TryLoad(overridePath, trace, out var h)) return h;
            throw new GeneratorException($"{OverrideVariable}={overridePath}: libclang could not be loaded; tried:{trace}");
        }
        var baseDir = AppContext.BaseDirectory;
        var candidates = new[]
        {
            Path.Combine(baseDir, "runtimes", "linux-x64", "native", "libclang.so"),
            Path.Combine(baseDir, "libclang.so"),
        };
        foreach (var path in candidates)
        {
            if (TryLoad(path, trace, out var h)) return h;
        }
        // deps.json native assets (the host's probing paths).
        if (NativeLibrary.TryLoad(LibClang.LibraryName, typeof(LibClangLoader).Assembly, null, out var handle)) return handle;
        trace.Append("\n  libclang (deps.json and default search): not found");
        throw new GeneratorException(
            "libclang: not found; restore the NuGet package libclang.runtime.linux-x64 or set " + OverrideVariable +
            " to a libclang.so; tried:" + trace);
    }

    private static bool TryLoad(string path, StringBuilder trace, out nint handle)
    {
        handle = 0;
        if (!File.Exists(path))
        {
            trace.Append("\n  ").Append(path).Append(": no such file");
            return false;
        }
        try
        {
            handle = NativeLibrary.Load(path);
            return true;
        }
        catch (DllNotFoundException e)
        {
            trace.Append("\n  ").Append(path).Append(": ").Append(e.Message);
            return false;
        }
        catch (BadImageFormatException e)
        {
            trace.Append("\n  ").Append(path).Append(": ").Append(e.Message);
            return false;
        }
    }
}
