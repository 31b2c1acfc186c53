using System.Diagnostics;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Scripting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ExpertBridge.Host;

/// <summary>What the composition root plugs into a bridge; every member is optional.</summary>
public sealed class BridgeServices
{
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Replaces the config's policy (embedders with their own policy, tests); see <see cref="PolicySources.ForPolicy"/>.</summary>
    public Func<HostConfig, IPolicySource>? PolicySourceFactory { get; init; }

    /// <summary>Replaces the relocator the config's backend selects (host, none, cuda, cann); null keeps the built-in one.</summary>
    public Func<HostConfig, IExpertRelocator?>? RelocatorFactory { get; init; }
}

/// <summary>How a requested rebalance ended.</summary>
public enum RebalanceOutcome
{
    /// <summary>A new placement was decided and its layers staged; they commit at the next step boundaries.</summary>
    Staged,

    /// <summary>The policy kept the placement in force (or the move budget let nothing through).</summary>
    Kept,

    /// <summary>The policy failed, timed out, returned an invalid placement, or staging failed; the mapping is unchanged.</summary>
    Failed,

    /// <summary>The wait ended before the rebalance did (it goes on in the background).</summary>
    Pending,
}

/// <summary>Counters and the last balance figures of one bridge.</summary>
public readonly record struct BridgeStats(
    long Steps,
    long Epoch,
    long Rebalances,
    long LayersCommitted,
    long ExpertsMoved,
    long BytesMoved,
    long PolicyReloads,
    long PolicyFailures,
    long RelocationFailures,
    long StepsDropped,
    int PendingLayers,
    double Balancedness,
    double Imbalance,
    double LastPolicyMilliseconds);

/// <summary>
/// The bridge: ingests per-step loads from the serving thread, decides when to rebalance, calls the (hot-reloaded)
/// policy on its own worker thread, stages the weight copies there while serving goes on, and commits layer by layer
/// when the server calls <see cref="StepBoundary"/>. Every public member is thread-safe; the serving path (record,
/// boundary, mapping reads) takes one short lock and allocates nothing.
/// </summary>
public sealed partial class Bridge : IDisposable
{
    /// <summary>The rule a step recorded with an unknown mapping epoch breaks.</summary>
    public const string RuleEpoch = "the epoch is the mapping in force or the one before it";

    private static readonly TimeSpan s_idlePoll = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan s_drainSlice = TimeSpan.FromMilliseconds(20);

    // The policy source enforces the time limit; this backstop only covers a source that never answers.
    private static readonly TimeSpan s_policyBackstop = TimeSpan.FromSeconds(5);

    private readonly HostConfig _config;
    private readonly ILogger _log;
    private readonly IPolicySource _policy;
    private readonly IExpertRelocator _relocator;
    private readonly object _gate = new();
    private readonly int _stride;
    private readonly int _rawCapacity;
    private readonly int[] _raw;
    private readonly Placement[] _rawMapping;
    private readonly LoadHistory _history;
    private readonly double[] _window;
    private readonly float[] _scratch;
    private readonly int _slots;
    private readonly int _wakeEvery;
    private readonly Queue<Ready> _ready = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _worker;
    private readonly List<TaskCompletionSource<RebalanceOutcome>> _waiters = [];

    // Guarded by _gate.
    private Placement _placement;
    private Placement _previous;
    private long _epoch;
    private long _recorded; // steps written into _raw; published with release semantics after each write
    private int _pendingLayers;
    private bool _forceRequested;
    private bool _disposed;
    private bool _optionsChecked; // worker thread only: policyOptions checked for keys the policy does not read
    private long _rebalances;
    private long _layersCommitted;
    private long _expertsMoved;
    private long _bytesMoved;
    private long _policyFailures;
    private long _relocationFailures;
    private double _balancedness = 1;
    private double _imbalance = 1;
    private double _lastPolicyMs;

    // Worker-only: the raw steps folded into the history so far, and the logical-load history with its window sum.
    private long _consumed;
    private long _dropped;
    private long _lastDropLog = long.MinValue / 2;
    private long _lastCheckedStep = -1;
    private long _lastRebalanceStep = long.MinValue / 2;
    private volatile bool _stop;
    private volatile int _readyCount;

