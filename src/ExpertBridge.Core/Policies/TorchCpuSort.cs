using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ExpertBridge.Core.Policies;

/// <summary>One (value, index) pair as ATen's sort moves them together.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SortEntry(float key, int item)
{
    public float Key = key;
    public int Item = item;
}

/// <summary>
/// The element order of PyTorch's CPU <c>Tensor.sort(dim, descending=True)</c> on float32 rows, which EPLB's
/// <c>balanced_packing</c> relies on. That call passes <c>stable=False</c>, so ATen sorts each row of (value, index)
/// pairs with <c>std::sort</c> and the comparator <c>a.value &gt; b.value</c>. On Linux builds that is libstdc++'s
/// introsort, which is not stable: equal values (replicas of one expert always have equal per-replica load) come out
/// in an order fixed by the algorithm's steps, not by their indices. This class performs those steps exactly:
/// introsort with a 16-element threshold, median-of-three of (first + 1, middle, last - 1) moved to the front,
/// unguarded Hoare partition, depth limit 2 * floor(log2 n) with heapsort as the fallback, and a final insertion sort.
/// Rows of at most 16 elements only see the insertion sort, which is stable. Two steps are computed differently with
/// the same result, to avoid data-dependent branches: the partition (see <see cref="UnguardedPartition"/>) and the
/// final insertion sort (see <see cref="SmallStableSort"/>).
/// NaN is not handled (callers reject it before sorting).
/// <para>
/// The hot loops index through <see cref="Unsafe.Add{T}(ref T, int)"/>: every index stays inside the span by the
/// algorithm's own invariants (the unguarded loops are bounded by the pivot and the sorted prefix, exactly as in
/// libstdc++), and the public entry points check the span, so bounds checks would only cost time.
/// </para>
/// </summary>
internal static class TorchCpuSort
{
    private const int Threshold = 16;

    // Partition scratch on the stack up to this many positions (two per element): rows up to 512 elements.
    private const int StackStops = 1024;

    /// <summary>Sorts <paramref name="entries"/> by key, descending, in ATen's order for equal keys.</summary>
    public static void SortDescending(Span<SortEntry> entries) =>
        SortDescending(entries, entries.Length < 2 ? 0 : 2 * BitOperations.Log2((uint)entries.Length));

    /// <summary>As <see cref="SortDescending(Span{SortEntry})"/> with an explicit depth limit (tests drive the heapsort path).</summary>
    internal static void SortDescending(Span<SortEntry> entries, int depthLimit)
    {
        if (entries.Length < 2)
        {
            return;
        }

        ref var a = ref MemoryMarshal.GetReference(entries);
        if (entries.Length <= Threshold)
        {
            SmallStableSort(ref a, entries.Length);
        }
        else
        {
            // Partition scratch: two positions per element (see UnguardedPartition).
            int[]? rented = null;
            var stops = 2 * entries.Length <= StackStops
                ? stackalloc int[2 * entries.Length]
                : (rented = ArrayPool<int>.Shared.Rent(2 * entries.Length));
            IntroSortLoop(ref a, 0, entries.Length, depthLimit, ref MemoryMarshal.GetReference(stops));
            if (rented is not null)
            {
                ArrayPool<int>.Shared.Return(rented);
            }
        }
    }

    private static void IntroSortLoop(ref SortEntry a, int first, int last, int depthLimit, ref int stops)
    {
        while (last - first > Threshold)
        {
            if (depthLimit == 0)
            {
                HeapSort(ref Unsafe.Add(ref a, first), last - first);
                return;
            }

            depthLimit--;
            var cut = UnguardedPartitionPivot(ref a, first, last, ref stops);
            IntroSortLoop(ref a, cut, last, depthLimit, ref stops);
            last = cut;
        }

        // libstdc++ leaves this range to its final insertion sort over the whole row; each range's share of that
        // sort touches only the range, so it is done here.
        SmallStableSort(ref Unsafe.Add(ref a, first), last - first);
    }

