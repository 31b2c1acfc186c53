using System.Runtime.InteropServices;
using ExpertBridge.Core;

namespace ExpertBridge.Host;

/// <summary>
/// The host backend: expert tensors live in this process's memory and move with memcpy. Staging buffers are
/// allocated per moved slot and freed at commit. Thread-safe: registration, staging and commit serialise on one lock.
/// </summary>
internal sealed unsafe class HostMemoryRelocator : IExpertRelocator
{
    private const int MaxTensorsPerExpert = 64;

    private readonly Topology _topology;
    private readonly int _layers;
    private readonly object _gate = new();

    // [layer * slots + slot][tensor] -> address (0: not registered); per layer the bytes of each tensor index.
    private readonly nint[][] _addresses;
    private readonly long[][] _bytes;
    private bool _disposed;

    public HostMemoryRelocator(Topology topology, int layers)
    {
        _topology = topology;
        _layers = layers;
        _addresses = new nint[layers * topology.Slots][];
        _bytes = new long[layers][];
        for (var l = 0; l < layers; l++)
        {
            _bytes[l] = [];
        }
    }

    public void Register(TensorRegistration t)
    {
        if ((uint)t.TensorIndex >= MaxTensorsPerExpert)
        {
            throw new InputException($"layer {t.Layer} slot {t.Slot} tensor {t.TensorIndex}", $"tensor index in [0, {MaxTensorsPerExpert})", $"got {t.TensorIndex}");
        }

        if (t.Address == 0)
        {
            throw new InputException($"layer {t.Layer} slot {t.Slot} tensor {t.TensorIndex}", "a non-null address", "the pointer is null");
        }

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sizes = _bytes[t.Layer];
            if (t.TensorIndex < sizes.Length && sizes[t.TensorIndex] != 0 && sizes[t.TensorIndex] != t.Bytes)
            {
                throw new InputException($"layer {t.Layer} slot {t.Slot} tensor {t.TensorIndex}", "every slot of a layer holds tensors of the same sizes", $"{t.Bytes} bytes, but this tensor of another slot of the layer has {sizes[t.TensorIndex]}");
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
        }
    }

    public long ExpertBytes(int layer)
    {
        lock (_gate)
        {
            return _bytes[layer].Sum();
        }
    }

    public StagedLayer Stage(int layer, ReadOnlySpan<int> current, ReadOnlySpan<int> target)
    {
        // Under the lock: which slot feeds which, and the source addresses. The copies run outside it, so a commit
        // of another layer at a step boundary never waits for this layer's staging.
        long[] sizes;
        var plan = new List<(int Slot, nint[] Source)>();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            sizes = (long[])_bytes[layer].Clone();
            RequireComplete(layer, sizes);
            for (var s = 0; s < target.Length; s++)
            {
                var expert = target[s];
                if (expert < 0 || expert == current[s])
                {
                    continue;
                }

                var src = SourceSlot(current, expert, _topology.DeviceOf(s), _topology.SlotsPerDevice);
                if (src < 0)
                {
                    throw new InputException($"layer {layer} slot {s}", "a moved expert is held by some slot before the move", $"expert {expert} is in no slot of the mapping in force");
                }

                plan.Add((s, _addresses[(layer * _topology.Slots) + src][..sizes.Length]));
            }
        }

        var expertBytes = sizes.Sum();
        var moves = new List<Move>(plan.Count);
        try
        {
            foreach (var (slot, source) in plan)
            {
                var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(expertBytes, 1), 64);
                moves.Add(new Move(slot, buffer));
                long offset = 0;
                for (var t = 0; t < sizes.Length; t++)
                {
                    NativeMemory.Copy((void*)source[t], buffer + offset, (nuint)sizes[t]);
                    offset += sizes[t];
                }
            }
        }
        catch
        {
            foreach (var m in moves)
            {
                NativeMemory.AlignedFree(m.Buffer);
            }

            throw;
        }

        return new HostStagedLayer(layer, [.. moves], sizes);
    }

    public void Commit(StagedLayer staged)
    {
        var host = (HostStagedLayer)staged;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sizes = host.Sizes;
            foreach (var m in host.TakeMoves())
            {
                var row = _addresses[(host.Layer * _topology.Slots) + m.Slot];
                long offset = 0;
                for (var t = 0; t < sizes.Length; t++)
                {
                    NativeMemory.Copy(m.Buffer + offset, (void*)row[t], (nuint)sizes[t]);
                    offset += sizes[t];
                }

                NativeMemory.AlignedFree(m.Buffer);
            }
        }
    }

    public void Discard(StagedLayer staged)
    {
        foreach (var m in ((HostStagedLayer)staged).TakeMoves())
        {
            NativeMemory.AlignedFree(m.Buffer);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }
    }

    private void RequireComplete(int layer, long[] sizes)
    {
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
    }

    /// <summary>A slot holding <paramref name="expert"/> now, on <paramref name="device"/> when one is (local copy), else the first.</summary>
    private static int SourceSlot(ReadOnlySpan<int> current, int expert, int device, int slotsPerDevice)
    {
        var first = -1;
        for (var s = 0; s < current.Length; s++)
        {
            if (current[s] == expert)
            {
                if (first < 0)
                {
                    first = s;
                }

                if (s / slotsPerDevice == device)
                {
                    return s;
                }
            }
        }

        return first;
    }

    private readonly struct Move(int slot, byte* buffer)
    {
        public int Slot { get; } = slot;

        public byte* Buffer { get; } = buffer;
    }

    private sealed class HostStagedLayer(int layer, Move[] moves, long[] sizes)
        : StagedLayer(layer, moves.Length, moves.Length * sizes.Sum())
    {
        private Move[]? _moves = moves;

        /// <summary>Bytes of each tensor, as registered when the layer was staged.</summary>
        public long[] Sizes { get; } = sizes;

        /// <summary>The moves, once: commit and discard both take ownership of the buffers.</summary>
        public Move[] TakeMoves() => Interlocked.Exchange(ref _moves, null) ?? [];
    }
}

/// <summary>Backend 'none': the mapping changes, no weights move (simulation, or a server that moves them itself).</summary>
internal sealed class MappingOnlyRelocator(long expertBytes) : IExpertRelocator
{
    public void Register(TensorRegistration tensor)
    {
    }

    public long ExpertBytes(int layer) => expertBytes;

    public StagedLayer Stage(int layer, ReadOnlySpan<int> current, ReadOnlySpan<int> target)
    {
        var moved = 0;
        for (var s = 0; s < target.Length; s++)
        {
            if (target[s] >= 0 && target[s] != current[s])
            {
                moved++;
            }
        }

        return new Nothing(layer, moved, moved * expertBytes);
    }

    public void Commit(StagedLayer staged)
    {
    }

    public void Discard(StagedLayer staged)
    {
    }

    public void Dispose()
    {
    }

    private sealed class Nothing(int layer, int moved, long bytes) : StagedLayer(layer, moved, bytes);
}
