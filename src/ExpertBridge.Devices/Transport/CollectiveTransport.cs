using System.Runtime.ExceptionServices;
using ExpertBridge.Core;
using ExpertBridge.Devices.Transport;

namespace ExpertBridge.Devices;

/// <summary>
/// Point-to-point transfers between devices of different processes or nodes through the vendor's collective library
/// (NCCL on CUDA, HCCL on Ascend). One communicator spans the job: one rank per global device (EP rank), so a process
/// with several devices holds several ranks (<see cref="LocalRanks"/>). Open one with <see cref="Open"/>.
/// <para>
/// Protocol: sends and receives are enqueued on device streams between <see cref="GroupStart"/> and
/// <see cref="GroupEnd"/> (on one thread); the operations of a group progress together, so two ranks may send to each
/// other in one group. Every pair of ranks must issue matching operations (same sizes) in the same order: a receive
/// pairs with the peer's next unmatched send to this rank. The transfers are stream-ordered: a send reads its buffer
/// after the work queued before it on its stream, and work queued after a receive sees the received bytes.
/// </para>
/// <para>
/// Failures: a failed call throws <see cref="DeviceException"/> with the library's error name and text.
/// <see cref="ThrowIfFailed"/> reports asynchronous errors (a peer that died, a network error). <see cref="Abort"/>
/// tears the communicators down so that transfers stuck on a peer stop; the transport is unusable afterwards (every
/// call throws <see cref="DeviceErrorKind.NotAvailable"/> naming the reason) and the job opens a new one.
/// </para>
/// <para>
/// No finalizer: a transport that is not disposed keeps its communicators until the process exits (a vendor call on
/// the finalizer thread could block on a peer).
/// </para>
/// </summary>
public abstract class CollectiveTransport : IDisposable
{
    private static readonly TimeSpan AbortWait = TimeSpan.FromSeconds(5);
    private readonly int[] _localRanks;
    private readonly object _groupLock = new();
    private int _groupThread;
    private int _aborted;
    private int _disposed;

