using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>
/// Watches a policy's files (the script and what it <c>#load</c>s) and calls back when their content changed:
/// one <see cref="FileSystemWatcher"/> per directory, events for other files ignored, a quiet period (debounce)
/// after the last event so that a burst of writes gives one reload, and a content hash so that a touch or a save
/// without change gives none. A watcher error (buffer overflow, a removed directory) recreates the watcher and
/// rescans; where watching is impossible or polling was asked for, a timer hashes the files instead.
/// The baseline hash is the one the host read when it last tried to load, so no change between that read and
/// this watcher's is lost.
/// </summary>
internal sealed class PolicyWatcher : IDisposable
{
    private readonly Func<CancellationToken, Task> _onChanged;
    private readonly TimeSpan _debounce;
    private readonly TimeSpan _pollInterval;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, FileSystemWatcher> _watchers = new(PolicySourceSet.PathComparer);
    private readonly Timer _debounceTimer;
    private readonly SemaphoreSlim _checkGate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private Timer? _pollTimer;
    private HashSet<string> _paths = new(PolicySourceSet.PathComparer);
    private string[] _pathList = [];
    private string _baseline = "";
    private long _checks;
    private long _unchanged;
    private long _triggered;
    private bool _disposed;

    public PolicyWatcher(Func<CancellationToken, Task> onChanged, TimeSpan debounce, TimeSpan pollInterval, bool polling, ILogger logger)
    {
        _onChanged = onChanged;
        _debounce = debounce;
        _pollInterval = pollInterval;
        _logger = logger;
        _debounceTimer = new Timer(static s => ((PolicyWatcher)s!).StartCheck(), this, Timeout.Infinite, Timeout.Infinite);
        if (polling)
        {
            StartPolling();
        }
    }

    /// <summary>Raised after each check: true when the content had changed and the callback ran.</summary>
    public event Action<bool>? Checked;

    /// <summary>Checks whose files hashed as the baseline (a touch, a save without change): no reload.</summary>
    public long UnchangedChecks => Interlocked.Read(ref _unchanged);

    /// <summary>Checks that found changed content and called back.</summary>
    public long ReloadsTriggered => Interlocked.Read(ref _triggered);

    public long Checks => Interlocked.Read(ref _checks);

    public bool IsPolling => Volatile.Read(ref _pollTimer) is not null;

    /// <summary>The directories watched for events now.</summary>
    public IReadOnlyCollection<string> Directories
    {
        get
        {
            lock (_lock)
            {
                return [.. _watchers.Keys];
            }
        }
    }

    /// <summary>Watches <paramref name="paths"/> from now on, with <paramref name="contentHash"/> as the baseline.</summary>
    public void Track(IReadOnlyList<string> paths, string contentHash)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _paths = new HashSet<string>(paths, PolicySourceSet.PathComparer);
            _pathList = [.. paths];
            _baseline = contentHash;
            var wanted = new HashSet<string>(paths.Select(p => Path.GetDirectoryName(p)!), PolicySourceSet.PathComparer);
            foreach (var gone in _watchers.Keys.Where(d => !wanted.Contains(d)).ToList())
            {
                _watchers.Remove(gone, out var watcher);
                watcher!.Dispose();
            }

            foreach (var directory in wanted.Where(d => !_watchers.ContainsKey(d)))
            {
                Watch(directory);
            }
        }
    }

    /// <summary>Checks now (after the debounce), as if a file event had arrived.</summary>
    public void Poke() => Schedule();

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var watcher in _watchers.Values)
            {
                watcher.Dispose();
            }

            _watchers.Clear();
        }

        _stopping.Cancel();
        _debounceTimer.Dispose();
        Interlocked.Exchange(ref _pollTimer, null)?.Dispose();

        // A check that is running keeps its gate; the gate and token are left to the GC rather than pulled from under it.
    }

    // Called under _lock.
    private void Watch(string directory)
    {
        try
        {
            var watcher = new FileSystemWatcher(directory)
            {
                IncludeSubdirectories = false,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
            };
            watcher.Changed += OnEvent;
            watcher.Created += OnEvent;
            watcher.Deleted += OnEvent;
            watcher.Renamed += OnEvent;
            watcher.Error += OnError;
            watcher.EnableRaisingEvents = true;
            _watchers[directory] = watcher;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // A missing directory, or the inotify limits reached: poll instead.
            Log.WatcherFailed(_logger, directory, ex.Message, _pollInterval.TotalSeconds);
            StartPolling();
        }
    }

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        bool relevant;
        lock (_lock)
        {
            relevant = _paths.Contains(e.FullPath) || (e is RenamedEventArgs r && _paths.Contains(r.OldFullPath));
        }

        if (relevant)
        {
            Schedule();
        }
    }

    private void OnError(object sender, ErrorEventArgs e)
    {
        var failed = (FileSystemWatcher)sender;
        Log.WatcherFailed(_logger, failed.Path, e.GetException().Message, _pollInterval.TotalSeconds);
        lock (_lock)
        {
            if (_disposed || !_watchers.TryGetValue(failed.Path, out var current) || !ReferenceEquals(current, failed))
            {
                return;
            }

            _watchers.Remove(failed.Path);
            failed.Dispose();
            Watch(failed.Path);
        }

        // Events may have been lost: rescan.
        Schedule();
    }

    private void StartPolling()
    {
        if (Volatile.Read(ref _pollTimer) is null)
        {
            var timer = new Timer(static s => ((PolicyWatcher)s!).StartCheck(), this, _pollInterval, _pollInterval);
            if (Interlocked.CompareExchange(ref _pollTimer, timer, null) is not null)
            {
                timer.Dispose();
            }
        }
    }

    private void Schedule()
    {
        try
        {
            _debounceTimer.Change(_debounce, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private void StartCheck() => _ = CheckAsync();

    private async Task CheckAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        if (!await _checkGate.WaitAsync(0).ConfigureAwait(false))
        {
            // A check (and maybe a reload) is running; look again after it.
            Schedule();
            return;
        }

        var changed = false;
        try
        {
            string[] paths;
            string baseline;
            lock (_lock)
            {
                paths = _pathList;
                baseline = _baseline;
            }

            Interlocked.Increment(ref _checks);
            var hash = PolicySourceSet.HashFiles(paths, p => PolicySourceSet.ReadShared(p, out _));
            if (hash == baseline)
            {
                Interlocked.Increment(ref _unchanged);
            }
            else
            {
                changed = true;
                Interlocked.Increment(ref _triggered);
                Log.SourcesChanged(_logger, paths.Length > 0 ? paths[0] : "?");
                await _onChanged(_stopping.Token).ConfigureAwait(false);
                lock (_lock)
                {
                    // The callback normally calls Track; if it could not, do not report this content again.
                    if (_baseline == baseline)
                    {
                        _baseline = hash;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.ReloadCrashed(_logger, _pathList.FirstOrDefault() ?? "?", ex.Message);
        }
        finally
        {
            _checkGate.Release();
        }

        Checked?.Invoke(changed);
    }
}
