using ExpertBridge.Core;

namespace ExpertBridge.Host;

/// <summary>
/// Where the server's expert tensors live, as registered through <see cref="IExpertRelocator.Register"/>: per (layer,
/// slot) the address of each tensor, per layer the size of each tensor index. Checks what every relocator relies on:
/// tensor indices in range, non-null addresses, the same sizes in every slot of a layer, and (before weights move) every
/// tensor of every slot registered. Not thread-safe: the relocator that owns it serialises access.
/// </summary>
internal sealed class TensorTable
{
    /// <summary>Most tensors one expert may have.</summary>
    public const int MaxTensorsPerExpert = 64;

    private readonly Topology _topology;

    // [layer * slots + slot][tensor] -> address (0: not registered); per layer the bytes of each tensor index.
    private readonly nint[][] _addresses;
    private readonly long[][] _bytes;
    private readonly bool[] _changed;

    public TensorTable(Topology topology, int layers)
    {
        _topology = topology;
        _addresses = new nint[layers * topology.Slots][];
        _bytes = new long[layers][];
        _changed = new bool[layers];
        for (var l = 0; l < layers; l++)
        {
            _bytes[l] = [];
        }
    }

    /// <summary>Records (or replaces) one tensor; throws <see cref="InputException"/> naming it when it breaks a rule.</summary>
    public void Add(TensorRegistration t)
    {
        var subject = $"layer {t.Layer} slot {t.Slot} tensor {t.TensorIndex}";
        if ((uint)t.TensorIndex >= MaxTensorsPerExpert)
        {
            throw new InputException(subject, $"tensor index in [0, {MaxTensorsPerExpert})", $"got {t.TensorIndex}");
        }

        if (t.Address == 0)
        {
            throw new InputException(subject, "a non-null address", "the pointer is null");
        }

        var sizes = _bytes[t.Layer];
        if (t.TensorIndex < sizes.Length && sizes[t.TensorIndex] != 0 && sizes[t.TensorIndex] != t.Bytes)
        {
            throw new InputException(subject, "every slot of a layer holds tensors of the same sizes", $"{t.Bytes} bytes, but this tensor of another slot of the layer has {sizes[t.TensorIndex]}");
        }

        if (t.TensorIndex >= sizes.Length)
        {
            Array.Resize(ref _bytes[t.Layer], t.TensorIndex + 1);
            sizes = _bytes[t.Layer];
        }

        sizes[t.TensorIndex] = t.Bytes;
        ref var row = ref _addresses[(t.Layer * _topology.Slots) + t.Slot];
        row ??= new nint[MaxTensorsPerExpert];
        row[t.TensorIndex] = t.Address;
        _changed[t.Layer] = true;
    }

    /// <summary>Bytes of one expert of <paramref name="layer"/> (all its tensors), 0 until registered.</summary>
    public long ExpertBytes(int layer) => _bytes[layer].Sum();

    /// <summary>
    /// The tensor sizes of <paramref name="layer"/> (a copy), after checking that every tensor of every slot is
    /// registered; throws <see cref="InputException"/> naming the first missing one.
    /// </summary>
    public long[] RequireComplete(int layer)
    {
        var sizes = (long[])_bytes[layer].Clone();
        if (sizes.Length == 0)
        {
            throw new InputException($"layer {layer}", "every expert tensor is registered before weights move (or backend 'none')", "no tensor of this layer is registered");
        }

        for (var t = 0; t < sizes.Length; t++)
        {
            if (sizes[t] == 0)
            {
                throw new InputException($"layer {layer} tensor {t}", "tensor indices of an expert are 0, 1, ... without gaps", $"tensor {t} is not registered for any slot but tensor {sizes.Length - 1} is");
            }
        }

        for (var s = 0; s < _topology.Slots; s++)
        {
            var row = _addresses[(layer * _topology.Slots) + s];
            for (var t = 0; t < sizes.Length; t++)
            {
                if (row is null || row[t] == 0)
                {
                    throw new InputException($"layer {layer} slot {s} tensor {t}", "every expert tensor is registered before weights move", "not registered");
                }
            }
        }

        return sizes;
    }

    /// <summary>The addresses of the tensors of (<paramref name="layer"/>, <paramref name="slot"/>), <paramref name="count"/> of them.</summary>
    public nint[] Addresses(int layer, int slot, int count) => _addresses[(layer * _topology.Slots) + slot][..count];

    /// <summary>Whether <paramref name="layer"/> got a registration since the last call (and clears the mark).</summary>
    public bool TakeChanged(int layer)
    {
        var changed = _changed[layer];
        _changed[layer] = false;
        return changed;
    }
}
