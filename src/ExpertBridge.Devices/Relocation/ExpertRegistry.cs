using ExpertBridge.Core;

namespace ExpertBridge.Devices.Relocation;

/// <summary>
/// Where the weights of every (layer, physical slot) live: the tensors of the expert (gate/up, down, scales...) as
/// device memory ranges, registered by the inference server. Every slot of a layer must hold tensors of the same
/// sizes in the same order (any slot can receive any expert). Slots on devices of other processes are not
/// registered here; their process registers them in its own registry. Thread-safe.
/// </summary>
public sealed class ExpertRegistry
{
    private readonly DeviceMemory[]?[] _slots;
    private readonly long[]?[] _layerShape;
    private readonly object _gate = new();

    public ExpertRegistry(Topology topology, int layers)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        Topology = topology;
        Layers = layers;
        _slots = new DeviceMemory[]?[layers * topology.Slots];
        _layerShape = new long[]?[layers];
    }

    public Topology Topology { get; }

    public int Layers { get; }

    /// <summary>
    /// Registers the tensors of (<paramref name="layer"/>, <paramref name="slot"/>); replaces an earlier registration.
    /// Throws <see cref="InputException"/> naming the layer and slot when the tensors break the layer's shape.
    /// </summary>
    public void Register(int layer, int slot, IReadOnlyList<DeviceMemory> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var subject = $"layer {layer} slot {slot}";
        if (layer < 0 || layer >= Layers || slot < 0 || slot >= Topology.Slots)
        {
            throw new InputException(subject, "layer and slot inside the topology", $"the model has {Layers} layers of {Topology.Slots} slots");
        }

        if (tensors.Count == 0)
        {
            throw new InputException(subject, "an expert has at least one tensor", "no tensor given");
        }

        var device = tensors[0].Device;
        foreach (var t in tensors)
        {
            if (t.IsHost || t.Length <= 0 || t.Device != device)
            {
                throw new InputException(subject, "tensors are non-empty device memory on one device", $"tensor {t} breaks it");
            }
        }

        var shape = tensors.Select(t => t.Length).ToArray();
        lock (_gate)
        {
            if (_layerShape[layer] is { } known && !known.AsSpan().SequenceEqual(shape))
            {
                throw new InputException(subject, "every slot of a layer holds tensors of the same sizes",
                    $"tensor sizes [{string.Join(", ", shape)}] differ from the layer's [{string.Join(", ", known)}]");
            }

            _layerShape[layer] = shape;
            _slots[(layer * Topology.Slots) + slot] = [.. tensors];
        }
    }

    /// <summary>The tensors of (<paramref name="layer"/>, <paramref name="slot"/>), or null when not registered here.</summary>
    public IReadOnlyList<DeviceMemory>? Get(int layer, int slot)
    {
        lock (_gate)
        {
            return _slots[(layer * Topology.Slots) + slot];
        }
    }

    /// <summary>Tensor sizes of <paramref name="layer"/> (empty until a slot of it is registered).</summary>
    public IReadOnlyList<long> TensorSizes(int layer)
    {
        lock (_gate)
        {
            return _layerShape[layer] ?? [];
        }
    }

    /// <summary>Bytes of one expert of <paramref name="layer"/> (all its tensors), 0 until registered.</summary>
    public long ExpertBytes(int layer) => TensorSizes(layer).Sum();
}