    private Bridge(HostConfig config, BridgeServices services)
    {
        _config = config;
        var loggerFactory = services.LoggerFactory ?? NullLoggerFactory.Instance;
        _log = loggerFactory.CreateLogger("ExpertBridge.Host");
        Metrics = new BridgeMetrics(config.Layers);
        _slots = config.Topology.Slots;
        _placement = TrivialPolicy.Build(config.Topology, config.Layers, config.Experts);
        _previous = _placement;
        var cadence = config.Rebalance.CadenceSteps;
        _wakeEvery = cadence > 0 ? Math.Min(cadence, config.Rebalance.CheckEverySteps) : config.Rebalance.CheckEverySteps;
        _stride = config.Layers * _slots;
        _rawCapacity = (int)Math.Clamp(4L * _wakeEvery, 256, Math.Max(256, (64L << 20) / (4L * _stride)));
        _raw = new int[(long)_rawCapacity * _stride];
        _rawMapping = new Placement[_rawCapacity];
        _history = new LoadHistory(config.Layers, config.Experts, config.Rebalance.WindowSteps);
        _window = new double[config.Layers * config.Experts];
        _scratch = new float[config.Layers * config.Experts];

        _policy = services.PolicySourceFactory?.Invoke(config) ?? PolicySources.Open(config, loggerFactory);
        try
        {
            _relocator = CreateRelocator(config, services);
            if (config.Metrics.Port > 0)
            {
                Metrics.Serve(config.Metrics.Host, config.Metrics.Port);
            }
        }
        catch
        {
            _policy.Dispose();
            Metrics.Dispose();
            throw;
        }

        _worker = new Thread(WorkerLoop) { IsBackground = true, Name = "expertbridge-worker" };
        _worker.Start();
        LogStarted(_log, config.Layers, config.Experts, config.Topology, config.Backend, _policy.Description);
    }

    /// <summary>Starts a bridge for <paramref name="config"/>; the mapping starts trivial (slot i holds expert i mod E).</summary>
    public static Bridge Create(HostConfig config, BridgeServices? services = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new Bridge(config, services ?? new BridgeServices());
    }

    public HostConfig Config => _config;

    public int Layers => _config.Layers;

    public int Experts => _config.Experts;

    /// <summary>Physical slots per layer.</summary>
    public int Slots => _slots;

    /// <summary>Width of each expert's row in <see cref="CopyMapping"/>'s log2phy: slots - experts + 1.</summary>
    public int MaxReplicas => _slots - _config.Experts + 1;

    public BridgeMetrics Metrics { get; }

    /// <summary>The placement in force.</summary>
    public Placement Placement
    {
        get
        {
            lock (_gate)
            {
                return _placement;
            }
        }
    }

    /// <summary>Records where one expert tensor lives (the host backend copies through these addresses).</summary>
    public void RegisterTensor(TensorRegistration tensor)
    {
        var where = $"layer {tensor.Layer} slot {tensor.Slot} tensor {tensor.TensorIndex}";
        if ((uint)tensor.Layer >= (uint)Layers)
        {
            throw new InputException(where, $"layer in [0, {Layers})", $"got layer {tensor.Layer}");
        }

        if ((uint)tensor.Slot >= (uint)_slots)
        {
            throw new InputException(where, $"slot in [0, {_slots})", $"got slot {tensor.Slot}");
        }

        var device = _config.Topology.DeviceOf(tensor.Slot);
        if (tensor.Device != device)
        {
            throw new InputException(where, "the device is the slot's device (slot / slotsPerDevice)", $"slot {tensor.Slot} is on device {device}, got device {tensor.Device}");
        }

        if (tensor.Bytes <= 0)
        {
            throw new InputException(where, "bytes > 0", $"got {tensor.Bytes}");
        }

        ThrowIfDisposed();
        _relocator.Register(tensor);
    }

