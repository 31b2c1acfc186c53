using System.Collections.Concurrent;
using ExpertBridge.Devices.Backends;

namespace ExpertBridge.Devices;

/// <summary>
/// The devices of one backend in this process: enumeration, memory, streams, events, copies and IPC.
/// Open one with <see cref="Open"/>; dispose it last (it releases whatever its wrappers still hold).
/// Thread-safe.
/// </summary>
public sealed class DeviceRuntime : IDisposable
{
    private readonly ConcurrentQueue<(ResourceKind Kind, int Device, ulong Handle)> _deferred = new();
    private long _leaked;
    private int _disposed;

    private DeviceRuntime(IDeviceBackend backend, DeviceBackend kind, bool emulated)
    {
        Backend = backend;
        Kind = kind;
        IsEmulated = emulated;
        Faults = backend.Faults is { } f ? new FaultInjector(f) : null;
    }

    /// <summary>Opens a runtime; throws <see cref="DeviceException"/> (<see cref="DeviceErrorKind.NotAvailable"/>) with the reason when the backend cannot be used here.</summary>
    public static DeviceRuntime Open(DeviceRuntimeOptions? options = null)
    {
        options ??= new DeviceRuntimeOptions();
        IDeviceBackend backend = options.Backend switch
        {
            DeviceBackend.Host => new HostBackend(options),
            DeviceBackend.Cuda => CudaBackend.Open(options),
            DeviceBackend.Cann => CannBackend.Open(options),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Backend, "unknown backend"),
        };
        return new DeviceRuntime(backend, options.Backend, options.Emulated && options.Backend != DeviceBackend.Host);
    }

    /// <summary>Whether <paramref name="options"/> can be opened here; <paramref name="reason"/> says why not.</summary>
    public static bool IsAvailable(DeviceRuntimeOptions options, out string reason)
    {
        try
        {
            using var runtime = Open(options);
            reason = runtime.Devices.Count == 0 ? "no device" : "";
            return runtime.Devices.Count > 0;
        }
        catch (DeviceException ex)
        {
            reason = ex.Message;
            return false;
        }
    }

    /// <summary>Runtime name, for example <c>host</c>, <c>cuda</c> or <c>cann (emulated)</c>.</summary>
    public string Name => Backend.Name;

    public DeviceBackend Kind { get; }

    /// <summary>True when an ExpertBridge emulator stands in for the vendor library.</summary>
    public bool IsEmulated { get; }

    public IReadOnlyList<DeviceInfo> Devices => Backend.Devices;

    /// <summary>Fault injection (host backend and emulators), or null on real hardware.</summary>
    public FaultInjector? Faults { get; }

    /// <summary>Wrappers that were finalized without Dispose (released later on an ordinary thread).</summary>
    public long LeakedResources => Interlocked.Read(ref _leaked);

    internal IDeviceBackend Backend { get; }

    public DeviceMemoryInfo GetMemoryInfo(int device)
    {
        CheckDevice(device);
        DrainDeferred();
        return Backend.GetMemoryInfo(device);
    }

    /// <summary>Whether <paramref name="device"/> can access <paramref name="peer"/>'s memory directly.</summary>
    public bool CanAccessPeer(int device, int peer)
    {
        CheckDevice(device);
        CheckDevice(peer);
        return device != peer && Devices[device].Peers.Contains(peer);
    }

    /// <summary>Enables direct access from <paramref name="device"/> to <paramref name="peer"/> (idempotent).</summary>
    public void EnablePeerAccess(int device, int peer)
    {
        ThrowIfDisposed();
        CheckDevice(device);
        CheckDevice(peer);
        Backend.EnablePeerAccess(device, peer);
    }

    public DeviceBuffer Allocate(int device, long bytes)
    {
        ThrowIfDisposed();
        CheckDevice(device);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        DrainDeferred();
        return new DeviceBuffer(this, device, Backend.Allocate(device, bytes), bytes, imported: false);
    }

    /// <summary>Pinned host memory for asynchronous host copies.</summary>
    public HostBuffer AllocateHost(long bytes)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        DrainDeferred();
        return new HostBuffer(this, Backend.AllocateHost(bytes), bytes);
    }

    public DeviceStream CreateStream(int device, StreamPriority priority = StreamPriority.Normal)
    {
        ThrowIfDisposed();
        CheckDevice(device);
        DrainDeferred();
        return new DeviceStream(this, device, Backend.CreateStream(device, priority), priority);
    }

    public DeviceEvent CreateEvent(int device)
    {
        ThrowIfDisposed();
        CheckDevice(device);
        DrainDeferred();
        return new DeviceEvent(this, device, Backend.CreateEvent(device));
    }

    /// <summary>Copies synchronously (any direction; same length).</summary>
    public void Copy(DeviceMemory dst, DeviceMemory src)
    {
        ThrowIfDisposed();
        CheckCopy(dst, src);
        if (src.Length > 0)
        {
            Backend.CopySync(dst, src);
        }
    }

    /// <summary>Sets every byte of <paramref name="dst"/> synchronously.</summary>
    public void Fill(DeviceMemory dst, byte value)
    {
        ThrowIfDisposed();
        if (dst.IsHost)
        {
            throw new ArgumentException($"fill target {dst} must be device memory", nameof(dst));
        }

        if (dst.Length > 0)
        {
            Backend.FillSync(dst, value);
        }
    }

    /// <summary>Copies <paramref name="src"/> from managed memory into <paramref name="dst"/> synchronously.</summary>
    public unsafe void Upload(DeviceMemory dst, ReadOnlySpan<byte> src)
    {
        fixed (byte* p = src)
        {
            Copy(dst, DeviceMemory.Host((nint)p, src.Length));
        }
    }

    /// <summary>Copies <paramref name="src"/> into managed memory synchronously.</summary>
    public unsafe void Download(DeviceMemory src, Span<byte> dst)
    {
        fixed (byte* p = dst)
        {
            Copy(DeviceMemory.Host((nint)p, dst.Length), src);
        }
    }

    /// <summary>Exports <paramref name="buffer"/> so that another process can map it with <see cref="Import"/>.</summary>
    public IpcMemoryHandle Export(DeviceBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ThrowIfDisposed();
        if (buffer.IsImported)
        {
            throw new ArgumentException("an imported buffer cannot be exported again", nameof(buffer));
        }

        return new IpcMemoryHandle(Name, buffer.Device, buffer.Length, Backend.ExportIpc(buffer.Device, buffer.Memory.Address));
    }

    /// <summary>Maps memory exported by another process onto <paramref name="device"/>; dispose to unmap.</summary>
    public DeviceBuffer Import(IpcMemoryHandle handle, int device)
    {
        ArgumentNullException.ThrowIfNull(handle);
        ThrowIfDisposed();
        CheckDevice(device);
        DrainDeferred();
        return new DeviceBuffer(this, device, Backend.ImportIpc(device, handle.Bytes), handle.Length, imported: true);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            DrainDeferred(force: true);
            Backend.Dispose();
        }
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    internal void ReleaseNow(ResourceKind kind, int device, ulong handle)
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            Backend.Release(kind, device, handle);
        }
    }

    /// <summary>Called by finalizers: queue only, never a driver call on the finalizer thread.</summary>
    internal void DeferRelease(ResourceKind kind, int device, ulong handle)
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            Interlocked.Increment(ref _leaked);
            _deferred.Enqueue((kind, device, handle));
        }
    }

    internal static void CheckCopy(DeviceMemory dst, DeviceMemory src)
    {
        if (dst.Length != src.Length)
        {
            throw new ArgumentException($"copy from {src} to {dst}: lengths differ", nameof(dst));
        }

        if (dst.IsHost && src.IsHost)
        {
            throw new ArgumentException($"copy from {src} to {dst}: host-to-host copies are not device work", nameof(dst));
        }
    }

    private void CheckDevice(int device)
    {
        if (device < 0 || device >= Devices.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device, $"{Name} has {Devices.Count} device(s)");
        }
    }

    private void DrainDeferred(bool force = false)
    {
        if (!force && _deferred.IsEmpty)
        {
            return;
        }

        while (_deferred.TryDequeue(out var item))
        {
            try
            {
                Backend.Release(item.Kind, item.Device, item.Handle);
            }
            catch (DeviceException)
            {
                // A leaked handle whose release fails (its context is gone) is not worth failing the caller's call.
            }
        }
    }
}

/// <summary>An exported device allocation: send <see cref="ToText"/> to another process, which calls <see cref="Parse"/> and <see cref="DeviceRuntime.Import"/>.</summary>
public sealed class IpcMemoryHandle
{
    internal IpcMemoryHandle(string backend, int device, long length, byte[] bytes)
    {
        Backend = backend;
        Device = device;
        Length = length;
        Bytes = bytes;
    }

    public string Backend { get; }

    /// <summary>The exporter's device ordinal.</summary>
    public int Device { get; }

    public long Length { get; }

    internal byte[] Bytes { get; }

    public string ToText() => $"{Backend}|{Device}|{Length}|{Convert.ToBase64String(Bytes)}";

    public static IpcMemoryHandle Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('|');
        if (parts.Length != 4 || !int.TryParse(parts[1], out var device) || !long.TryParse(parts[2], out var length))
        {
            throw new FormatException("an IPC handle reads backend|device|length|base64");
        }

        return new IpcMemoryHandle(parts[0], device, length, Convert.FromBase64String(parts[3]));
    }
}
