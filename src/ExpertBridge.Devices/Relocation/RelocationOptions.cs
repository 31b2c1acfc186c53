namespace ExpertBridge.Devices.Relocation;

/// <summary>How the relocation engine runs.</summary>
public sealed class RelocationOptions
{
    /// <summary>This process's index in <see cref="Locations"/>.</summary>
    public int Process { get; init; }

    /// <summary>Where each global device (EP rank) lives; null: every device is in this process, ordinal = device.</summary>
    public IReadOnlyList<DeviceLocation>? Locations { get; init; }

    /// <summary>
    /// Transport for transfers between processes or nodes (<see cref="CollectiveTransport.Open"/>: NCCL or HCCL), with
    /// rank g on global device g; null: such layers fail as unsupported. Every process must execute the same plans in
    /// the same order (sends and receives pair up in issue order). A failure, timeout or cancellation of a layer's
    /// collective transfers, or a layer this process cannot issue (its staging allocation failed), aborts the
    /// transport: open a new one (with a new unique id) before the next plan.
    /// </summary>
    public CollectiveTransport? Transport { get; init; }

    /// <summary>Transfers in flight per device (as source or target); further ones wait.</summary>
    public int MaxInFlightPerDevice { get; init; } = 4;

    /// <summary>Layers transferring at once; later layers start as earlier ones finish.</summary>
    public int MaxLayersInFlight { get; init; } = 2;

    /// <summary>Dedicated low-priority copy streams per local device.</summary>
    public int CopyStreamsPerDevice { get; init; } = 2;

    /// <summary>A transfer not finished this long after it was enqueued (under a bandwidth cap: after its last chunk
    /// was) fails its layer.</summary>
    public TimeSpan TransferTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Bandwidth budget of copies within one device (the device is source and target), in bytes per second per device;
    /// null or 0: unlimited. Such copies read and write the same memory and, on GPUs, run as copy kernels: unthrottled
    /// they take memory bandwidth and multiprocessor time from inference. The engine paces them (see docs/relocation.md).
    /// </summary>
    public long? WithinDeviceBytesPerSecond { get; init; }

    /// <summary>
    /// Bandwidth budget of transfers between devices (peer copies, other processes and nodes), in bytes per second per
    /// device, counted on the source and on the target device; null or 0: unlimited.
    /// </summary>
    public long? BetweenDevicesBytesPerSecond { get; init; }

    /// <summary>Compare checksums of every moved expert with its source before the layer counts as staged.</summary>
    public bool Verify { get; init; }
}
