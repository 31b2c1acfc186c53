namespace ExpertBridge.Native;

/// <summary>
/// Maps opaque handles to objects. A handle packs a slot index and the slot's generation; removing an object bumps
/// the generation, so a stale (destroyed) handle is told apart from a live one even after its slot is reused, and a
/// made-up value never reaches an object. Lookups take no lock; adds and removes serialise.
/// </summary>
internal sealed class HandleTable<T>
    where T : class
{
    private readonly object _gate = new();
    private readonly Stack<int> _free = new();
    private Entry[] _entries = new Entry[16];
    private int _used;

    /// <summary>What a lookup found.</summary>
    public enum Lookup
    {
        Live,
        Null,
        Unknown,
        Stale,
    }

    /// <summary>Stores <paramref name="item"/> and returns its handle (never 0).</summary>
    public ulong Add(T item)
    {
        ArgumentNullException.ThrowIfNull(item);
        lock (_gate)
        {
            int index;
            if (_free.Count > 0)
            {
                index = _free.Pop();
            }
            else
            {
                if (_used == _entries.Length)
                {
                    var grown = new Entry[_entries.Length * 2];
                    _entries.CopyTo(grown, 0);
                    Volatile.Write(ref _entries, grown);
                }

                index = _used++;
            }

            var generation = NextGeneration(_entries[index]?.Generation ?? 0);
            Volatile.Write(ref _entries[index], new Entry(generation, item));
            return Pack(index, generation);
        }
    }

    /// <summary>Finds the object of <paramref name="handle"/>.</summary>
    public Lookup TryGet(ulong handle, out T? item)
    {
        item = null;
        if (handle == 0)
        {
            return Lookup.Null;
        }

        var (index, generation) = Unpack(handle);
        var entries = Volatile.Read(ref _entries);
        if (index < 0 || index >= entries.Length || generation <= 0)
        {
            return Lookup.Unknown;
        }

        var entry = Volatile.Read(ref entries[index]);
        if (entry is null || entry.Generation < generation)
        {
            return Lookup.Unknown;
        }

        if (entry.Generation > generation || entry.Item is null)
        {
            return Lookup.Stale;
        }

        item = entry.Item;
        return Lookup.Live;
    }

    /// <summary>Removes the object of <paramref name="handle"/>; returns it, or null when the handle is not live.</summary>
    public T? Remove(ulong handle)
    {
        lock (_gate)
        {
            if (TryGet(handle, out var item) != Lookup.Live)
            {
                return null;
            }

            var (index, generation) = Unpack(handle);
            Volatile.Write(ref _entries[index], new Entry(generation, null));
            _free.Push(index);
            return item;
        }
    }

    private static int NextGeneration(int generation) => generation >= int.MaxValue ? 1 : generation + 1;

    private static ulong Pack(int index, int generation) => ((ulong)(uint)generation << 32) | (uint)(index + 1);

    private static (int Index, int Generation) Unpack(ulong handle) => ((int)(uint)handle - 1, (int)(handle >> 32));

    private sealed record Entry(int Generation, T? Item);
}
