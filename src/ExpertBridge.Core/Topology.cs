namespace ExpertBridge.Core;

/// <summary>
/// The physical layout of an expert-parallel deployment: nodes, devices and expert slots per device.
/// Physical slot ids are device-major (slot = device * SlotsPerDevice + local slot), as vLLM, SGLang and EPLB number them.
/// Devices are spread evenly over nodes: device d lives on node d / DevicesPerNode.
/// </summary>
public sealed record Topology
{
    private Topology(int devices, int slotsPerDevice, int nodes, long expertBytes)
    {
        Devices = devices;
        SlotsPerDevice = slotsPerDevice;
        Nodes = nodes;
        ExpertBytes = expertBytes;
    }

    /// <summary>Creates a topology, or throws <see cref="InputException"/> naming the option and the rule.</summary>
    public static Topology Create(int devices, int slotsPerDevice, int nodes = 1, long expertBytes = 0)
    {
        if (devices < 1)
        {
            throw new InputException("--devices", "devices >= 1", $"got {devices}");
        }

        if (slotsPerDevice < 1)
        {
            throw new InputException("--slots-per-device", "slots per device >= 1", $"got {slotsPerDevice}");
        }

        if (nodes < 1)
        {
            throw new InputException("--nodes", "nodes >= 1", $"got {nodes}");
        }

        if (devices % nodes != 0)
        {
            throw new InputException("--nodes", "devices must be a multiple of nodes", $"{devices} devices do not split evenly over {nodes} nodes");
        }

        if (expertBytes < 0)
        {
            throw new InputException("--expert-bytes", "expert bytes >= 0", $"got {expertBytes}");
        }

        return new Topology(devices, slotsPerDevice, nodes, expertBytes);
    }

    /// <summary>Total number of devices (EP ranks).</summary>
    public int Devices { get; }

    /// <summary>Expert slots on each device.</summary>
    public int SlotsPerDevice { get; }

    /// <summary>Number of nodes; devices are spread evenly.</summary>
    public int Nodes { get; }

    /// <summary>Bytes of one expert's weights (all its tensors), or 0 when unknown.</summary>
    public long ExpertBytes { get; init; }

    /// <summary>Devices on each node.</summary>
    public int DevicesPerNode => Devices / Nodes;

    /// <summary>Total physical slots per layer.</summary>
    public int Slots => Devices * SlotsPerDevice;

    /// <summary>The device that holds physical slot <paramref name="slot"/>.</summary>
    public int DeviceOf(int slot) => slot / SlotsPerDevice;

    /// <summary>The node that holds device <paramref name="device"/>.</summary>
    public int NodeOfDevice(int device) => device / DevicesPerNode;

    /// <summary>The node that holds physical slot <paramref name="slot"/>.</summary>
    public int NodeOfSlot(int slot) => NodeOfDevice(DeviceOf(slot));

    /// <summary>The physical slot id of local slot <paramref name="local"/> on <paramref name="device"/>.</summary>
    public int SlotOf(int device, int local) => (device * SlotsPerDevice) + local;

    /// <summary>Returns a copy with another expert byte size.</summary>
    public Topology WithExpertBytes(long expertBytes) => Create(Devices, SlotsPerDevice, Nodes, expertBytes);

    public override string ToString() =>
        $"{Nodes} node(s) x {DevicesPerNode} device(s) x {SlotsPerDevice} slot(s) = {Slots} slots";
}
