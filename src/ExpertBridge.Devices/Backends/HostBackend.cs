using System.Diagnostics;
using System.Runtime.InteropServices;
using ExpertBridge.Core;

namespace ExpertBridge.Devices.Backends;

/// <summary>
/// The reference backend: devices are CPU memory with a limit each, streams are in-order queues run by one thread
/// each, events carry timestamps. Same observable rules as the emulated drivers: copies must stay inside one
/// allocation, a failure of queued work is reported by the next event recorded after it on the same stream (and
/// by a stream synchronize), freeing memory waits for the device's queued work, fault injection by
/// <see cref="FaultInjector"/>. Memory is process-private, so IPC is not supported.
/// </summary>
internal sealed unsafe class HostBackend : IDeviceBackend, IFaultControl
{
    private const int Alignment = 256;
    private readonly HostDevice[] _devices;
    private readonly List<HostStream> _streams = [];
    private readonly HashSet<nint> _pinned = [];
    private readonly object _faultLock = new();
    private long _failCopyNth, _failCopyCount = 1, _oomAllocNth, _copyDelayUs, _stallCopyNth, _copiesSeen, _allocsSeen, _stallEpoch;
    private int _disposed;

    public HostBackend(DeviceRuntimeOptions options)
    {
        if (options.HostDevices < 1)
        {
            throw new InputException("host devices", "at least one device", $"got {options.HostDevices}");
        }

        if (options.HostDeviceMemory < Alignment)
        {
            throw new InputException("host device memory", $"at least {Alignment} bytes", $"got {options.HostDeviceMemory}");
        }

        _devices = new HostDevice[options.HostDevices];
        var infos = new DeviceInfo[options.HostDevices];
        for (var d = 0; d < _devices.Length; d++)
        {
            _devices[d] = new HostDevice(options.HostDeviceMemory);
            var peers = Enumerable.Range(0, options.HostDevices).Where(p => p != d).ToArray();
            infos[d] = new DeviceInfo(d, $"host memory device {d}", options.HostDeviceMemory, options.Node, $"host:{d}", peers);
        }

        Devices = infos;
    }

    public string Name => "host";

    public IReadOnlyList<DeviceInfo> Devices { get; }

    public IFaultControl? Faults => this;

    public DeviceMemoryInfo GetMemoryInfo(int device)
    {
        var d = _devices[device];
        lock (d)
        {
            return new DeviceMemoryInfo(d.Total - d.Used, d.Total);
        }
    }

    public void MakeCurrent(int device)
    {
        // Host devices have no per-thread state.
    }

    public void EnablePeerAccess(int device, int peer)
    {
        if (device == peer)
        {
            throw Error(DeviceErrorKind.PeerAccess, "EnablePeerAccess", "HOST_PEER_SELF", $"device {device} cannot be its own peer");
        }
    }

    public ulong Allocate(int device, long bytes)
    {
        var d = _devices[device];
        var size = (bytes + Alignment - 1) / Alignment * Alignment;
        lock (_faultLock)
        {
            if (++_allocsSeen == _oomAllocNth)
            {
                throw OutOfMemory(device, bytes, "injected");
            }
        }

        lock (d)
        {
            if (size > d.Total - d.Used)
            {
                throw OutOfMemory(device, bytes, $"{d.Used} of {d.Total} bytes in use");
            }

            var p = (ulong)NativeMemory.AlignedAlloc((nuint)size, Alignment);
            d.Used += size;
            d.Allocations.Add(p, size);
            return p;
        }
    }

    public nint AllocateHost(long bytes)
    {
        var p = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 4096);
        lock (_pinned)
        {
            _pinned.Add(p);
        }

