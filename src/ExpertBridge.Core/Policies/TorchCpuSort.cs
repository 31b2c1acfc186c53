using System.Numerics;

namespace ExpertBridge.Core.Policies;

/// <summary>
/// The element order of PyTorch's CPU <c>Tensor.sort(dim, descending=True)</c> on float32 rows, which EPLB's
/// <c>balanced_packing</c> relies on. That call passes <c>stable=False</c>, so ATen sorts each row of (value, index)
/// pairs with <c>std::sort</c> and the comparator <c>a.value &gt; b.value</c>. On Linux builds that is libstdc++'s
/// introsort, which is not stable: equal values (replicas of one expert always have equal per-replica load) come out
/// in an order fixed by the algorithm's steps, not by their indices. This class performs those steps exactly:
/// introsort with a 16-element threshold, median-of-three of (first + 1, middle, last - 1) moved to the front,
/// unguarded Hoare partition, depth limit 2 * floor(log2 n) with heapsort as the fallback, and a final insertion sort.
/// Rows of at most 16 elements only see the insertion sort, which is stable.
/// NaN is not handled (callers reject it before sorting).
/// </summary>
internal static class TorchCpuSort
{
    private const int Threshold = 16;

    /// <summary>Sorts <paramref name="keys"/> descending and permutes <paramref name="items"/> alongside.</summary>
    public static void SortDescending(Span<float> keys, Span<int> items) =>
        SortDescending(keys, items, keys.Length < 2 ? 0 : 2 * BitOperations.Log2((uint)keys.Length));

    /// <summary>As <see cref="SortDescending(Span{float}, Span{int})"/> with an explicit depth limit (tests drive the heapsort path).</summary>
    internal static void SortDescending(Span<float> keys, Span<int> items, int depthLimit)
    {
        if (keys.Length != items.Length)
        {
            throw new ArgumentException("keys and items differ in length", nameof(items));
        }

        if (keys.Length < 2)
        {
            return;
        }

        IntroSortLoop(keys, items, 0, keys.Length, depthLimit);
        FinalInsertionSort(keys, items, 0, keys.Length);
    }

    private static void IntroSortLoop(Span<float> keys, Span<int> items, int first, int last, int depthLimit)
    {
        while (last - first > Threshold)
        {
            if (depthLimit == 0)
            {
                HeapSort(keys, items, first, last);
                return;
            }

            depthLimit--;
            var cut = UnguardedPartitionPivot(keys, items, first, last);
            IntroSortLoop(keys, items, cut, last, depthLimit);
            last = cut;
        }
    }

    private static int UnguardedPartitionPivot(Span<float> keys, Span<int> items, int first, int last)
    {
        var mid = first + ((last - first) / 2);
        MoveMedianToFirst(keys, items, first, first + 1, mid, last - 1);
        return UnguardedPartition(keys, items, first + 1, last, first);
    }

    private static void MoveMedianToFirst(Span<float> keys, Span<int> items, int result, int a, int b, int c)
    {
        int median;
        if (keys[a] > keys[b])
        {
            median = keys[b] > keys[c] ? b : keys[a] > keys[c] ? c : a;
        }
        else
        {
            median = keys[a] > keys[c] ? a : keys[b] > keys[c] ? c : b;
        }

        Swap(keys, items, result, median);
    }

    private static int UnguardedPartition(Span<float> keys, Span<int> items, int first, int last, int pivot)
    {
        var p = keys[pivot];
        while (true)
        {
            while (keys[first] > p)
            {
                first++;
            }

            last--;
            while (p > keys[last])
            {
                last--;
            }

            if (first >= last)
            {
                return first;
            }

            Swap(keys, items, first, last);
            first++;
        }
    }

    private static void FinalInsertionSort(Span<float> keys, Span<int> items, int first, int last)
    {
        if (last - first > Threshold)
        {
            InsertionSort(keys, items, first, first + Threshold);
            for (var i = first + Threshold; i < last; i++)
            {
                UnguardedLinearInsert(keys, items, i);
            }
        }
        else
        {
            InsertionSort(keys, items, first, last);
        }
    }

    private static void InsertionSort(Span<float> keys, Span<int> items, int first, int last)
    {
        for (var i = first + 1; i < last; i++)
        {
            if (keys[i] > keys[first])
            {
                var key = keys[i];
                var item = items[i];
                keys[first..i].CopyTo(keys[(first + 1)..]);
                items[first..i].CopyTo(items[(first + 1)..]);
                keys[first] = key;
                items[first] = item;
            }
            else
            {
                UnguardedLinearInsert(keys, items, i);
            }
        }
    }

    private static void UnguardedLinearInsert(Span<float> keys, Span<int> items, int last)
    {
        var key = keys[last];
        var item = items[last];
        var next = last - 1;
        while (key > keys[next])
        {
            keys[last] = keys[next];
            items[last] = items[next];
            last = next;
            next--;
        }

        keys[last] = key;
        items[last] = item;
    }

    // std::__partial_sort(first, last, last): make_heap, then sort_heap (a max-heap under the comparator).
    private static void HeapSort(Span<float> keys, Span<int> items, int first, int last)
    {
        var len = last - first;
        if (len >= 2)
        {
            for (var parent = (len - 2) / 2; ; parent--)
            {
                AdjustHeap(keys, items, first, parent, len, keys[first + parent], items[first + parent]);
                if (parent == 0)
                {
                    break;
                }
            }
        }

        while (last - first > 1)
        {
            last--;
            var key = keys[last];
            var item = items[last];
            keys[last] = keys[first];
            items[last] = items[first];
            AdjustHeap(keys, items, first, 0, last - first, key, item);
        }
    }

    private static void AdjustHeap(Span<float> keys, Span<int> items, int first, int hole, int len, float key, int item)
    {
        var top = hole;
        var child = hole;
        while (child < (len - 1) / 2)
        {
            child = 2 * (child + 1);
            if (keys[first + child] > keys[first + child - 1])
            {
                child--;
            }

            keys[first + hole] = keys[first + child];
            items[first + hole] = items[first + child];
            hole = child;
        }

        if ((len & 1) == 0 && child == (len - 2) / 2)
        {
            child = 2 * (child + 1);
            keys[first + hole] = keys[first + child - 1];
            items[first + hole] = items[first + child - 1];
            hole = child - 1;
        }

        // push_heap: sift the value up while its parent compares "less" (parent > value under the comparator).
        var parent = (hole - 1) / 2;
        while (hole > top && keys[first + parent] > key)
        {
            keys[first + hole] = keys[first + parent];
            items[first + hole] = items[first + parent];
            hole = parent;
            parent = (hole - 1) / 2;
        }

        keys[first + hole] = key;
        items[first + hole] = item;
    }

    private static void Swap(Span<float> keys, Span<int> items, int i, int j)
    {
        (keys[i], keys[j]) = (keys[j], keys[i]);
        (items[i], items[j]) = (items[j], items[i]);
    }
}
