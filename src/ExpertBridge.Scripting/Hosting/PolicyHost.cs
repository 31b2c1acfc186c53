using System.Diagnostics;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>Whether a reload changed the running policy.</summary>
public enum PolicyReloadStatus
{
    /// <summary>A new version is live.</summary>
    Loaded,

    /// <summary>The sources hash as the running version's: nothing was compiled.</summary>
    Unchanged,

    /// <summary>The new sources did not compile or load; the running version stays (see the diagnostics).</summary>
    Failed,
}

/// <summary>The outcome of loading or reloading a policy script.</summary>
/// <param name="Status">Loaded, unchanged or failed.</param>
/// <param name="Source">The script's full path (or <c>built-in</c>).</param>
/// <param name="PolicyName">The running policy's name after the reload.</param>
/// <param name="Version">The running version after the reload.</param>
/// <param name="Diagnostics">Errors (on failure) and warnings, as <c>file:line:col: message</c>.</param>
/// <param name="FromCache">True when the compiled image came from the disk cache.</param>
/// <param name="Elapsed">Read, compile (or cache read), load and swap.</param>
public sealed record PolicyReloadResult(
    PolicyReloadStatus Status,
    string Source,
    string PolicyName,
    int Version,
    IReadOnlyList<ScriptDiagnostic> Diagnostics,
    bool FromCache,
    TimeSpan Elapsed)
{
    public bool Success => Status != PolicyReloadStatus.Failed;
}

/// <summary>
/// A running policy: a built-in, or a script compiled and loaded into its own collectible context, reloaded on
/// demand or when its files change, swapped atomically while calls run, and unloaded once drained. Calls go through
/// a safe invoker (time limit, exception capture, placement validation). A host is itself an
/// <see cref="IPlacementPolicy"/>: <see cref="Decide"/> answers keep whenever the policy fails, so replay and
/// serving code take a host like any policy. Open one with <see cref="PolicyResolver.OpenAsync"/>.
/// </summary>
public sealed class PolicyHost : IPlacementPolicy, IDisposable
{
    private readonly PolicySlot _slot;
    private readonly SafePolicyInvoker _invoker;
    private readonly ScriptingOptions _options;
    private readonly ILogger _logger;
    private readonly PolicyScriptCompiler? _compiler;
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private PolicyWatcher? _watcher;
    private int _lastVersion;
    private int _disposed;

    private PolicyHost(PolicyVersion initial, ScriptingOptions options, PolicyScriptCompiler? compiler, string? scriptPath)
    {
        _options = options;
        _logger = options.LoggerFactory.CreateLogger("ExpertBridge.Scripting.PolicyHost");
        _compiler = compiler;
        ScriptPath = scriptPath;
        _slot = new PolicySlot(initial);
        _lastVersion = initial.Number;
        _invoker = new SafePolicyInvoker(_slot, options.DecisionTimeout, _logger);
    }

    /// <summary>Raised after every reload attempt of a script (from the watcher or <see cref="ReloadAsync"/>).</summary>
    public event EventHandler<PolicyReloadResult>? Reloaded;

    /// <summary>The running policy's name.</summary>
    public string Name => _slot.Current.Name;

    /// <summary>The running version: 1, then one more per successful reload.</summary>
    public int Version => _slot.Current.Number;

    /// <summary>The script's full path, or null for a built-in.</summary>
    public string? ScriptPath { get; }

    public bool IsScript => ScriptPath is not null;

    /// <summary>Calls and failures by reason since the host opened.</summary>
    public PolicyInvocationStats Stats => _invoker.Stats;

    /// <summary>The time limit of one call.</summary>
    public TimeSpan DecisionTimeout => _invoker.Timeout;

    internal PolicySlot Slot => _slot;

    internal PolicyScriptCompiler? Compiler => _compiler;

    internal PolicyWatcher? Watcher => _watcher;

    /// <summary>Calls the policy safely; on any failure the decision is keep, with the failure as its reason.</summary>
    public PolicyDecision Decide(PolicyContext context) => ToDecision(Invoke(context));

    /// <summary>Calls the policy safely and tells what came of it.</summary>
    public PolicyOutcome Invoke(PolicyContext context) => _invoker.Invoke(context);

    /// <summary>Calls the policy safely without blocking a thread while it runs.</summary>
    public Task<PolicyOutcome> InvokeAsync(PolicyContext context) => _invoker.InvokeAsync(context);