    /// <summary>
    /// Records one step: <paramref name="slotTokens"/> is [layers, slots] row-major, tokens each physical slot served.
    /// <paramref name="epoch"/> is the mapping epoch the server routed with (-1: the one in force); the counts are mapped
    /// to logical experts through that epoch's mapping (the one in force or the one before it). The serving thread
    /// only copies the counts into a ring; the worker folds them into the load history.
    /// </summary>
    public void RecordStep(ReadOnlySpan<int> slotTokens, long epoch = -1)
    {
        if (slotTokens.Length != _stride)
        {
            throw new InputException("step loads", "one count per (layer, physical slot)", $"expected {Layers} x {_slots} = {_stride} counts, got {slotTokens.Length}");
        }

        var negative = slotTokens.IndexOfAnyInRange(int.MinValue, -1);
        if (negative >= 0)
        {
            throw new InputException($"step loads: layer {negative / _slots} slot {negative % _slots}", "token counts >= 0", $"got {slotTokens[negative]}");
        }

        bool wake;
        lock (_gate)
        {
            ThrowIfDisposed();
            Placement mapping;
            if (epoch < 0 || epoch == _epoch)
            {
                mapping = _placement;
            }
            else if (epoch == _epoch - 1)
            {
                mapping = _previous;
            }
            else
            {
                throw new InputException("step loads", RuleEpoch, $"epoch {epoch}, the mapping in force is epoch {_epoch}");
            }

            var n = _recorded;
            var index = (int)(n % _rawCapacity);
            slotTokens.CopyTo(_raw.AsSpan(index * _stride, _stride));
            _rawMapping[index] = mapping;
            Volatile.Write(ref _recorded, n + 1);
            wake = (n + 1) % _wakeEvery == 0;
        }

        if (wake)
        {
            _wake.Release();
        }
    }

    /// <summary>
    /// Call between steps, on the serving thread. Commits staged layers (at most moveBudget.maxLayersPerBoundary, and at
    /// most <paramref name="changedLayers"/>.Length when it is not empty): their weights are written into the slots and
    /// their new mapping takes force. Writes the committed layers into <paramref name="changedLayers"/> and returns how
    /// many; the epoch advances when any was. With nothing staged it returns 0 at once.
    /// </summary>
    public int StepBoundary(Span<int> changedLayers, out long epoch)
    {
        if (_readyCount == 0)
        {
            ThrowIfDisposed();
            epoch = Volatile.Read(ref _epoch);
            return 0;
        }

        lock (_gate)
        {
            ThrowIfDisposed();
            var limit = _config.MoveBudget.MaxLayersPerBoundary == 0 ? int.MaxValue : _config.MoveBudget.MaxLayersPerBoundary;
            if (!changedLayers.IsEmpty)
            {
                limit = Math.Min(limit, changedLayers.Length);
            }

            var committed = 0;
            long experts = 0, bytes = 0;
            int[]? phy2log = null;
            try
            {
                while (committed < limit && _ready.Count > 0)
                {
                    var r = _ready.Peek();
                    _relocator.Commit(r.Staged);
                    _ready.Dequeue();
                    phy2log ??= _placement.CopyPhy2Log();
                    r.Row.CopyTo(phy2log, r.Staged.Layer * _slots);
                    if (!changedLayers.IsEmpty)
                    {
                        changedLayers[committed] = r.Staged.Layer;
                    }

                    committed++;
                    experts += r.Staged.ExpertsMoved;
                    bytes += r.Staged.BytesMoved;
                }
            }
            catch (Exception ex)
            {
                // A commit that failed half-way leaves that layer's slots undefined: drop everything staged, keep the
                // layers committed so far, and report the failure to the caller.
                _relocationFailures++;
                Metrics.Failure("commit_error");
                DiscardReadyLocked();
                LogCommitFailed(_log, ex);
                PublishLocked(phy2log, committed, experts, bytes);
                throw;
            }

            PublishLocked(phy2log, committed, experts, bytes);
            epoch = _epoch;
            return committed;
        }
    }

