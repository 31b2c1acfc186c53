namespace ExpertBridge.Devices.Backends;

/// <summary>Native resources a backend hands out; released through <see cref="IDeviceBackend.Release"/>.</summary>
internal enum ResourceKind
{
    DeviceMemory,
    HostMemory,
    ImportedMemory,
    Stream,
    Event,
}

/// <summary>
/// The raw operations one backend provides. Handles are plain numbers; ownership, disposal and the finalizer policy
/// live once in the public wrappers (<see cref="DeviceResource"/>), not in every backend. Every method may be called
/// from any thread; backends make the right device current themselves. Failures throw <see cref="DeviceException"/>.
/// </summary>
internal interface IDeviceBackend : IDisposable
{
    string Name { get; }

    IReadOnlyList<DeviceInfo> Devices { get; }

    /// <summary>Fault injection, or null when the backend has none (real hardware).</summary>
    IFaultControl? Faults { get; }

    DeviceMemoryInfo GetMemoryInfo(int device);

    /// <summary>Makes <paramref name="device"/> current on the calling thread, for vendor libraries that work on the
    /// current device (NCCL, HCCL); the backend's own calls do this themselves.</summary>
    void MakeCurrent(int device);

    /// <summary>Enables direct access from <paramref name="device"/> to <paramref name="peer"/>; already enabled is fine.</summary>
    void EnablePeerAccess(int device, int peer);

    ulong Allocate(int device, long bytes);

    nint AllocateHost(long bytes);

    nint CreateStream(int device, StreamPriority priority);

    nint CreateEvent(int device);

    /// <summary>Releases a handle. Called on an ordinary thread, never on the finalizer thread.</summary>
    void Release(ResourceKind kind, int device, ulong handle);

    void CopySync(DeviceMemory dst, DeviceMemory src);

    void FillSync(DeviceMemory dst, byte value);

    void EnqueueCopy(nint stream, int streamDevice, DeviceMemory dst, DeviceMemory src);

    void EnqueueFill(nint stream, int streamDevice, DeviceMemory dst, byte value);

    void Record(nint evt, nint stream, int streamDevice);

    void Wait(nint stream, int streamDevice, nint evt);

    /// <summary>True when the event's work is done; throws when that work failed.</summary>
    bool Query(nint evt, int device);

    void Synchronize(nint evt, int device);

    void SynchronizeStream(nint stream, int device);

    float ElapsedMilliseconds(nint start, nint end, int device);

    /// <summary>An IPC handle for the allocation that starts at <paramref name="address"/>.</summary>
    byte[] ExportIpc(int device, ulong address);

    /// <summary>Maps an exported allocation; returns its address in this process.</summary>
    ulong ImportIpc(int device, ReadOnlySpan<byte> handle);
}

/// <summary>Fault-injection knobs of the host backend and the emulators (names as in emu_core.h, without EB_EMU_).</summary>
internal interface IFaultControl
{
    void Set(string knob, long value);

    void Reset();

    /// <summary>A statistic such as <c>allocations</c> or <c>device_bytes</c>, or null when unknown.</summary>
    long? Stat(string name);
}
