namespace ExpertBridge.Devices.Relocation;

/// <summary>How the relocation engine runs.</summary>
public sealed class RelocationOptions
{
    /// <summary>This process's index in <see cref="Locations"/>.</summary>
    public int Process { get; init; }

    /// <summary>Where each global device (EP rank) lives; null: every device is in this process, ordinal = device.</summary>
    public IReadOnlyList<DeviceLocation>? Locations { get; init; }

    /// <summary>Transport for transfers between processes or nodes (NCCL/HCCL); null: such layers fail as unsupported.</summary>
    public CollectiveTransport? Transport { get; init; }

    /// <summary>Transfers in flight per device (as source or target); further ones wait.</summary>
    public int MaxInFlightPerDevice { get; init; } = 4;

    /// <summary>Layers transferring at once; later layers start as earlier ones finish.</summary>
    public int MaxLayersInFlight { get; init; } = 2;

    /// <summary>Dedicated low-priority copy streams per local device.</summary>
    public int CopyStreamsPerDevice { get; init; } = 2;

    /// <summary>A transfer not finished this long after it was enqueued fails its layer.</summary>
    public TimeSpan TransferTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Compare checksums of every moved expert with its source before the layer counts as staged.</summary>
    public bool Verify { get; init; }
}
