namespace ExpertBridge.Devices.Tests;

/// <summary>What one rank posted to another: the bytes to copy, ready once <see cref="Ready"/> completes.</summary>
internal sealed record LoopbackMessage(DeviceMemory Source, DeviceEvent Ready);

/// <summary>The wire between <see cref="LoopbackTransport"/>s of one test: a queue per (sender, receiver) rank pair.</summary>
internal sealed class LoopbackWire
{
    private readonly Dictionary<(int From, int To), Queue<LoopbackMessage>> _queues = [];

    public void Post(int from, int to, LoopbackMessage message)
    {
        lock (_queues)
        {
            if (!_queues.TryGetValue((from, to), out var q))
            {
                _queues[(from, to)] = q = new Queue<LoopbackMessage>();
            }

            q.Enqueue(message);
            Monitor.PulseAll(_queues);
        }
    }

    public LoopbackMessage Take(int from, int to, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_queues)
        {
            while (true)
            {
                if (_queues.TryGetValue((from, to), out var q) && q.Count > 0)
                {
                    return q.Dequeue();
                }

                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    throw new DeviceException(DeviceErrorKind.Timeout, "loopback", "receive", 9, "LOOPBACK_TIMEOUT", $"rank {from} sent nothing to rank {to}");
                }

                Monitor.Wait(_queues, left);
            }
        }
    }
}

/// <summary>
/// A stand-in for NCCL between host runtimes of one test process (each runtime plays a process): a group's sends post
/// their range and an event recorded after them; its receives take the peer's next post for this rank (blocking, like
/// a rendezvous), check the size as NCCL would, and copy on their own stream after the sender's event. Abort releases
/// stalled copies of its runtime, as ncclCommAbort makes stuck kernels leave the stream.
/// </summary>
internal sealed class LoopbackTransport(DeviceRuntime runtime, int ranks, int[] localRanks, LoopbackWire wire)
    : CollectiveTransport(runtime, "loopback", ranks, localRanks)
{
    private readonly List<(bool Send, DeviceStream Stream, DeviceMemory Memory, int Peer)> _group = [];
    private readonly List<DeviceEvent> _events = [];

    /// <summary>Byte counts of each issued group's operations, in issue order.</summary>
    public List<long[]> Groups { get; } = [];

    /// <summary>Reported by <see cref="CollectiveTransport.ThrowIfFailed"/> when set.</summary>
    public DeviceException? AsyncError { get; set; }

    protected override void StartGroupCore() => _group.Clear();

    protected override void SendCore(DeviceStream stream, DeviceMemory source, int peer) => _group.Add((true, stream, source, peer));

    protected override void ReceiveCore(DeviceStream stream, DeviceMemory target, int peer) => _group.Add((false, stream, target, peer));

    protected override void EndGroupCore()
    {
        Groups.Add([.. _group.Select(o => o.Memory.Length)]);
        foreach (var (_, stream, memory, peer) in _group.Where(o => o.Send))
        {
            var ready = stream.Record();
            _events.Add(ready);
            wire.Post(RankOf(stream.Device), peer, new LoopbackMessage(memory, ready));
        }

        foreach (var (_, stream, memory, peer) in _group.Where(o => !o.Send))
        {
            var message = wire.Take(peer, RankOf(stream.Device), TimeSpan.FromSeconds(20));
            if (message.Source.Length != memory.Length)
            {
                throw new DeviceException(DeviceErrorKind.InvalidArgument, Name, "receive", 4, "LOOPBACK_SIZE_MISMATCH",
                    $"rank {peer} sent {message.Source.Length} bytes, the receive into {memory} expects {memory.Length}");
            }

            stream.Wait(message.Ready);
            stream.EnqueueCopy(memory, DeviceMemory.Host((nint)message.Source.Address, message.Source.Length));
        }
    }

    protected override DeviceException? QueryAsyncError() => AsyncError;

    protected override void AbortCore() => Runtime.Faults?.Reset();

    protected override void Dispose(bool disposing)
    {
        foreach (var e in _events)
        {
            e.Dispose();
        }

        base.Dispose(disposing);
    }
}
