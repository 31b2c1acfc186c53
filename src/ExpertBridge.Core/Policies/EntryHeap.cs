namespace ExpertBridge.Core.Policies;

/// <summary>The order of an <see cref="EntryHeap"/>: <c>Before(a, b)</c> when entry a comes out before entry b.</summary>
internal interface IHeapOrder
{
    static abstract bool Before(in SortEntry a, in SortEntry b);
}

/// <summary>Least key first, then smaller id: Python's <c>min</c> over packs keeps the first lightest.</summary>
internal struct LightestFirst : IHeapOrder
{
    public static bool Before(in SortEntry a, in SortEntry b) => a.Key < b.Key || (a.Key == b.Key && a.Item < b.Item);
}

/// <summary>Greatest key first, then smaller id: torch's <c>max(dim)</c> returns the first maximum.</summary>
internal struct HeaviestFirst : IHeapOrder
{
    public static bool Before(in SortEntry a, in SortEntry b) => a.Key > b.Key || (a.Key == b.Key && a.Item < b.Item);
}

/// <summary>
/// A binary heap of (key, id) entries whose top is exactly what a first-index argmin / argmax over the live entries
/// returns. Callers change only the top's key, and only for the worse, then call <see cref="SiftDown{TOrder}"/>.
/// </summary>
internal static class EntryHeap
{
    public static void Build<TOrder>(Span<SortEntry> heap)
        where TOrder : IHeapOrder
    {
        for (var i = (heap.Length / 2) - 1; i >= 0; i--)
        {
            SiftDown<TOrder>(heap, i);
        }
    }

    /// <summary>Restores the order below position <paramref name="i"/> of the live heap <paramref name="heap"/>.</summary>
    public static void SiftDown<TOrder>(Span<SortEntry> heap, int i)
        where TOrder : IHeapOrder
    {
        var count = heap.Length;
        var entry = heap[i];
        while (true)
        {
            var child = (2 * i) + 1;
            if (child >= count)
            {
                break;
            }

            if (child + 1 < count && TOrder.Before(heap[child + 1], heap[child]))
            {
                child++;
            }

            if (!TOrder.Before(heap[child], entry))
            {
                break;
            }

            heap[i] = heap[child];
            i = child;
        }

        heap[i] = entry;
    }
}
