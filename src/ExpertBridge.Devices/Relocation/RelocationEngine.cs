using System.Buffers;
using System.Diagnostics;
using System.IO.Hashing;
using ExpertBridge.Core;

namespace ExpertBridge.Devices.Relocation;

/// <summary>What became of one layer's transfers.</summary>
public enum LayerStatus
{
    /// <summary>Every expert landed (and verified, when asked): the layer can commit.</summary>
    Staged,

    /// <summary>A transfer failed (device error, out of memory, timeout, checksum): mapping unchanged, staging released.</summary>
    Failed,

    /// <summary>Cancelled before staging finished: mapping unchanged.</summary>
    Cancelled,
}

/// <summary>The outcome of one layer of an execution.</summary>
public sealed record LayerOutcome(int Layer, LayerStatus Status, int Transfers, long Bytes, TimeSpan Duration, DeviceErrorKind? ErrorKind = null, string? Error = null);

/// <summary>Per-layer outcomes of one execution, in layer order.</summary>
public sealed class RelocationResult
{
    internal RelocationResult(IReadOnlyList<LayerOutcome> layers, TimeSpan duration)
    {
        Layers = layers;
        Duration = duration;
    }

    public IReadOnlyList<LayerOutcome> Layers { get; }

    public TimeSpan Duration { get; }

    public bool AllStaged => Layers.All(l => l.Status == LayerStatus.Staged);

    public long StagedBytes => Layers.Where(l => l.Status == LayerStatus.Staged).Sum(l => l.Bytes);

    /// <summary>Staged bytes per second of wall time.</summary>
    public double BytesPerSecond => Duration > TimeSpan.Zero ? StagedBytes / Duration.TotalSeconds : 0;
}

/// <summary>
/// Applies a new expert placement to running devices, copy-then-commit (see docs/relocation.md):
/// <list type="number">
/// <item><see cref="Plan"/> from the placement in force to the next one.</item>
/// <item><see cref="ExecuteAsync"/> copies every moved expert on dedicated low-priority streams into a free slot or a
/// staging buffer, never into a slot the placement in force routes tokens to, layer by layer; a layer whose copy
/// fails (device error, out of memory, timeout, checksum) is abandoned with its mapping unchanged.</item>
/// <item>For each staged layer, at a step boundary: <see cref="PrepareCommit"/>, <see cref="LayerCommit.EnqueueCopies"/>
/// on the server's inference streams (stream order lands the experts between two steps), then
/// <see cref="Acknowledge"/> once the server routes by the new row: the layer's epoch advances.</item>
/// </list>
/// </summary>
public sealed class RelocationEngine : IDisposable
{
    private readonly DeviceRuntime _runtime;
    private readonly ExpertRegistry _registry;
    private readonly RelocationOptions _options;
    private readonly object _gate = new();
    private readonly Dictionary<int, LayerWork> _staged = [];
    private readonly HashSet<int> _busy = [];
    private readonly List<Pending> _pending = [];
    private readonly Dictionary<int, Lane[]> _lanes = [];
    private readonly Dictionary<int, DeviceStream> _commitStreams = [];
    private readonly Dictionary<int, SemaphoreSlim> _slots = [];
    private readonly Dictionary<(int Device, bool Within), BandwidthPacer> _pacers = [];
    private readonly object _transportGate = new();
    private readonly Dictionary<int, Lane> _transportLanes = [];
    private Task _collectiveChain = Task.CompletedTask;
    private int _nextLane;
    private bool _disposed;

    public RelocationEngine(DeviceRuntime runtime, ExpertRegistry registry, Placement inForce, RelocationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(inForce);
        _runtime = runtime;
        _registry = registry;
        _options = options ?? new RelocationOptions();
        if (inForce.Topology != registry.Topology || inForce.Layers != registry.Layers)
        {
            throw new InputException("placement in force", "same topology and layers as the expert registry",
                $"placement {inForce.Layers}x{inForce.Slots}, registry {registry.Layers}x{registry.Topology.Slots}");
        }

        if (_options.MaxInFlightPerDevice < 1 || _options.MaxLayersInFlight < 1 || _options.CopyStreamsPerDevice < 1)
        {
            throw new InputException("relocation options", "in-flight limits and copy streams >= 1", "a limit is below 1");
        }

        if (_options.WithinDeviceBytesPerSecond < 0 || _options.BetweenDevicesBytesPerSecond < 0)
        {
            throw new InputException("relocation options", "bandwidth caps >= 0 bytes per second (null or 0: unlimited)",
                $"within device {_options.WithinDeviceBytesPerSecond}, between devices {_options.BetweenDevicesBytesPerSecond}");
        }

        if (_options.Transport is { } transport)
        {
            CheckTransport(transport, registry.Topology.Devices);
        }

        InForce = inForce;
        EnablePeers();
    }

