namespace ExpertBridge.Devices;

/// <summary>Which runtime drives the devices.</summary>
public enum DeviceBackend
{
    /// <summary>CPU memory standing in for devices: the reference backend and the default without accelerators.</summary>
    Host,

    /// <summary>NVIDIA GPUs through the CUDA driver API (and NCCL for transport).</summary>
    Cuda,

    /// <summary>Huawei Ascend NPUs through AscendCL (and HCCL for transport).</summary>
    Cann,
}

/// <summary>
/// Scheduling priority of a stream. Relocation copies use <see cref="Low"/>. On CUDA the default priority of a stream
/// is already the lowest, so <see cref="Low"/> and <see cref="Normal"/> coincide there; give inference streams
/// <see cref="High"/> to have them win over copies.
/// </summary>
public enum StreamPriority
{
    Low,
    Normal,
    High,
}

/// <summary>What went wrong in a device call, independent of the vendor's code.</summary>
public enum DeviceErrorKind
{
    /// <summary>Out of device (or pinned host) memory.</summary>
    OutOfMemory,

    /// <summary>A bad argument: a pointer range outside any allocation, a zero size, a wrong direction.</summary>
    InvalidArgument,

    /// <summary>A handle that is not (or no longer) valid, or a call without the context it needs.</summary>
    InvalidHandle,

    /// <summary>Peer access is impossible between the two devices.</summary>
    PeerAccess,

    /// <summary>The backend or device cannot do this (for example IPC on the host backend).</summary>
    Unsupported,

    /// <summary>Queued work did not finish in time.</summary>
    Timeout,

    /// <summary>Queued work failed on the device (reported asynchronously).</summary>
    DeviceFault,

    /// <summary>The vendor library or the device is missing.</summary>
    NotAvailable,

    /// <summary>Anything else the vendor reports.</summary>
    Other,
}

/// <summary>One device as the runtime sees it.</summary>
/// <param name="Ordinal">Device index within this process (0-based).</param>
/// <param name="Name">Vendor name of the device.</param>
/// <param name="TotalMemory">Device memory in bytes.</param>
/// <param name="Node">Node (host) index from <see cref="DeviceRuntimeOptions.Node"/>.</param>
/// <param name="BusId">PCI bus id, or a backend-specific location.</param>
/// <param name="Peers">Devices of this process that this device can access directly.</param>
public sealed record DeviceInfo(int Ordinal, string Name, long TotalMemory, int Node, string BusId, IReadOnlyList<int> Peers);

/// <summary>Free and total memory of one device, in bytes.</summary>
public readonly record struct DeviceMemoryInfo(long Free, long Total)
{
    public long Used => Total - Free;
}

/// <summary>
/// A range of device memory (or, with <see cref="Device"/> == <see cref="HostDevice"/>, of host memory): the unit every
/// copy works on. Not owning: <see cref="DeviceBuffer"/> owns memory, and the inference server owns its expert tensors.
/// </summary>
public readonly record struct DeviceMemory(int Device, ulong Address, long Length)
{
    /// <summary>The device number of host memory.</summary>
    public const int HostDevice = -1;

    public bool IsHost => Device == HostDevice;

    /// <summary>A range of host memory (pinned memory from <see cref="DeviceRuntime.AllocateHost"/> for async copies).</summary>
    public static DeviceMemory Host(nint address, long length) => new(HostDevice, (ulong)address, length);

    /// <summary>The sub-range [offset, offset + length).</summary>
    public DeviceMemory Slice(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"slice [{offset}, {offset + length}) is outside a range of {Length} bytes");
        }

        return new DeviceMemory(Device, Address + (ulong)offset, length);
    }

    /// <summary>The sub-range from <paramref name="offset"/> to the end.</summary>
    public DeviceMemory Slice(long offset) => Slice(offset, Length - offset);

    public override string ToString() =>
        IsHost ? $"host 0x{Address:x}+{Length}" : $"device {Device} 0x{Address:x}+{Length}";
}
