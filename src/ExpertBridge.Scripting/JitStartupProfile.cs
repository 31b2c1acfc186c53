using System.Reflection;
using System.Runtime;

namespace ExpertBridge.Scripting;

/// <summary>
/// The runtime's multicore JIT (<see cref="ProfileOptimization"/>) for processes that compile policies. ReadyToRun
/// cannot precompile all of Roslyn (much of its generic code over framework types is left to the JIT), so a host's
/// first compile in a fresh process spends a large part of its time in the JIT. With a profile, the runtime records
/// which methods a start jitted, and on the next start of the same build compiles them ahead, on background threads,
/// while the host reads its config and policies. The profile lives in the compile cache
/// (<c>CACHE/jit/HOST.BUILD.jitprofile</c>, one per host and build; profiles of other builds of that host are
/// deleted), so it follows the cache's settings. It helps a restart; the very first start of a build has no profile.
/// <para>
/// The runtime's setting is process-wide, so the hosts' entry points call <see cref="Start"/> (the CLI, the C ABI),
/// not the library; an embedder with its own .NET process may call it the same way, once, early.
/// </para>
/// <para>
/// The runtime writes the profile when it shuts down. A native process that embeds the runtime (the C ABI) may exit
/// without that, so such a host calls <see cref="Save"/> once its start-up work is done; that also keeps the profile
/// to what a start needs.
/// </para>
/// </summary>
public static class JitStartupProfile
{
    private const string Extension = ".jitprofile";
    private static int s_started;

    /// <summary>
    /// Starts recording, and replaying the profile of an earlier start of this build if there is one. Returns the
    /// profile's path, or null when it did not start: the cache is off, the process has a single core (the runtime
    /// then ignores profiles), the cache directory cannot be created, or it was started before in this process.
    /// </summary>
    /// <param name="host">The host's name, lower-case letters, digits and dashes (<c>cli</c>, <c>c-abi</c>).</param>
    /// <param name="hostAssembly">The host's own assembly: its version is part of the build.</param>
    /// <param name="options">Where the cache is (default: the default cache).</param>
    public static string? Start(string host, Assembly hostAssembly, ScriptingOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentNullException.ThrowIfNull(hostAssembly);
        if (!host.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
        {
            throw new ArgumentException($"host name '{host}' must be lower-case letters, digits and dashes", nameof(host));
        }

        options ??= ScriptingOptions.Default;
        if (!options.UseCache || Environment.ProcessorCount < 2 || Volatile.Read(ref s_started) != 0)
        {
            return null;
        }

        var directory = Path.Combine(options.EffectiveCacheDirectory, "jit");
        var build = $"{PolicyScriptCompiler.EnvironmentFingerprint}-{hostAssembly.ManifestModule.ModuleVersionId.ToString("N")[..8]}";
        // HOST.BUILD: host names hold no dot, so HOST.* names this host's profiles and no other host's.
        var name = $"{host}.{build}{Extension}";
        try
        {
            Directory.CreateDirectory(directory);
            foreach (var stale in Directory.EnumerateFiles(directory, $"{host}.*{Extension}").Where(f => Path.GetFileName(f) != name))
            {
                File.Delete(stale);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        if (Interlocked.CompareExchange(ref s_started, 1, 0) != 0)
        {
            return null;
        }

        ProfileOptimization.SetProfileRoot(directory);
        ProfileOptimization.StartProfile(name);
        return Path.Combine(directory, name);
    }

    /// <summary>
    /// Writes the profile now and stops recording (no-op unless <see cref="Start"/> started one and it was not saved
    /// yet). Call it when the host's start-up work is done.
    /// </summary>
    public static void Save()
    {
        if (Interlocked.CompareExchange(ref s_started, 2, 1) == 1)
        {
            ProfileOptimization.StartProfile(null);
        }
    }
}