    /// <summary>For a transport over a collective library; <paramref name="localRanks"/>[d] is the global rank of local
    /// device d of <paramref name="runtime"/>, or -1 when that device takes no part.</summary>
    protected CollectiveTransport(DeviceRuntime runtime, string name, int ranks, IReadOnlyList<int> localRanks)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(localRanks);
        CollectiveTransportOptions.CheckRanks(ranks, localRanks, runtime.Devices.Count);
        Runtime = runtime;
        Name = name;
        Ranks = ranks;
        _localRanks = [.. localRanks];
    }

    /// <summary>The library, for example <c>nccl</c> or <c>hccl</c>.</summary>
    public string Name { get; }

    /// <summary>The runtime whose streams and memory the transfers use.</summary>
    public DeviceRuntime Runtime { get; }

    /// <summary>Ranks of the communicator (global devices of the job).</summary>
    public int Ranks { get; }

    /// <summary>Global rank of each local device (index = device ordinal); -1 for a device that takes no part.</summary>
    public IReadOnlyList<int> LocalRanks => _localRanks;

    /// <summary>True after <see cref="Abort"/>; <see cref="AbortReason"/> says why.</summary>
    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    public string? AbortReason { get; private set; }

    /// <summary>
    /// Opens the transport of <paramref name="runtime"/>'s vendor: NCCL for <see cref="DeviceBackend.Cuda"/>, HCCL for
    /// <see cref="DeviceBackend.Cann"/>. Blocks until every rank of the job has joined (at most
    /// <see cref="CollectiveTransportOptions.InitTimeout"/>). Throws <see cref="InputException"/> for inconsistent
    /// options and <see cref="DeviceException"/> (<see cref="DeviceErrorKind.NotAvailable"/>) when the library or
    /// backend cannot do it here.
    /// </summary>
    public static CollectiveTransport Open(DeviceRuntime runtime, CollectiveTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(runtime.Devices.Count);
        return runtime.Kind switch
        {
            DeviceBackend.Cuda => NcclTransport.Connect(runtime, options),
            DeviceBackend.Cann => HcclTransport.Connect(runtime, options),
            _ => throw NoLibrary(runtime),
        };
    }

    /// <summary>
    /// A new unique id of a job (NCCL's ncclUniqueId, HCCL's root info), created by the process that holds rank 0 and
    /// handed to every other process (<see cref="CollectiveTransportOptions.UniqueId"/>) through a pipe, a socket or
    /// the job launcher; or let <see cref="CollectiveTransportOptions.RendezvousFile"/> do it.
    /// </summary>
    public static byte[] CreateUniqueId(DeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        return runtime.Kind switch
        {
            DeviceBackend.Cuda => NcclTransport.NewUniqueId(runtime),
            DeviceBackend.Cann => HcclTransport.NewUniqueId(runtime),
            _ => throw NoLibrary(runtime),
        };
    }

    /// <summary>Opens a group of sends and receives on the calling thread (a group open on another thread is waited
    /// for: groups run one at a time).</summary>
    public void GroupStart()
    {
        if (Volatile.Read(ref _groupThread) == Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException($"{Name}: a group is already open on this thread (groups do not nest here)");
        }

        Monitor.Enter(_groupLock);
        try
        {
            ThrowIfUnusable();
            StartGroupCore();
            Volatile.Write(ref _groupThread, Environment.CurrentManagedThreadId);
        }
        catch
        {
            Monitor.Exit(_groupLock);
            throw;
        }
    }

    /// <summary>Closes the group opened on this thread: its sends and receives are issued on their streams. Always
    /// closes the library's group (even after an abort), so the thread is left clean.</summary>
    public void GroupEnd()
    {
        if (Volatile.Read(ref _groupThread) != Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException($"{Name}: GroupEnd without a GroupStart on this thread");
        }

        try
        {
            EndGroupCore();
        }
        finally
        {
            Volatile.Write(ref _groupThread, 0);
            Monitor.Exit(_groupLock);
        }

        if (IsAborted)
        {
            throw Aborted();
        }
    }

    /// <summary>Enqueues sending <paramref name="source"/> (device memory on <paramref name="stream"/>'s device) to global rank <paramref name="peer"/>.</summary>
    public void Send(DeviceStream stream, DeviceMemory source, int peer)
    {
        CheckTransfer(stream, source, peer, "send", nameof(source));
        SendCore(stream, source, peer);
    }

    /// <summary>Enqueues receiving into <paramref name="target"/> (device memory on <paramref name="stream"/>'s device) from global rank <paramref name="peer"/>.</summary>
    public void Receive(DeviceStream stream, DeviceMemory target, int peer)
    {
        CheckTransfer(stream, target, peer, "receive", nameof(target));
        ReceiveCore(stream, target, peer);
    }

    /// <summary>Throws <see cref="DeviceException"/> when the library reported an asynchronous error on any local
    /// communicator, or when the transport was aborted.</summary>
    public void ThrowIfFailed()
    {
        ThrowIfUnusable();
        if (QueryAsyncError() is { } error)
        {
            throw error;
        }
    }

    /// <summary>
    /// Tears the communicators down: transfers waiting for a peer stop, and every later call fails naming
    /// <paramref name="reason"/>. Safe from any thread, once or more (the first reason stays). A group being issued on
    /// another thread is waited for (a few seconds at most: a group stuck on a dead peer is exactly what abort ends).
    /// </summary>
    public void Abort(string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var locked = Monitor.TryEnter(_groupLock, AbortWait);
        try
        {
            if (Interlocked.Exchange(ref _aborted, 1) == 0)
            {
                AbortReason = reason;
                AbortCore();
            }
        }
        finally
        {
            if (locked)
            {
                Monitor.Exit(_groupLock);
            }
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Dispose(true);
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>The global rank of local <paramref name="device"/>, or -1.</summary>
    public int RankOf(int device) => device >= 0 && device < _localRanks.Length ? _localRanks[device] : -1;

    protected abstract void StartGroupCore();

    protected abstract void EndGroupCore();

    protected abstract void SendCore(DeviceStream stream, DeviceMemory source, int peer);

    protected abstract void ReceiveCore(DeviceStream stream, DeviceMemory target, int peer);

    /// <summary>The first asynchronous error of a local communicator, or null.</summary>
    protected abstract DeviceException? QueryAsyncError();

    /// <summary>Aborts the communicators (called once).</summary>
    protected abstract void AbortCore();

    /// <summary>Releases the communicators (not called again after the first Dispose).</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>Resolves the job's unique id: given, or through the rendezvous file (written by rank 0's process).</summary>
    private protected static byte[] ResolveUniqueId(CollectiveTransportOptions options, int size, string library, Func<byte[]> create)
    {
        if (options.UniqueId is { } id)
        {
            if (id.Count != size)
            {
                throw new InputException("collective transport unique id", $"the {size}-byte id of {library}", $"got {id.Count} bytes");
            }

            return [.. id];
        }

        var path = options.RendezvousFile!;
        if (options.LocalRanks.Contains(0))
        {
            var created = create();
            Rendezvous.Publish(path, created);
            return created;
        }

        return Rendezvous.Await(path, size, options.InitTimeout, library);
    }

    /// <summary>
    /// Runs a blocking join (communicator init) on its own thread and waits at most <paramref name="timeout"/>. A join
    /// that never completes leaves that thread blocked in the library; the caller gets a Timeout error.
    /// </summary>
    private protected static T JoinWithTimeout<T>(string library, string operation, TimeSpan timeout, Func<T> join)
    {
        T? result = default;
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = join();
            }
#pragma warning disable CA1031 // whatever the join throws is rethrown on the caller's thread (an escape here would end the process)
            catch (Exception ex)
            {
                error = ExceptionDispatchInfo.Capture(ex);
            }
#pragma warning restore CA1031
        })
        {
            IsBackground = true,
            Name = $"{library} init",
        };
        thread.Start();
        if (!thread.Join(timeout))
        {
            throw new DeviceException(DeviceErrorKind.Timeout, library, operation, 0, "TIMEOUT",
                $"not every rank joined within {timeout.TotalSeconds:0.#} s (is every process of the job started, with the same unique id and rank count?); the joining thread stays blocked in {library}");
        }

        error?.Throw();
        return result!;
    }

    private protected DeviceException Aborted() =>
        new(DeviceErrorKind.NotAvailable, Name, "transfer", 0, "TRANSPORT_ABORTED", $"the transport was aborted ({AbortReason}); open a new one");

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (IsAborted)
        {
            throw Aborted();
        }
    }

    private void CheckTransfer(DeviceStream stream, DeviceMemory memory, int peer, string what, string parameter)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ThrowIfUnusable();
        if (Volatile.Read(ref _groupThread) != Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException($"{Name}: {what} outside a group; call GroupStart first, on this thread");
        }

        if (!ReferenceEquals(stream.Runtime, Runtime))
        {
            throw new ArgumentException($"{Name}: the stream belongs to another runtime ({stream.Runtime.Name}) than the transport's ({Runtime.Name})", nameof(stream));
        }

        ObjectDisposedException.ThrowIf(stream.IsDisposed, stream);
        if (memory.IsHost || memory.Device != stream.Device)
        {
            throw new ArgumentException($"{Name}: {what} buffer {memory} must be device memory on the stream's device {stream.Device}", parameter);
        }

        if (memory.Length <= 0)
        {
            throw new ArgumentOutOfRangeException(parameter, memory.Length, $"{Name}: a {what} moves at least one byte");
        }

        var self = RankOf(stream.Device);
        if (self < 0)
        {
            throw new ArgumentException($"{Name}: local device {stream.Device} holds no rank of this transport (local ranks [{string.Join(", ", _localRanks)}])", nameof(stream));
        }

        if (peer < 0 || peer >= Ranks)
        {
            throw new ArgumentOutOfRangeException(nameof(peer), peer, $"{Name}: peer rank outside 0..{Ranks - 1}");
        }

        if (peer == self)
        {
            throw new ArgumentException($"{Name}: device {stream.Device} is rank {peer} itself; a copy within a process is a device copy, not a transfer", nameof(peer));
        }
    }

    private static DeviceException NoLibrary(DeviceRuntime runtime) =>
        new(DeviceErrorKind.Unsupported, runtime.Name, "collective transport", 0, "NO_COLLECTIVE_LIBRARY",
            $"the {runtime.Name} backend has no collective library; transfers between processes need cuda (NCCL) or cann (HCCL)");
}