    /// <summary>
    /// Reads the script and its <c>#load</c>ed files again and, when they changed, compiles (or takes the cached
    /// image), loads and swaps in the new version; the old one unloads when its running calls end. On any error the
    /// running version stays and the result carries the diagnostics. Built-ins report unchanged.
    /// </summary>
    public async Task<PolicyReloadResult> ReloadAsync(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (ScriptPath is null)
        {
            var current = _slot.Current;
            return new PolicyReloadResult(PolicyReloadStatus.Unchanged, current.Source, current.Name, current.Number, [], false, TimeSpan.Zero);
        }

        await _reloadGate.WaitAsync(cancellation).ConfigureAwait(false);
        try
        {
            var result = await Task.Run(() => ReloadCore(cancellation), cancellation).ConfigureAwait(false);
            Reloaded?.Invoke(this, result);
            return result;
        }
        finally
        {
            _reloadGate.Release();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _watcher?.Dispose();
        _slot.Dispose();
    }

    /// <summary>
    /// A host over a policy object the caller made (an embedder's own policy, a test double): the same invoker (time
    /// limit, failure capture, validation) as built-ins and scripts; nothing to reload.
    /// </summary>
    public static PolicyHost ForPolicy(IPlacementPolicy policy, ScriptingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        options ??= ScriptingOptions.Default;
        options.Validate();
        return ForBuiltIn(policy, options);
    }

    internal static PolicyHost ForBuiltIn(IPlacementPolicy policy, ScriptingOptions options)
    {
        var logger = options.LoggerFactory.CreateLogger("ExpertBridge.Scripting.PolicyHost");
        var version = new PolicyVersion(policy, 1, policy.Name, "built-in", null, [], null, logger);
        return new PolicyHost(version, options, null, null);
    }

    /// <summary>Loads the script, or throws <see cref="InputException"/> at its first error.</summary>
    internal static PolicyHost ForScript(string scriptPath, ScriptingOptions options, PolicyScriptCompiler compiler, CancellationToken cancellation)
    {
        var logger = options.LoggerFactory.CreateLogger("ExpertBridge.Scripting.PolicyHost");
        var clock = Stopwatch.StartNew();
        var sources = PolicySourceSet.Read(scriptPath);
        var (version, diagnostics, fromCache) = Build(sources, compiler, options, 1, logger, cancellation);
        if (version is null)
        {
            throw ToInputException(diagnostics);
        }

        Log.PolicyLive(logger, version.Name, version.Number, sources.MainPath, fromCache ? "cached" : "compiled", clock.Elapsed.TotalMilliseconds);
        var host = new PolicyHost(version, options, compiler, sources.MainPath);
        if (options.Watch)
        {
            host.StartWatching(sources);
        }

        return host;
    }

    /// <summary>
    /// An <see cref="InputException"/> whose subject is the first error's <c>file:line:col</c>; or, when the script's top
    /// level refused its input (an option value), that input error itself, which names the option and its rule.
    /// </summary>
    internal static InputException ToInputException(IReadOnlyList<ScriptDiagnostic> diagnostics)
    {
        var errors = diagnostics.Where(d => d.IsError).ToList();
        var first = errors.Count > 0 ? errors[0] : diagnostics[0];
        if (first.Cause is { } cause)
        {
            return cause;
        }

        var more = errors.Count > 1 ? $" (+{errors.Count - 1} more error(s); run 'policy check' for all)" : "";
        return new InputException($"{first.File}:{first.Line}:{first.Column}", "the policy script compiles and loads", first.Text + more);
    }

    private static (PolicyVersion? Version, IReadOnlyList<ScriptDiagnostic> Diagnostics, bool FromCache) Build(
        PolicySourceSet sources, PolicyScriptCompiler compiler, ScriptingOptions options, int number, ILogger logger, CancellationToken cancellation)
    {
        var compiled = compiler.Compile(sources, options.UseCache, cancellation);
        if (!compiled.Success)
        {
            return (null, compiled.Diagnostics, compiled.FromCache);
        }

        var (version, error) = PolicyLoader.Load(compiled, options.Options, number, options.EntryTimeout, logger);
        return version is null ? (null, [.. compiled.Diagnostics, error!], compiled.FromCache) : (version, compiled.Diagnostics, compiled.FromCache);
    }

    private PolicyReloadResult ReloadCore(CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var sources = PolicySourceSet.Read(ScriptPath!);
        _watcher?.Track(sources.WatchedPaths, sources.ContentHash);
        var current = _slot.Current;
        if (sources.ContentHash == current.ContentHash)
        {
            return new PolicyReloadResult(PolicyReloadStatus.Unchanged, sources.MainPath, current.Name, current.Number, [], false, clock.Elapsed);
        }

        var (version, diagnostics, fromCache) = Build(sources, _compiler!, _options, _lastVersion + 1, _logger, cancellation);
        if (version is null)
        {
            foreach (var d in diagnostics.Where(d => d.IsError))
            {
                Log.LoadFailed(_logger, sources.MainPath, d.ToString());
            }

            return new PolicyReloadResult(PolicyReloadStatus.Failed, sources.MainPath, current.Name, current.Number, diagnostics, fromCache, clock.Elapsed);
        }

        try
        {
            _slot.Swap(version);
        }
        catch (ObjectDisposedException)
        {
            version.Release();
            throw;
        }

        _lastVersion = version.Number;
        Log.PolicyLive(_logger, version.Name, version.Number, sources.MainPath, fromCache ? "cached" : "compiled", clock.Elapsed.TotalMilliseconds);
        return new PolicyReloadResult(PolicyReloadStatus.Loaded, sources.MainPath, version.Name, version.Number, diagnostics, fromCache, clock.Elapsed);
    }

    private void StartWatching(PolicySourceSet sources)
    {
        _watcher = new PolicyWatcher(cancellation => ReloadAsync(cancellation), _options.WatchDebounce, _options.PollInterval, _options.PollingRequested, _logger);
        _watcher.Track(sources.WatchedPaths, sources.ContentHash);
    }

    private static PolicyDecision ToDecision(PolicyOutcome outcome) => outcome.Kind switch
    {
        PolicyOutcomeKind.Applied => PolicyDecision.Apply(outcome.Placement, outcome.Reason, outcome.AllowsColocatedReplicas),
        PolicyOutcomeKind.Kept => PolicyDecision.Keep(outcome.Reason),
        _ => PolicyDecision.Keep($"policy failed ({outcome.Failure}): {outcome.Reason}"),
    };
}