    private static int UnguardedPartitionPivot(ref SortEntry a, int first, int last, ref int stops)
    {
        var mid = first + ((last - first) / 2);
        MoveMedianToFirst(ref a, first, first + 1, mid, last - 1);
        return UnguardedPartition(ref a, first + 1, last, Unsafe.Add(ref a, first).Key, ref stops);
    }

    private static void MoveMedianToFirst(ref SortEntry a, int result, int x, int y, int z)
    {
        var kx = Unsafe.Add(ref a, x).Key;
        var ky = Unsafe.Add(ref a, y).Key;
        var kz = Unsafe.Add(ref a, z).Key;
        int median;
        if (kx > ky)
        {
            median = ky > kz ? y : kx > kz ? z : x;
        }
        else
        {
            median = kx > kz ? x : ky > kz ? z : y;
        }

        (Unsafe.Add(ref a, result), Unsafe.Add(ref a, median)) = (Unsafe.Add(ref a, median), Unsafe.Add(ref a, result));
    }

    /// <summary>
    /// libstdc++'s <c>__unguarded_partition</c> (the pivot sits at first - 1): scan right while key &gt; pivot, scan left
    /// while pivot &gt; key, swap, repeat until the scans cross; returns where the left scan stopped last.
    /// <para>
    /// Computed without its data-dependent branches, with the same swaps: the left scan stops at the "left stoppers"
    /// (key &lt;= pivot) in ascending order, the right scan at the "right stoppers" (key &gt;= pivot) in descending
    /// order, and swap k exchanges the k-th of each as long as they have not crossed. Before swap k only positions
    /// outside (left stopper k-1, right stopper k-1) have been written, so the stoppers can be collected from the
    /// unmodified range in one branch-free pass (<paramref name="stops"/> holds 2 * (last - first) positions: left
    /// stoppers from the front of the first half, right stoppers from the back of the second). Once they cross, the reference returns the next left stopper, or the last right stopper it swapped
    /// into if that comes first (it now holds a key &lt;= pivot). Median-of-three leaves a stopper of each kind in the
    /// range, so the first of each exists.
    /// </para>
    /// </summary>
    private static int UnguardedPartition(ref SortEntry a, int first, int last, float pivot, ref int stops)
    {
        var n = last - first;
        var left = 0;
        var right = 2 * n;
        for (var j = first; j < last; j++)
        {
            var key = Unsafe.Add(ref a, j).Key;
            Unsafe.Add(ref stops, left) = j;
            left += Unsafe.BitCast<bool, byte>(key <= pivot);
            Unsafe.Add(ref stops, right - 1) = j;
            right -= Unsafe.BitCast<bool, byte>(key >= pivot);
        }

        // Left stoppers: stops[0 .. left), ascending. Right stoppers: stops[right .. 2n), descending from stops[right].
        // Each element writes both lists before deciding; the writes stay below n and at or above n respectively.
        var swaps = Math.Min(left, (2 * n) - right);
        var k = 0;
        while (k < swaps)
        {
            var l = Unsafe.Add(ref stops, k);
            var r = Unsafe.Add(ref stops, right + k);
            if (l >= r)
            {
                break;
            }

            (Unsafe.Add(ref a, l), Unsafe.Add(ref a, r)) = (Unsafe.Add(ref a, r), Unsafe.Add(ref a, l));
            k++;
        }

        var result = k < left ? Unsafe.Add(ref stops, k) : int.MaxValue;
        return k == 0 ? result : Math.Min(result, Unsafe.Add(ref stops, right + k - 1));
    }

