using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ExpertBridge.Core.Policies;

/// <summary>
/// A tournament (winner) tree over packed 64-bit keys: the leaves sit at [half, 2 * half), every inner node holds the
/// smaller of its two children, so the root <c>tree[1]</c> is the least live key. Replacing one leaf replays its path
/// to the root: log2(half) loads and minimums with no data-dependent branch (a binary heap's sift-down branches on
/// every comparison). Padding leaves and retired leaves hold <see cref="Retired"/>.
/// <para>
/// EPLB's greedy steps are first-index argmins or argmaxes over float32 keys. A non-negative float's bit pattern
/// orders like the float (+0 included; -0 is folded onto +0 by clearing the sign bit, as the comparison treats them
/// equal), so packing the key bits above the id turns "least key, then least id" into one unsigned comparison
/// (<see cref="Lightest"/>), and complementing the key bits turns "greatest key, then least id" into the same
/// (<see cref="Heaviest"/>). Every key is below 2^63, so the smaller of two is found by the sign of their difference.
/// Keys are never NaN (loads are finite and non-negative; sums and quotients of such floats
/// stay non-negative, infinity included).
/// </para>
/// </summary>
internal static class MinTree
{
    /// <summary>The key of a padding or retired leaf: above every key <see cref="Lightest"/> and <see cref="Heaviest"/> make.</summary>
    public const ulong Retired = long.MaxValue;

    private const uint SignMask = 0x7FFF_FFFF;

    /// <summary>Tree length for <paramref name="leaves"/> leaves (at least 1): twice the next power of two.</summary>
    public static int Length(int leaves) => 2 * (int)BitOperations.RoundUpToPowerOf2((uint)leaves);

    /// <summary>Key that orders least weight first, then least id.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Lightest(float weight, int id) =>
        ((ulong)(BitConverter.SingleToUInt32Bits(weight) & SignMask) << 32) | (uint)id;

    /// <summary>Key that orders greatest weight first, then least id.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Heaviest(float weight, int id) =>
        ((ulong)(~BitConverter.SingleToUInt32Bits(weight) & SignMask) << 32) | (uint)id;

    /// <summary>The id packed in a key's low half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Id(ulong key) => (int)(uint)key;

    /// <summary>The least live key.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Min(ReadOnlySpan<ulong> tree) => tree[1];

    /// <summary>The leaves: fill the first ones, then call <see cref="Build"/>.</summary>
    public static Span<ulong> Leaves(Span<ulong> tree) => tree[(tree.Length / 2)..];

    /// <summary>Fills the leaves past <paramref name="used"/> with the padding key and computes every inner node.</summary>
    public static void Build(Span<ulong> tree, int used)
    {
        var half = tree.Length / 2;
        tree[(half + used)..].Fill(Retired);
        for (var i = half - 1; i >= 1; i--)
        {
            tree[i] = Lesser(tree[2 * i], tree[(2 * i) + 1]);
        }
    }

    /// <summary>Sets leaf <paramref name="leaf"/> to <paramref name="key"/> and replays its path to the root.</summary>
    /// <remarks>The leaf's index is checked once; every index on its path to the root is below it.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Replace(Span<ulong> tree, int leaf, ulong key)
    {
        var i = (tree.Length / 2) + leaf;
        ref var node = ref tree[i];
        ref var root = ref MemoryMarshal.GetReference(tree);
        node = key;
        while (i > 1)
        {
            key = Lesser(key, Unsafe.Add(ref root, i ^ 1));
            i >>= 1;
            Unsafe.Add(ref root, i) = key;
        }
    }

    // The smaller key without a branch (which one wins is data-dependent and mispredicts about half the time): keys are
    // below 2^63, so b - a does not overflow and its sign selects; four dependent operations on the replay's path.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Lesser(ulong a, ulong b)
    {
        var difference = (long)b - (long)a;
        return (ulong)((long)a + (difference & (difference >> 63)));
    }
}
