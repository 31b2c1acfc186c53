using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ExpertBridge.Scripting;

/// <summary>How policies are resolved, compiled, called and watched. Every setting has a working default; derive variants with <c>with</c>.</summary>
public sealed record ScriptingOptions
{
    public static ScriptingOptions Default { get; } = new();

    /// <summary>Options from the config or the command line; they win over a script's <c>// @option</c> header.</summary>
    public PolicyOptions Options { get; init; } = PolicyOptions.Empty;

    /// <summary>Time limit of one <c>Decide</c> call (default 2 s); past it the placement in force stays.</summary>
    public TimeSpan DecisionTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Time limit of a script's top level, which builds the policy (default 10 s).</summary>
    public TimeSpan EntryTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether compiled scripts are cached on disk (default true).</summary>
    public bool UseCache { get; init; } = true;

    /// <summary>The cache directory; null: <c>$XDG_CACHE_HOME/expertbridge/scripts</c> or <c>~/.cache/expertbridge/scripts</c>.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Whether a script host watches its script and <c>#load</c>ed files and reloads them on change.</summary>
    public bool Watch { get; init; }

    /// <summary>Quiet period after the last file event before a reload (default 300 ms).</summary>
    public TimeSpan WatchDebounce { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// Poll the files instead of (or, after a watcher fails, besides) file events; also on when the environment sets
    /// <c>DOTNET_USE_POLLING_FILE_WATCHER</c> to 1 or true (mounted and network drives).
    /// </summary>
    public bool UsePolling { get; init; }

    /// <summary>How often polling hashes the files (default 2 s).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Run nullable flow analysis when compiling, to report its warnings (CS86xx). Off by default in hosts: the
    /// analysis only reports (the compiled code is the same; only the embedded PDB records the option), and it is
    /// about a fifth to a quarter of a library's compile on a reload. <c>policy check</c>, the author's tool, always
    /// runs it.
    /// </summary>
    public bool NullableWarnings { get; init; }

    /// <summary>Where bare policy names are looked up as <c>NAME.csx</c> when they are not built-ins (e.g. <c>policies</c>).</summary>
    public string? PolicyDirectory { get; init; }

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    internal bool PollingRequested =>
        UsePolling || Environment.GetEnvironmentVariable("DOTNET_USE_POLLING_FILE_WATCHER") is "1" or "true" or "TRUE" or "True";

    internal string EffectiveCacheDirectory => CacheDirectory ?? CompiledPolicyCache.DefaultDirectory();

    /// <summary>Throws <see cref="InputException"/> naming the setting that is out of range.</summary>
    internal void Validate()
    {
        Positive(DecisionTimeout, "policy decision timeout");
        Positive(EntryTimeout, "policy entry timeout");
        Positive(WatchDebounce, "policy watch debounce");
        Positive(PollInterval, "policy poll interval");
        ArgumentNullException.ThrowIfNull(Options);
        ArgumentNullException.ThrowIfNull(LoggerFactory);
    }

    private static void Positive(TimeSpan value, string subject)
    {
        if (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue)
        {
            throw new InputException(subject, "0 < value <= 24 days", $"got {value}");
        }
    }
}
