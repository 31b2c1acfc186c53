using System.Runtime.InteropServices;
using ExpertBridge.Core;

namespace ExpertBridge.Host;

/// <summary>
/// The host backend: expert tensors live in this process's memory and move with memcpy. Staging buffers are
/// allocated per moved slot and freed at commit. Thread-safe: registration, staging and commit serialise on one lock.
/// </summary>
internal sealed unsafe class HostMemoryRelocator(Topology topology, int layers) : IExpertRelocator
{
    private readonly Topology _topology = topology;
    private readonly TensorTable _tensors = new(topology, layers);
    private readonly object _gate = new();
    private bool _disposed;

    public void Register(TensorRegistration t)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _tensors.Add(t);
        }
    }

    public long ExpertBytes(int layer)
    {
        lock (_gate)
        {
            return _tensors.ExpertBytes(layer);
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
            sizes = _tensors.RequireComplete(layer);
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

                plan.Add((s, _tensors.Addresses(layer, src, sizes.Length)));
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
                var row = _tensors.Addresses(host.Layer, m.Slot, sizes.Length);
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
