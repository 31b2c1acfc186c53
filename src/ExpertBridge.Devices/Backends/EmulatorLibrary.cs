using System.Runtime.InteropServices;

namespace ExpertBridge.Devices.Backends;

/// <summary>
/// Finds ExpertBridge's emulator libraries and drives their fault-injection exports (ebemu_set_fault,
/// ebemu_reset_faults, ebemu_get_stat), which are ours, not the vendor's.
/// </summary>
internal sealed unsafe class EmulatorLibrary : IFaultControl
{
    private readonly delegate* unmanaged<byte*, long, int> _set;
    private readonly delegate* unmanaged<void> _reset;
    private readonly delegate* unmanaged<byte*, long*, int> _stat;

    private EmulatorLibrary(nint handle)
    {
        _set = (delegate* unmanaged<byte*, long, int>)NativeLibrary.GetExport(handle, "ebemu_set_fault");
        _reset = (delegate* unmanaged<void>)NativeLibrary.GetExport(handle, "ebemu_reset_faults");
        _stat = (delegate* unmanaged<byte*, long*, int>)NativeLibrary.GetExport(handle, "ebemu_get_stat");
    }

    /// <summary>The fault control of a loaded library, or null when it is not an ExpertBridge emulator.</summary>
    public static EmulatorLibrary? TryAttach(nint handle) =>
        handle != 0 && NativeLibrary.TryGetExport(handle, "ebemu_set_fault", out _) ? new EmulatorLibrary(handle) : null;

    /// <summary>
    /// Full path of <paramref name="fileName"/>: <see cref="DeviceRuntimeOptions.EmulatorDirectory"/>, then
    /// <c>EXPERTBRIDGE_EMULATOR_DIR</c>, then the application folder, then <c>artifacts/native</c> of the repository
    /// around the application (found by walking up to Bridge.sln). Throws NotAvailable naming every place tried.
    /// </summary>
    public static string Locate(string fileName, DeviceRuntimeOptions options)
    {
        var tried = new List<string>();
        foreach (var dir in Candidates(options))
        {
            var path = Path.Combine(dir, fileName);
            tried.Add(path);
            if (File.Exists(path))
            {
                return Path.GetFullPath(path);
            }
        }

        throw new DeviceException(DeviceErrorKind.NotAvailable, "emulator", "locate", 0, "EMULATOR_NOT_BUILT",
            $"{fileName} not found (run `build.ps1 build`, or set EXPERTBRIDGE_EMULATOR_DIR); tried {string.Join(", ", tried)}");
    }

    public void Set(string knob, long value)
    {
        var name = System.Text.Encoding.ASCII.GetBytes(knob + "\0");
        fixed (byte* p = name)
        {
            if (_set(p, value) != 0)
            {
                throw new ArgumentException($"the emulator has no fault knob {knob}", nameof(knob));
            }
        }
    }

    public void Reset() => _reset();

    public long? Stat(string name)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(name + "\0");
        long value;
        fixed (byte* p = bytes)
        {
            return _stat(p, &value) == 0 ? value : null;
        }
    }

    private static IEnumerable<string> Candidates(DeviceRuntimeOptions options)
    {
        if (options.EmulatorDirectory is { Length: > 0 } explicitDir)
        {
            yield return explicitDir;
        }

        if (Environment.GetEnvironmentVariable("EXPERTBRIDGE_EMULATOR_DIR") is { Length: > 0 } envDir)
        {
            yield return envDir;
        }

        yield return AppContext.BaseDirectory;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bridge.sln")))
            {
                yield return Path.Combine(dir.FullName, "artifacts", "native");
                yield break;
            }
        }
    }
}