    /// <summary>
    /// Copies the mapping in force for the server's router. <paramref name="layer"/> -1 means every layer. Each span
    /// may be empty (skipped) or must hold the layers asked for: phy2log [slots] per layer, log2phy [experts, MaxReplicas]
    /// per layer padded with -1, replica counts [experts] per layer. Returns the mapping's epoch.
    /// </summary>
    public long CopyMapping(int layer, Span<int> phy2log, Span<int> log2phy, Span<int> replicaCounts)
    {
        if (layer < -1 || layer >= Layers)
        {
            throw new InputException("mapping", $"layer -1 (all) or in [0, {Layers})", $"got layer {layer}");
        }

        var first = layer < 0 ? 0 : layer;
        var count = layer < 0 ? Layers : 1;
        var experts = _config.Experts;
        var width = MaxReplicas;
        RequireLength("phy2log", phy2log, count * _slots);
        RequireLength("log2phy", log2phy, count * experts * width);
        RequireLength("replica counts", replicaCounts, count * experts);

        Placement p;
        long epoch;
        lock (_gate)
        {
            ThrowIfDisposed();
            p = _placement;
            epoch = _epoch;
        }

        if (!phy2log.IsEmpty)
        {
            p.Phy2Log.Slice(first * _slots, count * _slots).CopyTo(phy2log);
        }

        if (log2phy.IsEmpty && replicaCounts.IsEmpty)
        {
            return epoch;
        }

        Span<int> fill = experts <= 1024 ? stackalloc int[experts] : new int[experts];
        for (var i = 0; i < count; i++)
        {
            fill.Clear();
            var row = p.Layer(first + i);
            var l2p = log2phy.IsEmpty ? default : log2phy.Slice(i * experts * width, experts * width);
            l2p.Fill(-1);
            for (var s = 0; s < row.Length; s++)
            {
                var e = row[s];
                if (e >= 0)
                {
                    if (!l2p.IsEmpty)
                    {
                        l2p[(e * width) + fill[e]] = s;
                    }

                    fill[e]++;
                }
            }

            if (!replicaCounts.IsEmpty)
            {
                fill.CopyTo(replicaCounts.Slice(i * experts, experts));
            }
        }

        return epoch;
    }

    /// <summary>
    /// Asks for a rebalance now, whatever the cadence and trigger say. With <paramref name="wait"/> &gt; 0, blocks
    /// until the decision is made and staged (or kept, or failed), at most that long.
    /// </summary>
    public RebalanceOutcome RequestRebalance(TimeSpan wait)
    {
        var tcs = new TaskCompletionSource<RebalanceOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            ThrowIfDisposed();
            _forceRequested = true;
            _waiters.Add(tcs);
        }

        _wake.Release();
        if (wait <= TimeSpan.Zero)
        {
            return RebalanceOutcome.Pending;
        }

