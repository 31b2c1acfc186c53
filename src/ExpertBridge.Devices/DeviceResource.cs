using ExpertBridge.Devices.Backends;

namespace ExpertBridge.Devices;

/// <summary>
/// Base of every owning wrapper (buffers, streams, events). Dispose releases the native handle once, on the calling
/// thread. The finalizer never calls the driver: no device context is current on the finalizer thread and the driver
/// may already be shutting down. A wrapper that was not disposed is instead queued on its runtime and released on an
/// ordinary thread at the runtime's next call (or when the runtime is disposed); <see cref="DeviceRuntime.LeakedResources"/>
/// counts them. After the runtime is disposed, disposing a wrapper does nothing: the runtime already released everything.
/// </summary>
public abstract class DeviceResource : IDisposable
{
    private readonly ResourceKind _kind;
    private readonly ulong _handle;
    private int _released;

    private protected DeviceResource(DeviceRuntime runtime, ResourceKind kind, int device, ulong handle)
    {
        Runtime = runtime;
        _kind = kind;
        Device = device;
        _handle = handle;
    }

    ~DeviceResource()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            Runtime.DeferRelease(_kind, Device, _handle);
        }
    }

    /// <summary>The device this resource lives on (<see cref="DeviceMemory.HostDevice"/> for host memory).</summary>
    public int Device { get; }

    public bool IsDisposed => Volatile.Read(ref _released) != 0;

    internal DeviceRuntime Runtime { get; }

    internal ulong Handle => _handle;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            GC.SuppressFinalize(this);
            Runtime.ReleaseNow(_kind, Device, _handle);
        }
    }

    private protected void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        Runtime.ThrowIfDisposed();
    }
}

/// <summary>Device memory owned by this process (or mapped from another one through IPC).</summary>
public sealed class DeviceBuffer : DeviceResource
{
    internal DeviceBuffer(DeviceRuntime runtime, int device, ulong address, long length, bool imported)
        : base(runtime, imported ? ResourceKind.ImportedMemory : ResourceKind.DeviceMemory, device, address)
    {
        Memory = new DeviceMemory(device, address, length);
        IsImported = imported;
    }

    /// <summary>The whole buffer as a copyable range.</summary>
    public DeviceMemory Memory { get; }

    public long Length => Memory.Length;

    /// <summary>True when the memory belongs to another process and was mapped through IPC.</summary>
    public bool IsImported { get; }
}

/// <summary>Pinned (page-locked) host memory, the source or target of asynchronous host copies.</summary>
public sealed unsafe class HostBuffer : DeviceResource
{
    internal HostBuffer(DeviceRuntime runtime, nint address, long length)
        : base(runtime, ResourceKind.HostMemory, DeviceMemory.HostDevice, (ulong)address)
    {
        Memory = DeviceMemory.Host(address, length);
    }

    public DeviceMemory Memory { get; }

    public long Length => Memory.Length;

    /// <summary>The bytes, for the host to fill or read between copies (not while a copy uses them).</summary>
    public Span<byte> Span
    {
        get
        {
            ThrowIfDisposed();
            return new Span<byte>((void*)Memory.Address, checked((int)Memory.Length));
        }
    }
}