    /// <summary>
    /// What libstdc++'s final insertion sort does to one range the introsort loop left behind (at most 16 entries; no
    /// key above any key of the range before it, none below any key of the range after it). That insertion sort is
    /// stable and never moves an entry across such a boundary, so per range it is a stable sort, descending. With
    /// vector hardware each entry goes straight to its rank (entries with a greater key, plus equal keys before it),
    /// with no data-dependent branch; otherwise the insertion sort runs as written.
    /// </summary>
    private static void SmallStableSort(ref SortEntry a, int length)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            InsertionSort(ref a, length);
            return;
        }

        Span<float> keys = stackalloc float[Threshold];
        Span<SortEntry> copy = stackalloc SortEntry[Threshold];
        keys.Fill(float.NegativeInfinity); // padding: below every key (keys are >= 0), equal to none
        for (var i = 0; i < length; i++)
        {
            var entry = Unsafe.Add(ref a, i);
            copy[i] = entry;
            keys[i] = entry.Key;
        }

        var low = Vector256.Create<float>(keys);
        var high = Vector256.Create<float>(keys[8..]);
        for (var i = 0; i < length; i++)
        {
            var key = Vector256.Create(keys[i]);
            var greater = Vector256.GreaterThan(low, key).ExtractMostSignificantBits()
                | (Vector256.GreaterThan(high, key).ExtractMostSignificantBits() << 8);
            var equal = Vector256.Equals(low, key).ExtractMostSignificantBits()
                | (Vector256.Equals(high, key).ExtractMostSignificantBits() << 8);
            var rank = BitOperations.PopCount(greater | (equal & ((1u << i) - 1)));
            Unsafe.Add(ref a, rank) = copy[i];
        }
    }

    private static void InsertionSort(ref SortEntry a, int length)
    {
        for (var i = 1; i < length; i++)
        {
            var value = Unsafe.Add(ref a, i);
            if (value.Key > a.Key)
            {
                for (var j = i; j > 0; j--)
                {
                    Unsafe.Add(ref a, j) = Unsafe.Add(ref a, j - 1);
                }

                a = value;
            }
            else
            {
                UnguardedLinearInsert(ref a, i);
            }
        }
    }

    // Bounded by a key at the front that is not smaller (the first element, or the sorted 16-element prefix).
    private static void UnguardedLinearInsert(ref SortEntry a, int last)
    {
        var value = Unsafe.Add(ref a, last);
        var next = last - 1;
        while (value.Key > Unsafe.Add(ref a, next).Key)
        {
            Unsafe.Add(ref a, last) = Unsafe.Add(ref a, next);
            last = next;
            next--;
        }

        Unsafe.Add(ref a, last) = value;
    }

    // std::__partial_sort(first, last, last): make_heap, then sort_heap (a max-heap under the comparator).
    private static void HeapSort(ref SortEntry a, int length)
    {
        if (length >= 2)
        {
            for (var parent = (length - 2) / 2; ; parent--)
            {
                AdjustHeap(ref a, parent, length, Unsafe.Add(ref a, parent));
                if (parent == 0)
                {
                    break;
                }
            }
        }

        for (var last = length - 1; last > 0; last--)
        {
            var value = Unsafe.Add(ref a, last);
            Unsafe.Add(ref a, last) = a;
            AdjustHeap(ref a, 0, last, value);
        }
    }

    private static void AdjustHeap(ref SortEntry a, int hole, int length, SortEntry value)
    {
        var top = hole;
        var child = hole;
        while (child < (length - 1) / 2)
        {
            child = 2 * (child + 1);
            if (Unsafe.Add(ref a, child).Key > Unsafe.Add(ref a, child - 1).Key)
            {
                child--;
            }

            Unsafe.Add(ref a, hole) = Unsafe.Add(ref a, child);
            hole = child;
        }

        if ((length & 1) == 0 && child == (length - 2) / 2)
        {
            child = 2 * (child + 1);
            Unsafe.Add(ref a, hole) = Unsafe.Add(ref a, child - 1);
            hole = child - 1;
        }

        // push_heap: sift the value up while its parent compares "less" (parent key > value key).
        var parent = (hole - 1) / 2;
        while (hole > top && Unsafe.Add(ref a, parent).Key > value.Key)
        {
            Unsafe.Add(ref a, hole) = Unsafe.Add(ref a, parent);
            hole = parent;
            parent = (hole - 1) / 2;
        }

        Unsafe.Add(ref a, hole) = value;
    }
}
