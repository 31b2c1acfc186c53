using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace ExpertBridge.Interop;

/// <summary>Where one vendor library may be: an override variable (a full path, tried first and alone), then the
/// file names under install roots named by environment variables, then the bare names through the system loader
/// (LD_LIBRARY_PATH, the ld cache), then the usual install directories.</summary>
/// <param name="DisplayName">Named in messages, e.g. <c>CUDA driver (libcuda.so.1)</c>.</param>
/// <param name="OverrideVariable">Environment variable holding the full path of a library to load instead, e.g. the
/// host-memory emulator; when set, nothing else is tried.</param>
/// <param name="FileNames">Real sonames first (<c>libcuda.so.1</c>), then development names.</param>
/// <param name="Directories">Directories to try each file name in, after the system loader.</param>
/// <param name="DirectoryVariables">Environment variables naming an install root, with the sub-folder to look in
/// (<c>("ASCEND_HOME_PATH", "lib64")</c>); tried first.</param>
public sealed record NativeLibrarySpec(
    string DisplayName,
    string OverrideVariable,
    IReadOnlyList<string> FileNames,
    IReadOnlyList<string> Directories,
    IReadOnlyList<(string Variable, string SubPath)> DirectoryVariables);

/// <summary>The outcome of probing for a vendor library: loaded or not, and the trace of every path tried.</summary>
public sealed class NativeLibraryProbe
{
    private NativeLibraryProbe(NativeLibrarySpec spec, nint handle, string? path, string trace)
    {
        Spec = spec;
        Handle = handle;
        LoadedPath = path;
        Trace = trace;
    }

    public NativeLibrarySpec Spec { get; }

    /// <summary>The loaded library (0 when absent). Never freed: bindings keep it for the process.</summary>
    public nint Handle { get; }

    public bool IsLoaded => Handle != 0;

    /// <summary>The path or name that loaded, or null.</summary>
    public string? LoadedPath { get; }

    /// <summary>One line per attempt: the path or name, and what the loader said.</summary>
    public string Trace { get; }

    /// <summary>Probes once; never throws for a missing library.</summary>
    /// <param name="spec">Where to look.</param>
    /// <param name="environment">Environment lookup (tests pass their own); defaults to the process environment.</param>
    public static NativeLibraryProbe Load(NativeLibrarySpec spec, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        environment ??= Environment.GetEnvironmentVariable;
        var trace = new StringBuilder();
        var overridePath = environment(spec.OverrideVariable);
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            var h = TryLoad(overridePath, $"{spec.OverrideVariable}={overridePath}", trace);
            return new NativeLibraryProbe(spec, h, h != 0 ? overridePath : null, trace.ToString());
        }
        var roots = new List<string>();
        foreach (var (variable, sub) in spec.DirectoryVariables)
        {
            var root = environment(variable);
            if (string.IsNullOrWhiteSpace(root)) trace.Append("\n  $").Append(variable).Append(": not set");
            else roots.Add(Path.Combine(root, sub));
        }
        // Install roots named by the environment, then the system loader (LD_LIBRARY_PATH, the ld cache), then the
        // usual install directories.
        if (TryDirectories(spec, roots, trace) is { } fromRoot) return fromRoot;
        foreach (var name in spec.FileNames)
        {
            var h = TryLoad(name, name + " (system loader)", trace);
            if (h != 0) return new NativeLibraryProbe(spec, h, name, trace.ToString());
        }
        if (TryDirectories(spec, spec.Directories, trace) is { } fromDirectory) return fromDirectory;
        return new NativeLibraryProbe(spec, 0, null, trace.ToString());
    }

    private static NativeLibraryProbe? TryDirectories(NativeLibrarySpec spec, IEnumerable<string> directories, StringBuilder trace)
    {
        foreach (var dir in directories)
        {
            foreach (var name in spec.FileNames)
            {
                var path = Path.Combine(dir, name);
                if (!File.Exists(path))
                {
                    trace.Append("\n  ").Append(path).Append(": no such file");
                    continue;
                }
                var h = TryLoad(path, path, trace);
                if (h != 0) return new NativeLibraryProbe(spec, h, path, trace.ToString());
            }
        }
        return null;
    }

    private static nint TryLoad(string pathOrName, string label, StringBuilder trace)
    {
        try
        {
            var h = NativeLibrary.Load(pathOrName);
            trace.Append("\n  ").Append(label).Append(": loaded");
            return h;
        }
        catch (DllNotFoundException e)
        {
            // The runtime's message ends with the loader's own line (dlerror); the rest is generic advice.
            var lines = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            trace.Append("\n  ").Append(label).Append(": ").Append(lines.Length > 0 ? lines[^1] : e.Message);
        }
        catch (BadImageFormatException e)
        {
            trace.Append("\n  ").Append(label).Append(": ").Append(e.Message);
        }
        return 0;
    }

    /// <summary>Why the library is not usable, with the trace; null when it is loaded.</summary>
    public string? FailureMessage => IsLoaded
        ? null
        : $"{Spec.DisplayName}: not found (set {Spec.OverrideVariable} to the full path of the library to use one elsewhere); tried:{Trace}";

    /// <summary>Resolves the bindings' <c>DllImport(libraryName)</c> of <paramref name="assembly"/> to this library;
    /// when it is absent, a call throws <see cref="DllNotFoundException"/> carrying the trace.</summary>
    public void RegisterResolver(Assembly assembly, string libraryName)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        NativeLibrary.SetDllImportResolver(assembly, (name, _, _) =>
        {
            if (!string.Equals(name, libraryName, StringComparison.Ordinal)) return 0;
            return IsLoaded ? Handle : throw new DllNotFoundException(FailureMessage);
        });
    }

    /// <summary>The address of an optional export (e.g. a symbol newer drivers add), or 0.</summary>
    public nint GetExport(string symbol) =>
        IsLoaded && NativeLibrary.TryGetExport(Handle, symbol, out var address) ? address : 0;
}