        return p;
    }

    public nint CreateStream(int device, StreamPriority priority)
    {
        var s = new HostStream(this, device);
        lock (_streams)
        {
            _streams.Add(s);
        }

        return GCHandle.ToIntPtr(GCHandle.Alloc(s));
    }

    public nint CreateEvent(int device) => GCHandle.ToIntPtr(GCHandle.Alloc(new HostEvent(device)));

    public void Release(ResourceKind kind, int device, ulong handle)
    {
        switch (kind)
        {
            case ResourceKind.DeviceMemory:
                Free(device, handle);
                break;
            case ResourceKind.HostMemory:
                lock (_pinned)
                {
                    _pinned.Remove((nint)handle);
                }

                NativeMemory.AlignedFree((void*)handle);
                break;
            case ResourceKind.Stream:
                {
                    var gc = GCHandle.FromIntPtr((nint)handle);
                    var s = (HostStream)gc.Target!;
                    lock (_streams)
                    {
                        _streams.Remove(s);
                    }

                    s.Close();
                    gc.Free();
                    break;
                }

            case ResourceKind.Event:
                GCHandle.FromIntPtr((nint)handle).Free();
                break;
            case ResourceKind.ImportedMemory:
            default:
                throw Error(DeviceErrorKind.Unsupported, "Release", "HOST_NOT_SUPPORTED", $"{kind} does not exist on the host backend");
        }
    }

    public void CopySync(DeviceMemory dst, DeviceMemory src)
    {
        CheckRange(dst, "Copy");
        CheckRange(src, "Copy");
        var error = RunCopy(dst, src, NextCopyFate());
        if (error is not null)
        {
            throw error;
        }
    }

    public void FillSync(DeviceMemory dst, byte value)
    {
        CheckRange(dst, "Fill");
        new Span<byte>((void*)dst.Address, checked((int)dst.Length)).Fill(value);
    }

    public void EnqueueCopy(nint stream, int streamDevice, DeviceMemory dst, DeviceMemory src)
    {
        CheckRange(dst, "EnqueueCopy");
        CheckRange(src, "EnqueueCopy");
        var fate = NextCopyFate();
        StreamOf(stream).Enqueue(() => RunCopy(dst, src, fate));
    }

    public void EnqueueFill(nint stream, int streamDevice, DeviceMemory dst, byte value)
    {
        CheckRange(dst, "EnqueueFill");
        StreamOf(stream).Enqueue(() =>
        {
            new Span<byte>((void*)dst.Address, checked((int)dst.Length)).Fill(value);
            return null;
        });
    }

    public void Record(nint evt, nint stream, int streamDevice)
    {
        var e = EventOf(evt);
        var s = StreamOf(stream);
        var gen = e.BeginRecord();
        s.EnqueueMarker(error => e.Complete(gen, error));
    }

    public void Wait(nint stream, int streamDevice, nint evt)
    {
        var e = EventOf(evt);
        var gen = e.PendingGeneration;
        if (gen > 0)
        {
            StreamOf(stream).Enqueue(() =>
            {
                e.WaitFor(gen);
                return null;
            });
        }
    }

    public bool Query(nint evt, int device) => EventOf(evt).Query(Name);

    public void Synchronize(nint evt, int device) => EventOf(evt).Synchronize(Name);

    public void SynchronizeStream(nint stream, int device)
    {
        var error = StreamOf(stream).Synchronize();
        if (error is not null)
        {
            throw error;
        }
    }

    public float ElapsedMilliseconds(nint start, nint end, int device)
    {
        var a = EventOf(start);
        var b = EventOf(end);
        if (!a.TryTimestamp(out var ta) || !b.TryTimestamp(out var tb))
        {
            throw Error(DeviceErrorKind.InvalidHandle, "ElapsedMilliseconds", "HOST_EVENT_NOT_COMPLETE", "both events must be recorded and complete");
        }

        return (float)Stopwatch.GetElapsedTime(ta, tb).TotalMilliseconds;
    }

    public byte[] ExportIpc(int device, ulong address) =>
        throw Error(DeviceErrorKind.Unsupported, "ExportIpc", "HOST_NOT_SUPPORTED", "host backend memory is private to its process");

    public ulong ImportIpc(int device, ReadOnlySpan<byte> handle) =>
        throw Error(DeviceErrorKind.Unsupported, "ImportIpc", "HOST_NOT_SUPPORTED", "host backend memory is private to its process");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Reset(); // release stalled copies so that the stream threads can finish
        HostStream[] streams;
        lock (_streams)
        {
            streams = [.. _streams];
            _streams.Clear();
        }

        foreach (var s in streams)
        {
            s.Close();
            s.Join();
        }

        foreach (var d in _devices)
        {
            lock (d)
            {
                foreach (var p in d.Allocations.Keys)
                {
                    NativeMemory.AlignedFree((void*)p);
                }

                d.Allocations.Clear();
                d.Used = 0;
            }
        }
    }

    // ---------------------------------------------------------------- faults

    public void Set(string knob, long value)
    {
        lock (_faultLock)
        {
            switch (knob)
            {
                case "FAIL_COPY_NTH":
                    _failCopyNth = value;
                    _copiesSeen = 0;
                    break;
                case "FAIL_COPY_COUNT":
                    _failCopyCount = value;
                    break;
                case "OOM_ALLOC_NTH":
                    _oomAllocNth = value;
                    _allocsSeen = 0;
                    break;
                case "COPY_DELAY_US":
                    _copyDelayUs = value;
                    break;
                case "STALL_COPY_NTH":
                    _stallCopyNth = value;
                    _copiesSeen = 0;
                    _stallEpoch++;
                    Monitor.PulseAll(_faultLock);
                    break;
                default:
                    throw new ArgumentException($"unknown fault knob {knob}", nameof(knob));
            }
        }
    }

    public void Reset()
    {
        lock (_faultLock)
        {
            _failCopyNth = _oomAllocNth = _copyDelayUs = _stallCopyNth = _copiesSeen = _allocsSeen = 0;
            _failCopyCount = 1;
            _stallEpoch++;
            Monitor.PulseAll(_faultLock);
        }
    }

    public long? Stat(string name)
    {
        switch (name)
        {
            case "allocations":
                long n = 0;
                foreach (var d in _devices)
                {
                    lock (d)
                    {
                        n += d.Allocations.Count;
                    }
                }

                return n;
            case "device_bytes":
                return _devices.Sum(d => GetMemoryInfo(Array.IndexOf(_devices, d)).Used);
            default:
                return null;
        }
    }

    private CopyFate NextCopyFate()
    {
        lock (_faultLock)
        {
            var c = ++_copiesSeen;
            var fail = _failCopyNth > 0 && c >= _failCopyNth && (_failCopyCount < 0 || c < _failCopyNth + _failCopyCount);
            return new CopyFate(fail, _stallCopyNth > 0 && c == _stallCopyNth, _stallEpoch, _copyDelayUs);
        }
    }

    private DeviceException? RunCopy(DeviceMemory dst, DeviceMemory src, CopyFate fate)
    {
        if (fate.DelayUs > 0)
        {
            Thread.Sleep(TimeSpan.FromMicroseconds(fate.DelayUs));
        }

        if (fate.Stall)
        {
            lock (_faultLock)
            {
                while (_stallEpoch == fate.StallEpoch)
                {
                    Monitor.Wait(_faultLock);
                }
            }
        }

        var n = fate.Fail ? src.Length / 2 : src.Length;
        Buffer.MemoryCopy((void*)src.Address, (void*)dst.Address, dst.Length, n);
        return fate.Fail
            ? Error(DeviceErrorKind.DeviceFault, "copy", "HOST_INJECTED_FAULT", $"injected failure of the copy {src} -> {dst} (half written)")
            : null;
    }

    // ---------------------------------------------------------------- memory bookkeeping

    private void Free(int device, ulong address)
    {
        // Like cuMemFree: work queued on the device that may still use the memory completes first.
        SynchronizeDevice(device);
        var d = _devices[device];
        lock (d)
        {
            if (!d.Allocations.Remove(address, out var size))
            {
                throw Error(DeviceErrorKind.InvalidArgument, "Free", "HOST_INVALID_VALUE", $"0x{address:x} is not an allocation of device {device}");
            }

            d.Used -= size;
            NativeMemory.AlignedFree((void*)address);
        }
    }

    private void SynchronizeDevice(int device)
    {
        HostStream[] streams;
        lock (_streams)
        {
            streams = [.. _streams.Where(s => s.Device == device)];
        }

        foreach (var s in streams)
        {
            s.Drain();
        }
    }

    private void CheckRange(DeviceMemory m, string operation)
    {
        if (m.IsHost)
        {
            if (m.Address == 0)
            {
                throw Error(DeviceErrorKind.InvalidArgument, operation, "HOST_INVALID_VALUE", "null host pointer");
            }

            return;
        }

        if (m.Device < 0 || m.Device >= _devices.Length)
        {
            throw Error(DeviceErrorKind.InvalidArgument, operation, "HOST_INVALID_DEVICE", $"device {m.Device} does not exist");
        }

        var d = _devices[m.Device];
        lock (d)
        {
            var keys = d.Allocations.Keys;
            var lo = 0;
            var hi = keys.Count - 1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (keys[mid] <= m.Address)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            if (hi >= 0 && m.Address + (ulong)m.Length <= keys[hi] + (ulong)d.Allocations.Values[hi])
            {
                return;
            }
        }

        throw Error(DeviceErrorKind.InvalidArgument, operation, "HOST_INVALID_VALUE", $"{m} is not inside one allocation of device {m.Device}");
    }

    private static HostStream StreamOf(nint handle) => (HostStream)GCHandle.FromIntPtr(handle).Target!;

    private static HostEvent EventOf(nint handle) => (HostEvent)GCHandle.FromIntPtr(handle).Target!;

    private static DeviceException OutOfMemory(int device, long bytes, string why) =>
        Error(DeviceErrorKind.OutOfMemory, "Allocate", "HOST_OUT_OF_MEMORY", $"cannot allocate {bytes} bytes on device {device} ({why})");

    private static DeviceException Error(DeviceErrorKind kind, string operation, string name, string text) =>
        new(kind, "host", operation, (int)kind + 1, name, text);

    private readonly record struct CopyFate(bool Fail, bool Stall, long StallEpoch, long DelayUs);

    private sealed class HostDevice(long total)
    {
        public long Total { get; } = total;

        public long Used { get; set; }

        public SortedList<ulong, long> Allocations { get; } = [];
    }

    /// <summary>An in-order work queue with its own thread.</summary>
    private sealed class HostStream
    {
        private readonly Queue<Func<DeviceException?>> _queue = new();
        private readonly Thread _thread;
        private DeviceException? _sinceMark;
        private DeviceException? _unreported;
        private int _pending;
        private bool _closing;

        public HostStream(HostBackend owner, int device)
        {
            Device = device;
            _thread = new Thread(Run) { IsBackground = true, Name = $"host stream (device {device})" };
            _thread.Start();
            _ = owner;
        }

        public int Device { get; }

        public void Enqueue(Func<DeviceException?> op)
        {
            lock (_queue)
            {
                ObjectDisposedException.ThrowIf(_closing, this);
                _queue.Enqueue(op);
                _pending++;
                Monitor.PulseAll(_queue);
            }
        }

        /// <summary>A marker receives the failure (if any) of the work since the previous marker.</summary>
        public void EnqueueMarker(Action<DeviceException?> complete) => Enqueue(() =>
        {
            DeviceException? error;
            lock (_queue)
            {
                error = _sinceMark;
                _sinceMark = null;
            }

            complete(error);
            return null;
        });

        public DeviceException? Synchronize()
        {
            lock (_queue)
            {
                while (_pending > 0)
                {
                    Monitor.Wait(_queue);
                }

                var error = _unreported;
                _unreported = null;
                return error;
            }
        }

        public void Drain()
        {
            lock (_queue)
            {
                while (_pending > 0)
                {
                    Monitor.Wait(_queue);
                }
            }
        }

        public void Close()
        {
            lock (_queue)
            {
                _closing = true;
                Monitor.PulseAll(_queue);
            }
        }

        public void Join() => _thread.Join();

        private void Run()
        {
            while (true)
            {
                Func<DeviceException?> op;
                lock (_queue)
                {
                    while (_queue.Count == 0 && !_closing)
                    {
                        Monitor.Wait(_queue);
                    }

                    if (_queue.Count == 0)
                    {
                        return;
                    }

                    op = _queue.Dequeue();
                }

                var error = op();
                lock (_queue)
                {
                    if (error is not null)
                    {
                        _sinceMark ??= error;
                        _unreported ??= error;
                    }

                    _pending--;
                    Monitor.PulseAll(_queue);
                }
            }
        }
    }

    /// <summary>Record generations: a record bumps <see cref="PendingGeneration"/>; its marker completes it.</summary>
    private sealed class HostEvent(int device)
    {
        private long _recorded;
        private long _done;
        private long _timestamp;
        private DeviceException? _error;

        public int Device { get; } = device;

        public long PendingGeneration
        {
            get
            {
                lock (this)
                {
                    return _recorded > _done ? _recorded : 0;
                }
            }
        }

        public long BeginRecord()
        {
            lock (this)
            {
                return ++_recorded;
            }
        }

        public void Complete(long gen, DeviceException? error)
        {
            lock (this)
            {
                if (gen > _done)
                {
                    _done = gen;
                    _timestamp = Stopwatch.GetTimestamp();
                    _error = error;
                }

                Monitor.PulseAll(this);
            }
        }

        public void WaitFor(long gen)
        {
            lock (this)
            {
                while (_done < gen)
                {
                    Monitor.Wait(this);
                }
            }
        }

        public bool Query(string backend)
        {
            lock (this)
            {
                if (_done < _recorded)
                {
                    return false;
                }

                return _error is null ? true : throw Wrap(_error, backend);
            }
        }

        public void Synchronize(string backend)
        {
            lock (this)
            {
                while (_done < _recorded)
                {
                    Monitor.Wait(this);
                }

                if (_error is not null)
                {
                    throw Wrap(_error, backend);
                }
            }
        }

        public bool TryTimestamp(out long timestamp)
        {
            lock (this)
            {
                timestamp = _timestamp;
                return _recorded > 0 && _done >= _recorded;
            }
        }

        private static DeviceException Wrap(DeviceException e, string backend) =>
            new(e.Kind, backend, "event", e.Code, e.ErrorName, e.ErrorText, e);
    }
}