        return tcs.Task.Wait(wait) ? tcs.Task.Result : RebalanceOutcome.Pending;
    }

    /// <summary>Reloads the policy now; throws <see cref="InputException"/> when the new version fails (the old one keeps running).</summary>
    public void ReloadPolicy()
    {
        ThrowIfDisposed();
        _policy.Reload();
        Metrics.Reloads(_policy.Reloads);
        LogReloaded(_log, _policy.Description, _policy.Reloads);
    }

    public BridgeStats Stats
    {
        get
        {
            lock (_gate)
            {
                ThrowIfDisposed();
                return new BridgeStats(_recorded, _epoch, _rebalances, _layersCommitted, _expertsMoved, _bytesMoved, _policy.Reloads, _policyFailures, _relocationFailures, Interlocked.Read(ref _dropped), _pendingLayers, _balancedness, _imbalance, _lastPolicyMs);
            }
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
            _stop = true;
        }

        _wake.Release();
        if (!_worker.Join(TimeSpan.FromSeconds(10)))
        {
            LogWorkerStuck(_log);
        }

        lock (_gate)
        {
            DiscardReadyLocked();
            foreach (var w in _waiters)
            {
                w.TrySetResult(RebalanceOutcome.Failed);
            }

            _waiters.Clear();
        }

        _relocator.Dispose();
        _policy.Dispose();
        Metrics.Dispose();
        _wake.Dispose();
    }

    private static IExpertRelocator CreateRelocator(HostConfig config, BridgeServices services)
    {
        if (services.RelocatorFactory?.Invoke(config) is { } custom)
        {
            return custom;
        }

        return config.Backend switch
        {
            BackendKind.Host => new HostMemoryRelocator(config.Topology, config.Layers),
            BackendKind.None => new MappingOnlyRelocator(config.Topology.ExpertBytes),
            _ => DeviceRelocator.Open(config),
        };
    }

    private static void RequireLength(string what, Span<int> span, int needed)
    {
        if (!span.IsEmpty && span.Length < needed)
        {
            throw new InputException($"mapping: {what}", "the buffer holds every value asked for", $"needs {needed} values, got room for {span.Length}");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);

    private void PublishLocked(int[]? phy2log, int committed, long experts, long bytes)
    {
        if (committed > 0 && phy2log is not null)
        {
            _previous = _placement;
            _placement = new Placement(_config.Topology, _config.Experts, phy2log);
            _epoch++;
            _pendingLayers = Math.Max(0, _pendingLayers - committed);
            _layersCommitted += committed;
            _expertsMoved += experts;
            _bytesMoved += bytes;
            Metrics.Committed(_epoch, committed, experts, bytes);
            LogCommitted(_log, committed, _epoch, experts, bytes);
        }

        _readyCount = _ready.Count;
    }

    private void DiscardReadyLocked()
    {
        while (_ready.Count > 0)
        {
            _relocator.Discard(_ready.Dequeue().Staged);
        }

        _pendingLayers = 0;
        _readyCount = 0;
    }

    private void WorkerLoop()
    {
        while (!_stop)
        {
            _wake.Wait(s_idlePoll);
            if (_stop)
            {
                break;
            }

            try
            {
                Cycle();
            }
#pragma warning disable CA1031 // The worker must survive anything a policy or a relocator throws.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogWorkerError(_log, ex);
                CompleteWaiters(RebalanceOutcome.Failed);
            }
        }
    }

    private void Cycle()
    {
        Drain();
        var rb = _config.Rebalance;
        bool force;
        Placement current;
        lock (_gate)
        {
            if (_pendingLayers > 0)
            {
                return; // one rebalance at a time: the next starts when every layer of this one is committed
            }

            force = _forceRequested;
            current = _placement;
        }

        var steps = _consumed;
        if (!force && steps - _lastCheckedStep < _wakeEvery)
        {
            return;
        }

        _lastCheckedStep = steps;
        Metrics.StepsTotal(steps);
        Metrics.Reloads(_policy.Reloads);
        var load = new LoadMatrix(Layers, Experts, (double[])_window.Clone(), "load window");
        var report = PlacementMetrics.Evaluate(current, load);
        Metrics.Balance(report);
        lock (_gate)
        {
            _balancedness = report.BalancednessMean;
            _imbalance = report.ImbalanceMean;
        }

        var since = steps - _lastRebalanceStep;
        var due = force
            || (steps >= rb.WarmupSteps && rb.CadenceSteps > 0 && since >= rb.CadenceSteps)
            || (steps >= rb.WarmupSteps && rb.ImbalanceTrigger > 0 && report.ImbalanceMean > rb.ImbalanceTrigger && since >= rb.MinStepsBetween);
        if (!due)
        {
            return;
        }

        lock (_gate)
        {
            _forceRequested = false;
        }

        _lastRebalanceStep = steps;
        var outcome = Rebalance(current, load, report, steps);
        CompleteWaiters(outcome);
    }

    /// <summary>
    /// Folds the steps the serving thread recorded since the last call into the logical-load history and the window
    /// sum, each through the mapping it was routed with. A step overwritten before it was read (the worker fell more
    /// than the ring behind) is dropped and counted.
    /// </summary>
    private void Drain()
    {
        var published = Volatile.Read(ref _recorded);
        long dropped = 0;
        while (_consumed < published)
        {
            if (published - _consumed > _rawCapacity)
            {
                // Fell a whole ring behind: skip to half a ring behind, so the reads do not race the writer.
                var resume = published - (_rawCapacity / 2);
                dropped += resume - _consumed;
                _consumed = resume;
            }

            var c = _consumed;
            var index = (int)(c % _rawCapacity);
            var mapping = Volatile.Read(ref _rawMapping[index]);
            Fold(_raw.AsSpan(index * _stride, _stride), mapping.Phy2Log);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref _recorded) >= c + _rawCapacity)
            {
                dropped++; // the writer reached this entry while it was read
                _consumed = c + 1;
                published = Volatile.Read(ref _recorded);
                continue;
            }

            if (_history.Count == _history.Capacity)
            {
                var oldest = _history.GetStep(0);
                for (var i = 0; i < _window.Length; i++)
                {
                    _window[i] -= oldest[i];
                }
            }

            _history.Record(_scratch);
            for (var i = 0; i < _window.Length; i++)
            {
                _window[i] += _scratch[i];
            }

            _consumed = c + 1;
        }

        if (dropped > 0)
        {
            Dropped(dropped);
        }
    }

    private void Fold(ReadOnlySpan<int> raw, ReadOnlySpan<int> phy2log)
    {
        Array.Clear(_scratch);
        var emptyButServed = false;
        var experts = Experts;
        for (var l = 0; l < Layers; l++)
        {
            var row = l * _slots;
            var outRow = l * experts;
            for (var s = 0; s < _slots; s++)
            {
                var e = phy2log[row + s];
                if (e >= 0)
                {
                    _scratch[outRow + e] += raw[row + s];
                }
                else if (raw[row + s] > 0)
                {
                    emptyButServed = true;
                }
            }
        }

        if (emptyButServed)
        {
            Metrics.Failure("tokens_in_empty_slot"); // the server routed to a slot its mapping leaves empty
        }
    }

    private void Dropped(long steps)
    {
        Interlocked.Add(ref _dropped, steps);
        Metrics.StepsDropped(steps);
        var now = Environment.TickCount64;
        if (now - _lastDropLog >= 1000)
        {
            _lastDropLog = now;
            LogDropped(_log, _dropped);
        }
    }

    private void CompleteWaiters(RebalanceOutcome outcome)
    {
        TaskCompletionSource<RebalanceOutcome>[] waiters;
        lock (_gate)
        {
            waiters = [.. _waiters];
            _waiters.Clear();
        }

        foreach (var w in waiters)
        {
            w.TrySetResult(outcome);
        }
    }

    private RebalanceOutcome Rebalance(Placement current, LoadMatrix load, PlacementReport before, long steps)
    {
        var snapshot = new LoadHistory(Layers, Experts, Math.Max(1, _history.Count));
        for (var i = 0; i < _history.Count; i++)
        {
            snapshot.Record(_history.GetStep(i));
        }

        var layerBytes = new long[Layers];
        for (var l = 0; l < Layers; l++)
        {
            layerBytes[l] = _relocator.ExpertBytes(l) is > 0 and var b ? b : _config.Topology.ExpertBytes;
        }

        var context = new PolicyContext(_config.Topology, snapshot, current, _config.PolicyOptions, _config.ExpertGroups, layerBytes, steps);
        var outcome = CallPolicy(context);
        if (outcome is null)
        {
            return RebalanceOutcome.Failed;
        }

        if (!_optionsChecked && outcome.Kind != PolicyOutcomeKind.Failed)
        {
            // After the first decision the policy has read every knob it knows: a policyOptions key left unread is one
            // it does not have (a misspelt knob runs silently with the default otherwise).
            _optionsChecked = true;
            foreach (var key in _config.PolicyOptions.Unread)
            {
                LogUnreadOption(_log, _config.PolicyOptions.Source, key, outcome.PolicyName);
            }
        }

        if (outcome.Kind == PolicyOutcomeKind.Failed)
        {
            Fail(ref _policyFailures, FailureLabel(outcome.Failure), new InvalidOperationException(outcome.ToString()));
            return RebalanceOutcome.Failed;
        }

        if (outcome.Kind == PolicyOutcomeKind.Kept || outcome.Placement.Equals(current))
        {
            LogKept(_log, outcome.Reason);
            return RebalanceOutcome.Kept;
        }

        var target = outcome.Placement;
        try
        {
            PlacementValidator.EnsureShape(target, _config.Topology, Layers, Experts, "policy result");
            PlacementValidator.EnsureValid(target, $"policy result ({outcome.PolicyName})", outcome.AllowsColocatedReplicas);
        }
        catch (InputException ex)
        {
            Fail(ref _policyFailures, "invalid_placement", ex);
            return RebalanceOutcome.Failed;
        }

        var layers = ChooseLayers(current, target, load, before, layerBytes);
        if (layers.Count == 0)
        {
            LogKept(_log, "no layer changes within the move budget");
            return RebalanceOutcome.Kept;
        }

        lock (_gate)
        {
            _pendingLayers = layers.Count;
            _rebalances++;
        }

        Metrics.Rebalanced();
        LogRebalancing(_log, layers.Count, outcome.Reason, before.ImbalanceMean);
        for (var i = 0; i < layers.Count; i++)
        {
            var l = layers[i];
            Drain();
            StagedLayer staged;
            try
            {
                staged = _relocator.Stage(l, current.Layer(l), target.Layer(l));
            }
#pragma warning disable CA1031 // Staging failures are reported and counted; the mapping in force stays.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                lock (_gate)
                {
                    _pendingLayers -= layers.Count - i; // this layer and the ones after it are dropped
                    _readyCount = _ready.Count;
                }

                Fail(ref _relocationFailures, "relocation_error", ex);
                return i == 0 ? RebalanceOutcome.Failed : RebalanceOutcome.Staged;
            }

            lock (_gate)
            {
                if (_disposed)
                {
                    _relocator.Discard(staged);
                    return RebalanceOutcome.Failed;
                }

                _ready.Enqueue(new Ready(staged, target.Layer(l).ToArray()));
                _readyCount = _ready.Count;
            }
        }

        return RebalanceOutcome.Staged;
    }

    /// <summary>Asks the policy source, folding recorded steps while it works so the raw ring does not overflow.</summary>
    private PolicyOutcome? CallPolicy(PolicyContext context)
    {
        var clock = Stopwatch.StartNew();
        Task<PolicyOutcome> call;
        try
        {
            call = _policy.DecideAsync(context);
            var limit = _config.PolicyTimeout + s_policyBackstop;
            while (!call.IsCompleted && clock.Elapsed < limit)
            {
                call.Wait(s_drainSlice);
                Drain();
            }
        }
        catch (Exception ex) when (ex is AggregateException or InvalidOperationException or ObjectDisposedException)
        {
            Fail(ref _policyFailures, "policy_error", ex.InnerException ?? ex);
            return null;
        }

        clock.Stop();
        Metrics.PolicyTime(clock.Elapsed);
        lock (_gate)
        {
            _lastPolicyMs = clock.Elapsed.TotalMilliseconds;
        }

        if (!call.IsCompleted)
        {
            Fail(ref _policyFailures, "policy_timeout", new TimeoutException($"the policy source gave no answer within {(_config.PolicyTimeout + s_policyBackstop).TotalSeconds} s"));
            return null;
        }

        return call.Result;
    }

    private static string FailureLabel(PolicyFailureReason? reason) => reason switch
    {
        PolicyFailureReason.Timeout => "policy_timeout",
        PolicyFailureReason.InvalidPlacement => "invalid_placement",
        PolicyFailureReason.Busy => "policy_busy",
        PolicyFailureReason.Cancelled => "policy_cancelled",
        _ => "policy_error",
    };

    /// <summary>Layers that change, best gain first, as many as the move budget allows.</summary>
    private List<int> ChooseLayers(Placement current, Placement target, LoadMatrix load, PlacementReport before, long[] layerBytes)
    {
        var after = PlacementMetrics.Evaluate(target, load);
        var candidates = new List<(int Layer, int Changes, long Bytes, double Gain)>();
        for (var l = 0; l < Layers; l++)
        {
            var a = current.Layer(l);
            var b = target.Layer(l);
            int changes = 0, receiving = 0;
            for (var s = 0; s < a.Length; s++)
            {
                if (a[s] != b[s])
                {
                    changes++;
                    if (b[s] >= 0)
                    {
                        receiving++;
                    }
                }
            }

            if (changes > 0)
            {
                candidates.Add((l, changes, receiving * layerBytes[l], before.Layers[l].MaxDeviceLoad - after.Layers[l].MaxDeviceLoad));
            }
        }

        candidates.Sort((x, y) => y.Gain != x.Gain ? y.Gain.CompareTo(x.Gain) : x.Layer.CompareTo(y.Layer));
        var budget = _config.MoveBudget;
        long experts = 0, bytes = 0;
        var chosen = new List<int>();
        foreach (var c in candidates)
        {
            if ((budget.MaxExpertsPerRebalance > 0 && experts + c.Changes > budget.MaxExpertsPerRebalance)
                || (budget.MaxBytesPerRebalance > 0 && bytes + c.Bytes > budget.MaxBytesPerRebalance))
            {
                continue;
            }

            experts += c.Changes;
            bytes += c.Bytes;
            chosen.Add(c.Layer);
        }

        if (chosen.Count < candidates.Count)
        {
            LogBudget(_log, candidates.Count - chosen.Count, candidates.Count);
        }

        return chosen;
    }

    private void Fail(ref long counter, string reason, Exception ex)
    {
        lock (_gate)
        {
            counter++;
        }

        Metrics.Failure(reason);
        LogFailure(_log, reason, ex.Message);
    }

    private readonly record struct Ready(StagedLayer Staged, int[] Row);

    [LoggerMessage(Level = LogLevel.Information, Message = "bridge started: {Layers} layers x {Experts} experts on {Topology}, backend {Backend}, policy {Policy}")]
    private static partial void LogStarted(ILogger log, int layers, int experts, Topology topology, BackendKind backend, string policy);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Source}: '{Key}' was not read by policy '{Policy}', so it has no effect (rule: keys the policy reads; check the spelling in the script's header)")]
    private static partial void LogUnreadOption(ILogger log, string source, string key, string policy);

    [LoggerMessage(Level = LogLevel.Information, Message = "policy reloaded: {Policy} (reload {Count})")]
    private static partial void LogReloaded(ILogger log, string policy, long count);

    [LoggerMessage(Level = LogLevel.Information, Message = "rebalancing {Layers} layer(s): {Reason}; imbalance before {Imbalance:F3}")]
    private static partial void LogRebalancing(ILogger log, int layers, string reason, double imbalance);

    [LoggerMessage(Level = LogLevel.Debug, Message = "placement kept: {Reason}")]
    private static partial void LogKept(ILogger log, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "committed {Layers} layer(s) at epoch {Epoch}: {Experts} expert(s), {Bytes} bytes moved")]
    private static partial void LogCommitted(ILogger log, int layers, long epoch, long experts, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "move budget: {Skipped} of {Total} changed layer(s) left for a later rebalance")]
    private static partial void LogBudget(ILogger log, int skipped, int total);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Reason}: {Message}; the mapping in force is kept")]
    private static partial void LogFailure(ILogger log, string reason, string message);

    [LoggerMessage(Level = LogLevel.Critical, Message = "commit failed; staged layers were dropped")]
    private static partial void LogCommitFailed(ILogger log, Exception ex);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Total} recorded step(s) dropped so far: steps arrive faster than the worker folds them (a CPU-starved worker, or steps of a few microseconds)")]
    private static partial void LogDropped(ILogger log, long total);

    [LoggerMessage(Level = LogLevel.Error, Message = "bridge worker error")]
    private static partial void LogWorkerError(ILogger log, Exception ex);

    [LoggerMessage(Level = LogLevel.Warning, Message = "bridge worker did not stop within 10 s (a policy call may still be running)")]
    private static partial void LogWorkerStuck(ILogger log);
}
