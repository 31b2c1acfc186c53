using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Host;

/// <summary>
/// Backends <c>cuda</c> and <c>cann</c>: expert tensors live in device memory that the server allocated in this process
/// (its runtime shares the devices' primary contexts with this one, so its pointers are valid here), and move with the
/// device layer's <see cref="RelocationEngine"/>: peer or local copies on dedicated low-priority streams into staging
/// buffers while the server serves (optionally checksum-verified), then, inside the step boundary, staging to slots on
/// the engine's high-priority streams. A layer whose copy fails is aborted: its staging is released and the mapping in
/// force keeps serving. Thread-safe: planning, commits and registrations serialise on one lock; copies run outside it.
/// </summary>
internal sealed class DeviceRelocator : IExpertRelocator
{
    private readonly DeviceRuntime _runtime;
    private readonly ExpertRegistry _registry;
    private readonly RelocationEngine _engine;
    private readonly TensorTable _tensors;
    private readonly TimeSpan _commitTimeout;
    private readonly HashSet<int> _staging = [];
    private readonly object _gate = new();
    private bool _disposed;

    private DeviceRelocator(DeviceRuntime runtime, HostConfig config)
    {
        _runtime = runtime;
        _registry = new ExpertRegistry(config.Topology, config.Layers);
        _tensors = new TensorTable(config.Topology, config.Layers);
        _commitTimeout = config.Device.TransferTimeout;
        var options = new RelocationOptions
        {
            CopyStreamsPerDevice = config.Device.CopyStreamsPerDevice,
            MaxInFlightPerDevice = config.Device.MaxInFlightPerDevice,
            MaxLayersInFlight = 1,
            TransferTimeout = config.Device.TransferTimeout,
            Verify = config.Device.Verify,
            WithinDeviceBytesPerSecond = config.Device.WithinDeviceBytesPerSecond,
            BetweenDevicesBytesPerSecond = config.Device.BetweenDevicesBytesPerSecond,
        };
        _engine = new RelocationEngine(runtime, _registry, TrivialPolicy.Build(config.Topology, config.Layers, config.Experts), options);
    }

    /// <summary>The runtime's name, for logs (<c>cuda</c>, <c>cuda (emulated)</c>...).</summary>
    public string RuntimeName => _runtime.Name;

    /// <summary>
    /// Opens the device runtime of <paramref name="config"/>'s backend and the relocation engine over it. Throws
    /// <see cref="InputException"/> naming the config key when the backend is not available here or has fewer devices
    /// than the topology.
    /// </summary>
    public static DeviceRelocator Open(HostConfig config)
    {
        var backend = config.Backend == BackendKind.Cann ? DeviceBackend.Cann : DeviceBackend.Cuda;
        DeviceRuntime runtime;
        try
        {
            runtime = DeviceRuntime.Open(new DeviceRuntimeOptions { Backend = backend, Emulated = config.Device.Emulated });
        }
        catch (DeviceException ex)
        {
            throw new InputException($"{config.Source}: backend", "a device backend available in this process", ex.Message);
        }

        try
        {
            if (runtime.Devices.Count < config.Topology.Devices)
            {
                throw new InputException($"{config.Source}: topology.devices", $"at most the devices {runtime.Name} has here", $"{config.Topology.Devices} devices, {runtime.Name} has {runtime.Devices.Count}");
            }

            return new DeviceRelocator(runtime, config);
        }
        catch
        {
            runtime.Dispose();
            throw;
        }
    }

    public void Register(TensorRegistration tensor)
    {
        if (tensor.Device >= _runtime.Devices.Count)
        {
            throw new InputException($"layer {tensor.Layer} slot {tensor.Slot} tensor {tensor.TensorIndex}", $"a device of {_runtime.Name} (0..{_runtime.Devices.Count - 1})", $"got device {tensor.Device}");
        }

        lock (_gate)
        {
            while (_staging.Contains(tensor.Layer) && !_disposed)
            {
                Monitor.Wait(_gate);
            }

            ObjectDisposedException.ThrowIf(_disposed, this);
            _tensors.Add(tensor);
        }
    }

    public long ExpertBytes(int layer)
    {
        lock (_gate)
        {
            return _tensors.ExpertBytes(layer);
        }
    }

    public StagedLayer Stage(int layer, ReadOnlySpan<int> current, ReadOnlySpan<int> target)
    {
        // Planned and started under the lock, so no commit of another layer changes the engine's placement between
        // the plan and the start; the copies themselves run outside it.
        RelocationPlan plan;
        Task<RelocationResult> run;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            SyncRegistry(layer);
            var inForce = _engine.InForce;
            if (!inForce.Layer(layer).SequenceEqual(current))
            {
                throw new InvalidOperationException($"layer {layer}: the bridge's mapping differs from the relocation engine's; the layer is not moved");
            }

            plan = _engine.Plan(inForce.WithLayer(layer, target.ToArray()));
            if (plan.Layers.Count == 0)
            {
                return new DeviceStagedLayer(layer, 0, 0, inEngine: false);
            }

            _staging.Add(layer);
            try
            {
                run = _engine.ExecuteAsync(plan);
            }
            catch
            {
                _staging.Remove(layer);
                Monitor.PulseAll(_gate);
                throw;
            }
        }

        LayerOutcome outcome;
        try
        {
            outcome = run.GetAwaiter().GetResult().Layers[0];
        }
        finally
        {
            lock (_gate)
            {
                _staging.Remove(layer);
                Monitor.PulseAll(_gate);
            }
        }

        if (outcome.Status != LayerStatus.Staged)
        {
            throw new DeviceException(outcome.ErrorKind ?? DeviceErrorKind.Other, _runtime.Name, $"relocation of layer {layer}", 0, outcome.Status.ToString(), outcome.Error ?? "no detail");
        }

        return new DeviceStagedLayer(layer, outcome.Transfers, outcome.Bytes, inEngine: true);
    }

    public void Commit(StagedLayer staged)
    {
        var device = (DeviceStagedLayer)staged;
        if (!device.InEngine)
        {
            return;
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var timeout = new CancellationTokenSource(_commitTimeout);
            _engine.CommitAsync(device.Layer, timeout.Token).GetAwaiter().GetResult();
        }
    }

    public void Discard(StagedLayer staged)
    {
        var device = (DeviceStagedLayer)staged;
        if (!device.InEngine)
        {
            return;
        }

        lock (_gate)
        {
            if (!_disposed)
            {
                _engine.Abort(device.Layer);
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
            Monitor.PulseAll(_gate);
        }

        _engine.Dispose();
        _runtime.Dispose();
    }

    /// <summary>Hands the layer's registrations to the engine's registry once they changed and are complete.</summary>
    private void SyncRegistry(int layer)
    {
        var sizes = _tensors.RequireComplete(layer);
        if (!_tensors.TakeChanged(layer))
        {
            return;
        }

        var topology = _registry.Topology;
        var tensors = new DeviceMemory[sizes.Length];
        for (var s = 0; s < topology.Slots; s++)
        {
            var addresses = _tensors.Addresses(layer, s, sizes.Length);
            for (var t = 0; t < sizes.Length; t++)
            {
                tensors[t] = new DeviceMemory(topology.DeviceOf(s), (ulong)addresses[t], sizes[t]);
            }

            _registry.Register(layer, s, tensors);
        }
    }

    private sealed class DeviceStagedLayer(int layer, int moved, long bytes, bool inEngine) : StagedLayer(layer, moved, bytes)
    {
        /// <summary>Whether the engine holds the layer staged (false: nothing to copy).</summary>
        public bool InEngine { get; } = inEngine;
    }
}
