using ExpertBridge.Core.Policies;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>
/// One loaded version of a policy: the instance, its collectible load context (none for built-ins), and a
/// reference count: the slot holds one reference while the version is current, every call holds one while it runs.
/// When the count reaches zero the instance is dropped and the context unloaded; a version never comes back.
/// </summary>
internal sealed class PolicyVersion
{
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IPlacementPolicy? _policy;
    private PolicyLoadContext? _context;
    private int _references = 1;
    private int _inCall;

    public PolicyVersion(IPlacementPolicy policy, int number, string name, string source, string? contentHash, IReadOnlyCollection<string> sourceFiles, PolicyLoadContext? context, ILogger logger)
    {
        SourceFiles = sourceFiles;
        _policy = policy;
        _context = context;
        _logger = logger;
        Number = number;
        Name = name;
        Source = source;
        ContentHash = contentHash;
        ContextReference = context is null ? null : new WeakReference(context);
    }

    /// <summary>1 for the first version a host loads, then one more per successful reload.</summary>
    public int Number { get; }

    /// <summary>The policy's <see cref="IPlacementPolicy.Name"/>, read once at load.</summary>
    public string Name { get; }

    /// <summary>The script's full path, or <c>built-in</c>.</summary>
    public string Source { get; }

    /// <summary>The script and its <c>#load</c>ed files (empty for built-ins), to name script lines in failures.</summary>
    public IReadOnlyCollection<string> SourceFiles { get; }

    /// <summary>Content hash of the script and its <c>#load</c>ed files; null for built-ins.</summary>
    public string? ContentHash { get; }

    /// <summary>Completes once the version has left its slot, its calls have ended and its context is unloaded.</summary>
    public Task Drained => _drained.Task;

    /// <summary>Weak reference to the load context, to prove it is collected (tests, diagnostics).</summary>
    internal WeakReference? ContextReference { get; }

    /// <summary>The instance; only valid while a reference is held.</summary>
    public IPlacementPolicy Policy => Volatile.Read(ref _policy) ?? throw new ObjectDisposedException($"policy '{Name}' version {Number}");

    /// <summary>Takes a reference unless the version has already drained.</summary>
    public bool TryAddReference()
    {
        var count = Volatile.Read(ref _references);
        while (count > 0)
        {
            var seen = Interlocked.CompareExchange(ref _references, count + 1, count);
            if (seen == count)
            {
                return true;
            }

            count = seen;
        }

        return false;
    }

    /// <summary>Drops a reference; the last one out unloads the version.</summary>
    public void Release()
    {
        var left = Interlocked.Decrement(ref _references);
        if (left == 0)
        {
            Unload();
        }
        else if (left < 0)
        {
            throw new InvalidOperationException($"policy '{Name}' version {Number} released more often than referenced");
        }
    }

    /// <summary>Marks a <c>Decide</c> call as running; false while an earlier call (timed out) still runs.</summary>
    public bool TryEnterCall() => Interlocked.CompareExchange(ref _inCall, 1, 0) == 0;

    public void ExitCall() => Volatile.Write(ref _inCall, 0);

    private void Unload()
    {
        Volatile.Write(ref _policy, null);
        var context = Interlocked.Exchange(ref _context, null);
        context?.Unload();
        Log.VersionUnloaded(_logger, Name, Number);
        _drained.TrySetResult();
    }
}

/// <summary>A reference to a version for the length of one call; dispose it exactly when the call has ended.</summary>
internal sealed class PolicyLease : IDisposable
{
    private int _released;

    public PolicyLease(PolicyVersion version) => Version = version;

    public PolicyVersion Version { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            Version.Release();
        }
    }
}

/// <summary>
/// The version in force: swapped atomically, read lock-free. A caller takes a lease on the current version; a swap
/// publishes the new version and drops the slot's reference to the old one, which unloads when its last call ends.
/// </summary>
internal sealed class PolicySlot : IDisposable
{
    private PolicyVersion? _current;

    public PolicySlot(PolicyVersion initial) => _current = initial;

    public PolicyVersion Current => Volatile.Read(ref _current) ?? throw new ObjectDisposedException(nameof(PolicySlot));

    public PolicyLease Acquire()
    {
        while (true)
        {
            var version = Current;
            if (version.TryAddReference())
            {
                return new PolicyLease(version);
            }

            // Swapped out and drained between the read and the reference: the slot already holds a newer one.
        }
    }

    /// <summary>Makes <paramref name="next"/> current and returns the old version (already released by the slot).</summary>
    public PolicyVersion Swap(PolicyVersion next)
    {
        ArgumentNullException.ThrowIfNull(next);
        var old = Interlocked.Exchange(ref _current, next);
        if (old is null)
        {
            // Disposed meanwhile: do not keep the new version alive either.
            Interlocked.Exchange(ref _current, null)?.Release();
            throw new ObjectDisposedException(nameof(PolicySlot));
        }

        old.Release();
        return old;
    }

    public void Dispose() => Interlocked.Exchange(ref _current, null)?.Release();
}