    /// <summary>The placement the server routes by (advances one layer at a time with <see cref="Acknowledge"/>).</summary>
    public Placement InForce { get; private set; }

    /// <summary>Number of layer commits acknowledged so far.</summary>
    public long Epoch { get; private set; }

    /// <summary>Layers staged and waiting for their commit.</summary>
    public IReadOnlyList<int> StagedLayers
    {
        get
        {
            lock (_gate)
            {
                return [.. _staged.Keys.Order()];
            }
        }
    }

    /// <summary>Plans the move from <see cref="InForce"/> to <paramref name="next"/>; checks that every slot involved is registered.</summary>
    public RelocationPlan Plan(Placement next)
    {
        ArgumentNullException.ThrowIfNull(next);
        Placement current;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            DrainPending();
            current = InForce;
        }

        var bytes = Enumerable.Range(0, current.Layers).Select(_registry.ExpertBytes).ToArray();
        var plan = RelocationPlanner.Plan(current, next, bytes, _options.Locations);
        foreach (var layer in plan.Layers)
        {
            foreach (var t in layer.Transfers)
            {
                RequireRegistered(t.Layer, t.SourceSlot, t.SourceDevice);
                RequireRegistered(t.Layer, t.Slot, t.TargetDevice);
            }
        }

        return plan;
    }

    /// <summary>
    /// Copies the plan's experts, up to <see cref="RelocationOptions.MaxLayersInFlight"/> layers at once in layer order.
    /// <paramref name="onLayer"/> (optional) hears each layer as soon as it is staged or failed, so a server can commit
    /// early layers while later ones still copy.
    /// </summary>
    public async Task<RelocationResult> ExecuteAsync(RelocationPlan plan, Action<LayerOutcome>? onLayer = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var turns = new Dictionary<int, CollectiveTurn>();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            DrainPending();
            foreach (var lp in plan.Layers)
            {
                if (!InForce.Layer(lp.Layer).SequenceEqual(lp.CurrentRow.ToArray()))
                {
                    throw new InvalidOperationException($"layer {lp.Layer}: the plan was made from another placement than the one in force; plan again");
                }

                if (_busy.Contains(lp.Layer))
                {
                    throw new InvalidOperationException($"layer {lp.Layer} is already being moved or waits for its commit");
                }
            }

            foreach (var lp in plan.Layers)
            {
                _busy.Add(lp.Layer);
            }

            // Collective sends and receives must be issued in the same order by every process: layer order, chained
            // across executions. Each layer that crosses processes takes a turn now, in plan order.
            foreach (var lp in plan.Layers)
            {
                if (CrossTransfers(lp).Count > 0)
                {
                    var turn = new CollectiveTurn(_collectiveChain);
                    _collectiveChain = turn.Issued;
                    turns[lp.Layer] = turn;
                }
            }
        }

        var clock = Stopwatch.StartNew();
        using var layerSlots = new SemaphoreSlim(_options.MaxLayersInFlight);
        var tasks = plan.Layers.Select(async lp =>
        {
            await layerSlots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                var outcome = await RunLayerAsync(lp, turns.GetValueOrDefault(lp.Layer), cancellationToken).ConfigureAwait(false);
                onLayer?.Invoke(outcome);
                return outcome;
            }
            finally
            {
                layerSlots.Release();
            }
        }).ToArray();
        var outcomes = await Task.WhenAll(tasks).ConfigureAwait(false);
        return new RelocationResult(outcomes, clock.Elapsed);
    }

    /// <summary>Starts the commit of a staged layer: the row to route by and the copies that land staged experts.</summary>
    public LayerCommit PrepareCommit(int layer)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_staged.TryGetValue(layer, out var work))
            {
                throw new InvalidOperationException($"layer {layer} is not staged (staged: {string.Join(", ", _staged.Keys.Order())})");
            }

            return new LayerCommit(this, work, Epoch + 1);
        }
    }

    /// <summary>
    /// The server routes <paramref name="commit"/>'s layer by its new row from now on (and, when the layer had staged
    /// experts, their copies were enqueued ahead of the first step that uses it). Advances <see cref="Epoch"/>; staging
    /// is released once those copies are done.
    /// </summary>
    public void Acknowledge(LayerCommit commit)
    {
        ArgumentNullException.ThrowIfNull(commit);
        lock (_gate)
        {
            if (!_staged.TryGetValue(commit.Layer, out var work) || !ReferenceEquals(work, commit.Work))
            {
                throw new InvalidOperationException($"layer {commit.Layer}: this commit is not the layer's pending one");
            }

            if (commit.RequiresCopies && !commit.CopiesEnqueued)
            {
                throw new InvalidOperationException($"layer {commit.Layer}: enqueue the staged copies on the inference streams before acknowledging");
            }

            InForce = InForce.WithLayer(commit.Layer, commit.Row.ToArray());
            Epoch++;
            _staged.Remove(commit.Layer);
            _busy.Remove(commit.Layer);
            _pending.Add(new Pending(commit.Events, [.. work.Staging.Values], []));
            DrainPending();
        }
    }

    /// <summary>
    /// Commits a staged layer on the engine's own high-priority streams and waits for it. Only for a server that does
    /// not run the layer meanwhile (paused at a step boundary); a running server enqueues on its own streams instead.
    /// </summary>
    public async Task CommitAsync(int layer, CancellationToken cancellationToken = default)
    {
        var commit = PrepareCommit(layer);
        commit.EnqueueCopies(DefaultCommitStream);
        foreach (var evt in commit.Events)
        {
            await evt.WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        }

        Acknowledge(commit);
    }

    /// <summary>Drops a staged layer: its mapping stays, its staging is released.</summary>
    public void Abort(int layer)
    {
        lock (_gate)
        {
            if (_staged.Remove(layer, out var work))
            {
                _busy.Remove(layer);
                foreach (var b in work.Staging.Values)
                {
                    b.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// Releases staging of acknowledged commits and of abandoned transfers whose copies have drained; returns how many
    /// such groups are still waiting. Also done by <see cref="Plan"/>, <see cref="ExecuteAsync"/> and <see cref="Acknowledge"/>.
    /// </summary>
    public int ReleaseFinished()
    {
        lock (_gate)
        {
            DrainPending();
            return _pending.Count;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var work in _staged.Values)
            {
                foreach (var b in work.Staging.Values)
                {
                    b.Dispose();
                }
            }

            _staged.Clear();
            DrainPending();
            // Work still pending here was abandoned (stalled device): its buffers go with the runtime.
            foreach (var lane in _lanes.Values.SelectMany(l => l).Concat(_transportLanes.Values))
            {
                if (!_pending.Any(p => p.Streams.Contains(lane.Stream)))
                {
                    lane.Stream.Dispose();
                }
            }

            foreach (var s in _commitStreams.Values)
            {
                s.Dispose();
            }

            foreach (var s in _slots.Values)
            {
                s.Dispose();
            }
        }
    }

    // ---------------------------------------------------------------- layer execution

    private async Task<LayerOutcome> RunLayerAsync(LayerPlan lp, CollectiveTurn? turn, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var work = new LayerWork(lp);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var t in lp.Transfers)
            {
                if (t.Landing == Landing.Staging && IsLocal(t.TargetDevice))
                {
                    work.Staging[t.Slot] = _runtime.Allocate(LocalOf(t.TargetDevice), t.Bytes);
                }
            }

            // Cross-process transfers first: their issue order is global (see CollectiveTurn).
            var tasks = new List<Task>();
            if (turn is not null)
            {
                tasks.Add(RunCollectiveAsync(work, CrossTransfers(lp), turn, cancellationToken));
            }

            var local = lp.Transfers.Where(t => t.Kind <= TransferKind.Peer && IsLocal(t.TargetDevice));
            tasks.AddRange(local.Select(t => RunTransferAsync(work, t, cancellationToken)));
            await WhenAllFirstError(tasks).ConfigureAwait(false);
            lock (work)
            {
                foreach (var (_, e) in work.Events)
                {
                    e.Dispose(); // complete: the staged data stays, the markers go
                }

                work.Events.Clear();
            }

            if (_options.Verify)
            {
                Verify(work);
            }

            lock (_gate)
            {
                _staged[lp.Layer] = work;
            }

            return new LayerOutcome(lp.Layer, LayerStatus.Staged, lp.Transfers.Count, lp.Bytes, clock.Elapsed);
        }
        catch (Exception ex) when (ex is DeviceException or TimeoutException or OperationCanceledException or RelocationVerificationException)
        {
            Release(work);
            var status = ex is OperationCanceledException ? LayerStatus.Cancelled : LayerStatus.Failed;
            var kind = ex switch
            {
                DeviceException d => d.Kind,
                TimeoutException => DeviceErrorKind.Timeout,
                RelocationVerificationException => DeviceErrorKind.DeviceFault,
                _ => (DeviceErrorKind?)null,
            };
            return new LayerOutcome(lp.Layer, status, lp.Transfers.Count, lp.Bytes, clock.Elapsed, kind, $"layer {lp.Layer}: {ex.Message}");
        }
        finally
        {
            if (turn is not null && !turn.IsIssued)
            {
                // This process skips the layer's sends and receives (staging failed, cancelled): its peers would pair
                // their next transfers with the wrong ones. Abort the transport; their transfers fail by timeout.
                _options.Transport?.Abort($"layer {lp.Layer}: this process did not issue its transfers");
                turn.Complete();
            }
        }
    }

    private async Task RunTransferAsync(LayerWork work, SlotTransfer t, CancellationToken cancellationToken)
    {
        var src = LocalOf(t.SourceDevice);
        var dst = LocalOf(t.TargetDevice);
        var first = Semaphore(Math.Min(src, dst));
        var second = src == dst ? null : Semaphore(Math.Max(src, dst));
        await first.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (second is not null)
            {
                await second.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            try
            {
                var lane = NextLane(dst);
                var events = await IssueTransfer(work, t, lane, cancellationToken).ConfigureAwait(false);
                await AwaitTransfer(work, lane, events[^1], t, cancellationToken).ConfigureAwait(false);
                foreach (var e in events)
                {
                    _ = e.IsComplete; // stream order: all done; throws if an earlier chunk failed
                }
            }
            finally
            {
                second?.Release();
            }
        }
        finally
        {
            first.Release();
        }
    }

    /// <summary>
    /// Enqueues a transfer's copies on <paramref name="lane"/>. Unpaced: all of them, then one event. Under a bandwidth
    /// cap: in chunks of at most the pacer's chunk size, each issued when the devices' budgets allow it and followed by
    /// its own event (other transfers' chunks may come between on the lane; an event reports only its chunk's failure).
    /// Returns the events in issue order.
    /// </summary>
    private async Task<List<DeviceEvent>> IssueTransfer(LayerWork work, SlotTransfer t, Lane lane, CancellationToken cancellationToken)
    {
        var sources = _registry.Get(t.Layer, t.SourceSlot)!;
        var targets = LandingOf(work, t);
        var pacers = Pacers(t);
        var chunk = pacers.Count == 0 ? long.MaxValue : pacers.Min(p => p.ChunkBytes);
        var events = new List<DeviceEvent>();
        try
        {
            foreach (var unit in Chunks(sources, targets, chunk))
            {
                if (pacers.Count > 0)
                {
                    await BandwidthPacer.WaitAsync(pacers, unit.Sum(c => c.Src.Length), cancellationToken).ConfigureAwait(false);
                }

                DeviceEvent evt;
                lock (lane)
                {
                    foreach (var (dstPart, srcPart) in unit)
                    {
                        lane.Stream.EnqueueCopy(dstPart, srcPart);
                    }

                    evt = lane.Stream.Record();
                }

                lock (work)
                {
                    work.Events.Add((lane, evt));
                }

                events.Add(evt);
            }
        }
        catch when (events.Count > 0)
        {
            // Chunks already enqueued may still write into the landing: keep it until their events complete.
            Abandon(work, lane);
            throw;
        }

        return events;
    }

    /// <summary>The copies of one expert (tensor by tensor) grouped into units of at most <paramref name="chunk"/>
    /// bytes: a large tensor is split, small ones share a unit.</summary>
    private static List<List<(DeviceMemory Dst, DeviceMemory Src)>> Chunks(IReadOnlyList<DeviceMemory> sources, IReadOnlyList<DeviceMemory> targets, long chunk)
    {
        var units = new List<List<(DeviceMemory, DeviceMemory)>>();
        var unit = new List<(DeviceMemory, DeviceMemory)>();
        long used = 0;
        for (var i = 0; i < sources.Count; i++)
        {
            for (long off = 0; off < sources[i].Length;)
            {
                if (used == chunk)
                {
                    units.Add(unit);
                    unit = [];
                    used = 0;
                }

                var n = Math.Min(sources[i].Length - off, chunk - used);
                unit.Add((targets[i].Slice(off, n), sources[i].Slice(off, n)));
                used += n;
                off += n;
            }
        }

        if (unit.Count > 0 || units.Count == 0)
        {
            units.Add(unit);
        }

        return units;
    }

    private async Task RunCollectiveAsync(LayerWork work, List<SlotTransfer> cross, CollectiveTurn turn, CancellationToken cancellationToken)
    {
        var layer = work.Plan.Layer;
        var transport = _options.Transport ?? throw new DeviceException(DeviceErrorKind.Unsupported, _runtime.Name, "relocation", 0, "NO_TRANSPORT",
            $"layer {layer} moves experts between processes or nodes but no collective transport (NCCL/HCCL) is configured");
        await turn.Previous.ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        await PaceCollective(cross, cancellationToken).ConfigureAwait(false);
        var marks = new List<(Lane Lane, DeviceEvent Event, List<SlotTransfer> Transfers)>();
        lock (_transportGate)
        {
            try
            {
                var used = new Dictionary<Lane, List<SlotTransfer>>();
                transport.GroupStart();
                try
                {
                    // Every process walks the layer's transfers in the plan's (slot) order, so the sends of a pair of
                    // ranks meet the receives in the same order; tensors go one by one (sizes match on both sides).
                    foreach (var t in cross)
                    {
                        var receive = IsLocal(t.TargetDevice);
                        var lane = TransportLane(LocalOf(receive ? t.TargetDevice : t.SourceDevice));
                        if (receive)
                        {
                            foreach (var target in LandingOf(work, t))
                            {
                                transport.Receive(lane.Stream, target, t.SourceDevice);
                            }
                        }
                        else
                        {
                            foreach (var source in _registry.Get(t.Layer, t.SourceSlot)!)
                            {
                                transport.Send(lane.Stream, source, t.TargetDevice);
                            }
                        }

                        if (!used.TryGetValue(lane, out var list))
                        {
                            used[lane] = list = [];
                        }

                        list.Add(t);
                    }
                }
                finally
                {
                    transport.GroupEnd();
                }

                foreach (var (lane, transfers) in used)
                {
                    marks.Add((lane, lane.Stream.Record(), transfers));
                }
            }
            catch (Exception ex) when (ex is DeviceException or ArgumentException or InvalidOperationException)
            {
                transport.Abort($"layer {layer}: issuing its transfers failed: {ex.Message}");
                throw;
            }
            finally
            {
                turn.Complete();
            }
        }

        foreach (var (lane, evt, transfers) in marks)
        {
            await AwaitCollective(work, lane, evt, transfers, transport, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for one lane's collective transfers while watching the transport's asynchronous errors. A failure,
    /// timeout or cancellation aborts the transport: the peers' matching transfers may be stuck, and a later layer
    /// must not pair with them.
    /// </summary>
    private async Task AwaitCollective(LayerWork work, Lane lane, DeviceEvent evt, List<SlotTransfer> transfers, CollectiveTransport transport, CancellationToken cancellationToken)
    {
        lock (work)
        {
            work.Events.Add((lane, evt));
        }

        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var done = evt.IsComplete;
                transport.ThrowIfFailed();
                if (done)
                {
                    return;
                }
            }
            catch (DeviceException ex)
            {
                transport.Abort($"layer {work.Plan.Layer}: {ex.Message}");
                Abandon(work, lane);
                throw;
            }

            if (cancellationToken.IsCancellationRequested || clock.Elapsed >= _options.TransferTimeout)
            {
                var why = cancellationToken.IsCancellationRequested ? "cancelled"
                    : $"slots {string.Join(", ", transfers.Select(t => t.Slot))} did not finish within {_options.TransferTimeout.TotalSeconds:0.###} s";
                transport.Abort($"layer {work.Plan.Layer}: {why}");
                Abandon(work, lane);
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException($"{transport.Name} transfers of {why}; the transport was aborted");
            }

            await DeviceEvent.Pause(clock, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task AwaitTransfer(LayerWork work, Lane lane, DeviceEvent evt, SlotTransfer t, CancellationToken cancellationToken)
    {
        bool done;
        try
        {
            done = await evt.WaitAsync(_options.TransferTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Abandon(work, lane);
            throw;
        }

        if (!done)
        {
            Abandon(work, lane);
            throw new TimeoutException($"slot {t.Slot} (expert {t.Expert} from slot {t.SourceSlot}) did not finish within {_options.TransferTimeout.TotalSeconds:0.###} s");
        }
    }

    private void Abandon(LayerWork work, Lane lane)
    {
        lock (work)
        {
            work.Abandoned.Add(lane);
        }

        lock (_gate)
        {
            // The stream may never drain: take it out of service; it is released with the work once it does.
            foreach (var lanes in _lanes.Values)
            {
                var i = Array.IndexOf(lanes, lane);
                if (i >= 0)
                {
                    lanes[i] = new Lane(_runtime.CreateStream(lane.Stream.Device, StreamPriority.Low));
                }
            }

            foreach (var (device, transportLane) in _transportLanes.ToList())
            {
                if (ReferenceEquals(transportLane, lane))
                {
                    _transportLanes[device] = new Lane(_runtime.CreateStream(device, StreamPriority.Low));
                }
            }
        }
    }

    private void Release(LayerWork work)
    {
        lock (_gate)
        {
            List<DeviceEvent> events;
            List<DeviceStream> streams;
            lock (work)
            {
                events = work.Abandoned.Count == 0 ? [] : [.. work.Events.Select(e => e.Event)];
                streams = [.. work.Abandoned.Select(l => l.Stream)];
            }

            if (events.Count == 0)
            {
                // Nothing in flight any more: release now.
                foreach (var b in work.Staging.Values)
                {
                    b.Dispose();
                }

                foreach (var (_, e) in work.Events)
                {
                    e.Dispose();
                }
            }
            else
            {
                // Copies may still write into the staging: keep it until their events complete.
                _pending.Add(new Pending(events, [.. work.Staging.Values], streams));
            }

            _busy.Remove(work.Plan.Layer);
        }
    }

    private void Verify(LayerWork work)
    {
        foreach (var t in work.Plan.Transfers)
        {
            if (!IsLocal(t.SourceDevice) || !IsLocal(t.TargetDevice))
            {
                continue; // the other process verifies what it holds
            }

            var expected = Checksum(_registry.Get(t.Layer, t.SourceSlot)!);
            var actual = Checksum(LandingOf(work, t));
            if (expected != actual)
            {
                throw new RelocationVerificationException($"slot {t.Slot}: checksum of expert {t.Expert} is {actual:x16}, its source slot {t.SourceSlot} has {expected:x16}");
            }
        }
    }

    private ulong Checksum(IReadOnlyList<DeviceMemory> tensors)
    {
        var hash = new XxHash3();
        foreach (var t in tensors)
        {
            const int Chunk = 8 << 20;
            var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(t.Length, Chunk));
            try
            {
                for (long off = 0; off < t.Length; off += Chunk)
                {
                    var n = (int)Math.Min(Chunk, t.Length - off);
                    _runtime.Download(t.Slice(off, n), buffer.AsSpan(0, n));
                    hash.Append(buffer.AsSpan(0, n));
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        return hash.GetCurrentHashAsUInt64();
    }

    // ---------------------------------------------------------------- helpers

    internal IReadOnlyList<DeviceMemory> LandingOf(LayerWork work, SlotTransfer t)
    {
        var slot = _registry.Get(t.Layer, t.Slot)!;
        if (t.Landing == Landing.Direct)
        {
            return slot;
        }

        var staging = work.Staging[t.Slot].Memory;
        var result = new DeviceMemory[slot.Count];
        long offset = 0;
        for (var i = 0; i < slot.Count; i++)
        {
            result[i] = staging.Slice(offset, slot[i].Length);
            offset += slot[i].Length;
        }

        return result;
    }

    internal IReadOnlyList<DeviceMemory> SlotTensors(int layer, int slot) => _registry.Get(layer, slot)!;

    internal bool IsLocal(int device) => _options.Locations is null || _options.Locations[device].Process == _options.Process;

    internal int LocalOf(int device) => _options.Locations is null ? device : _options.Locations[device].LocalDevice;

    /// <summary>The engine's high-priority commit stream of a local device (used by <see cref="CommitAsync"/>).</summary>
    internal DeviceStream DefaultCommitStream(int localDevice)
    {
        lock (_gate)
        {
            if (!_commitStreams.TryGetValue(localDevice, out var s))
            {
                s = _runtime.CreateStream(localDevice, StreamPriority.High);
                _commitStreams[localDevice] = s;
            }

            return s;
        }
    }

    /// <summary>The transfers of <paramref name="lp"/> between processes or nodes that this process takes part in.</summary>
    private List<SlotTransfer> CrossTransfers(LayerPlan lp) =>
        [.. lp.Transfers.Where(t => t.Kind >= TransferKind.CrossProcess && (IsLocal(t.SourceDevice) || IsLocal(t.TargetDevice)))];

    /// <summary>The one low-priority stream of a local device that carries its collective transfers (a communicator's
    /// operations stay in issue order on it).</summary>
    private Lane TransportLane(int localDevice)
    {
        lock (_gate)
        {
            if (!_transportLanes.TryGetValue(localDevice, out var lane))
            {
                lane = new Lane(_runtime.CreateStream(localDevice, StreamPriority.Low));
                _transportLanes[localDevice] = lane;
            }

            return lane;
        }
    }

    private void CheckTransport(CollectiveTransport transport, int devices)
    {
        if (!ReferenceEquals(transport.Runtime, _runtime))
        {
            throw new InputException("relocation transport", "the transport drives the engine's runtime", $"it drives {transport.Runtime.Name}");
        }

        if (transport.Ranks != devices)
        {
            throw new InputException("relocation transport", "one rank per device of the topology", $"{transport.Ranks} ranks for {devices} devices");
        }

        for (var g = 0; g < devices; g++)
        {
            if (IsLocal(g) && transport.RankOf(LocalOf(g)) != g)
            {
                throw new InputException("relocation transport", "local device d holds rank g where Locations[g] is this process's device d",
                    $"global device {g} is local device {LocalOf(g)}, which holds rank {transport.RankOf(LocalOf(g))}");
            }
        }
    }

    /// <summary>The pacers a local transfer is charged to: the device's within-device budget, or the between-devices
    /// budgets of its source and its target.</summary>
    private List<BandwidthPacer> Pacers(SlotTransfer t)
    {
        var src = LocalOf(t.SourceDevice);
        var dst = LocalOf(t.TargetDevice);
        var result = new List<BandwidthPacer>(2);
        if (t.Kind == TransferKind.Local)
        {
            AddPacer(result, dst, within: true);
        }
        else
        {
            AddPacer(result, src, within: false);
            AddPacer(result, dst, within: false);
        }

        return result;
    }

    /// <summary>
    /// Waits until the between-devices budget of every local device in a layer's collective group allows its bytes (a
    /// group is issued whole: its sends and receives must pair with the peers' in one order, so it is not split).
    /// </summary>
    private Task PaceCollective(List<SlotTransfer> cross, CancellationToken cancellationToken)
    {
        var reservations = new List<(BandwidthPacer, long)>();
        foreach (var group in cross.GroupBy(t => LocalOf(IsLocal(t.TargetDevice) ? t.TargetDevice : t.SourceDevice)))
        {
            var pacers = new List<BandwidthPacer>(1);
            AddPacer(pacers, group.Key, within: false);
            var bytes = group.Sum(t => t.Bytes);
            reservations.AddRange(pacers.Select(p => (p, bytes)));
        }

        return BandwidthPacer.WaitAsync(reservations, cancellationToken);
    }

    private void AddPacer(List<BandwidthPacer> pacers, int localDevice, bool within)
    {
        var cap = within ? _options.WithinDeviceBytesPerSecond : _options.BetweenDevicesBytesPerSecond;
        if (cap is not > 0)
        {
            return;
        }

        lock (_gate)
        {
            if (!_pacers.TryGetValue((localDevice, within), out var pacer))
            {
                pacer = new BandwidthPacer(cap.Value);
                _pacers[(localDevice, within)] = pacer;
            }

            pacers.Add(pacer);
        }
    }

    private Lane NextLane(int localDevice)
    {
        lock (_gate)
        {
            if (!_lanes.TryGetValue(localDevice, out var lanes))
            {
                lanes = new Lane[_options.CopyStreamsPerDevice];
                for (var i = 0; i < lanes.Length; i++)
                {
                    lanes[i] = new Lane(_runtime.CreateStream(localDevice, StreamPriority.Low));
                }

                _lanes[localDevice] = lanes;
            }

            return lanes[_nextLane++ % lanes.Length];
        }
    }

    private SemaphoreSlim Semaphore(int localDevice)
    {
        lock (_gate)
        {
            if (!_slots.TryGetValue(localDevice, out var s))
            {
                s = new SemaphoreSlim(_options.MaxInFlightPerDevice);
                _slots[localDevice] = s;
            }

            return s;
        }
    }

    private void RequireRegistered(int layer, int slot, int globalDevice)
    {
        if (!IsLocal(globalDevice))
        {
            return;
        }

        var tensors = _registry.Get(layer, slot)
            ?? throw new InputException($"layer {layer} slot {slot}", "every slot a relocation reads or writes is registered", "the slot has no registered tensors");
        var want = LocalOf(globalDevice);
        if (tensors[0].Device != want)
        {
            throw new InputException($"layer {layer} slot {slot}", "a slot's tensors live on the slot's device",
                $"registered on device {tensors[0].Device}, the topology puts the slot on local device {want}");
        }
    }

    private void EnablePeers()
    {
        var n = _runtime.Devices.Count;
        for (var a = 0; a < n; a++)
        {
            for (var b = 0; b < n; b++)
            {
                if (_runtime.CanAccessPeer(a, b))
                {
                    _runtime.EnablePeerAccess(a, b);
                }
            }
        }
    }

    /// <summary>Releases finished commits and abandoned work whose copies have drained. Caller holds _gate.</summary>
    private void DrainPending()
    {
        for (var i = _pending.Count - 1; i >= 0; i--)
        {
            var p = _pending[i];
            if (!p.Events.All(Done))
            {
                continue;
            }

            foreach (var b in p.Buffers)
            {
                b.Dispose();
            }

            foreach (var e in p.Events)
            {
                e.Dispose();
            }

            foreach (var s in p.Streams)
            {
                s.Dispose();
            }

            _pending.RemoveAt(i);
        }

        static bool Done(DeviceEvent e)
        {
            try
            {
                return e.IsComplete;
            }
            catch (DeviceException)
            {
                return true; // finished, with an error that was already reported
            }
        }
    }

    private static async Task WhenAllFirstError(List<Task> tasks)
    {
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch
        {
            // Task.WhenAll rethrows the first exception in task order; prefer a device failure over a cancellation.
            var errors = tasks.Where(t => t.IsFaulted).SelectMany(t => t.Exception!.InnerExceptions).ToList();
            var first = errors.FirstOrDefault(e => e is not OperationCanceledException) ?? errors.FirstOrDefault();
            if (first is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            }

            throw;
        }
    }

    /// <summary>
    /// A layer's place in the order of collective issues: it issues after <see cref="Previous"/> (the layer before it,
    /// in this or an earlier execution) and completes <see cref="Issued"/> once its group is issued or skipped.
    /// </summary>
    private sealed class CollectiveTurn(Task previous)
    {
        private readonly TaskCompletionSource _issued = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Previous { get; } = previous;

        public Task Issued => _issued.Task;

        public bool IsIssued => _issued.Task.IsCompleted;

        public void Complete() => _issued.TrySetResult();
    }

    /// <summary>A copy stream; its lock keeps a transfer's copies and its event adjacent.</summary>
    internal sealed class Lane(DeviceStream stream)
    {
        public DeviceStream Stream { get; } = stream;
    }

    internal sealed class LayerWork(LayerPlan plan)
    {
        public LayerPlan Plan { get; } = plan;

        public Dictionary<int, DeviceBuffer> Staging { get; } = [];

        public List<(Lane Lane, DeviceEvent Event)> Events { get; } = [];

        public List<Lane> Abandoned { get; } = [];
    }

    private sealed record Pending(IReadOnlyList<DeviceEvent> Events, IReadOnlyList<DeviceBuffer> Buffers, IReadOnlyList<DeviceStream> Streams);
}

/// <summary>A moved expert's checksum differs from its source's.</summary>
public sealed class RelocationVerificationException : Exception
{
    public RelocationVerificationException()
    {
    }

    public RelocationVerificationException(string message)
        : base(message)
    {
    }

    public RelocationVerificationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The commit of one staged layer at a step boundary. If <see cref="RequiresCopies"/>, call
/// <see cref="EnqueueCopies"/> with the server's inference stream of each device before the first step that routes
/// by <see cref="Row"/>; then <see cref="RelocationEngine.Acknowledge"/>.
/// </summary>
public sealed class LayerCommit
{
    private readonly RelocationEngine _engine;
    private readonly List<DeviceEvent> _events = [];

    internal LayerCommit(RelocationEngine engine, RelocationEngine.LayerWork work, long epoch)
    {
        _engine = engine;
        Work = work;
        Epoch = epoch;
    }

    public int Layer => Work.Plan.Layer;

    /// <summary>The epoch (commit count) this layer's new row takes effect at.</summary>
    public long Epoch { get; }

    /// <summary>phy2log of the layer to route by after the commit.</summary>
    public IReadOnlyList<int> Row => Work.Plan.Row;

    /// <summary>Whether staged experts must be copied into their slots (stream-ordered) before the new row is used.</summary>
    public bool RequiresCopies => Work.Staging.Count > 0;

    public bool CopiesEnqueued { get; private set; }

    internal RelocationEngine.LayerWork Work { get; }

    internal IReadOnlyList<DeviceEvent> Events => _events;

    /// <summary>
    /// Enqueues the copies from staging into the destination slots on <paramref name="streamForDevice"/>(local device):
    /// the stream the server runs the layer on (or one its compute streams wait for), so the copies land after the
    /// last step that used the old row and before the first that uses the new one.
    /// </summary>
    public void EnqueueCopies(Func<int, DeviceStream> streamForDevice)
    {
        ArgumentNullException.ThrowIfNull(streamForDevice);
        if (CopiesEnqueued)
        {
            throw new InvalidOperationException($"layer {Layer}: copies already enqueued");
        }

        var used = new List<DeviceStream>();
        foreach (var t in Work.Plan.Transfers)
        {
            if (t.Landing != Landing.Staging || !Work.Staging.ContainsKey(t.Slot))
            {
                continue;
            }

            var stream = streamForDevice(_engine.LocalOf(t.TargetDevice));
            var staged = _engine.LandingOf(Work, t);
            var slot = _engine.SlotTensors(t.Layer, t.Slot);
            for (var i = 0; i < slot.Count; i++)
            {
                stream.EnqueueCopy(slot[i], staged[i]);
            }

            if (!used.Contains(stream))
            {
                used.Add(stream);
            }
        }

        foreach (var s in used)
        {
            _events.Add(s.Record());
        }

        CopiesEnqueued = true;
    }
}
