using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Tests;

/// <summary>
/// The EPLB port as it stood before its speed work (commit 3e93dde): binary heaps of (float key, id) entries compared
/// field by field, a fresh pass per step. Kept only as the oracle that <see cref="EplbOptimisedPathTests"/> compares
/// <see cref="Eplb.Rebalance(LoadMatrix, int, int, int, int)"/> against; the sort is <see cref="TorchCpuSort"/>, which
/// has its own golden cases.
/// </summary>
internal static class EplbStraightforward
{
    public sealed record Result(int[] Phy2Log, int[] ReplicaRank, int[] LogicalCount);

    public static Result Rebalance(LoadMatrix load, int replicas, int groups, int nodes, int devices)
    {
        var experts = load.Experts;
        if (groups % nodes != 0)
        {
            groups = 1;
            nodes = 1;
        }

        var phy2log = new int[load.Layers * replicas];
        var rank = new int[load.Layers * replicas];
        var count = new int[load.Layers * experts];
        var size = experts / groups;
        var perNode = experts / nodes;
        var replicasPerNode = replicas / nodes;
        var devicesPerNode = devices / nodes;
        var slots = replicas / devices;
        for (var layer = 0; layer < load.Layers; layer++)
        {
            var weight = new float[experts];
            for (var e = 0; e < experts; e++)
            {
                weight[e] = (float)load[layer, e];
            }

            var groupWeight = new float[groups];
            for (var g = 0; g < groups; g++)
            {
                var sum = 0.0;
                for (var k = 0; k < size; k++)
                {
                    sum += weight[(g * size) + k];
                }

                groupWeight[g] = (float)sum;
            }

            var (groupPack, groupRank) = BalancedPacking(groupWeight, nodes);
            var log2mlog = new int[experts];
            var mlog2log = new int[experts];
            for (var g = 0; g < groups; g++)
            {
                var baseId = ((groupPack[g] * (groups / nodes)) + groupRank[g]) * size;
                for (var k = 0; k < size; k++)
                {
                    log2mlog[(g * size) + k] = baseId + k;
                    mlog2log[baseId + k] = (g * size) + k;
                }
            }

            var mlogCount = new int[experts];
            for (var node = 0; node < nodes; node++)
            {
                var offset = node * perNode;
                var nodeWeight = new float[perNode];
                for (var j = 0; j < perNode; j++)
                {
                    nodeWeight[j] = weight[mlog2log[offset + j]];
                }

                var (phy2mlog, phyRank, nodeCount) = ReplicateExperts(nodeWeight, replicasPerNode);
                nodeCount.CopyTo(mlogCount, offset);
                var phyWeight = new float[replicasPerNode];
                for (var i = 0; i < replicasPerNode; i++)
                {
                    phyWeight[i] = nodeWeight[phy2mlog[i]] / nodeCount[phy2mlog[i]];
                }

                var (packIndex, rankInPack) = BalancedPacking(phyWeight, devicesPerNode);
                var pphy2phy = new int[replicasPerNode];
                for (var i = 0; i < replicasPerNode; i++)
                {
                    pphy2phy[(packIndex[i] * slots) + rankInPack[i]] = i;
                }

                var start = (layer * replicas) + (node * replicasPerNode);
                for (var p = 0; p < replicasPerNode; p++)
                {
                    var i = pphy2phy[p];
                    phy2log[start + p] = mlog2log[offset + phy2mlog[i]];
                    rank[start + p] = phyRank[i];
                }
            }

            for (var e = 0; e < experts; e++)
            {
                count[(layer * experts) + e] = mlogCount[log2mlog[e]];
            }
        }

        return new Result(phy2log, rank, count);
    }

    private static (int[] PackIndex, int[] RankInPack) BalancedPacking(float[] weights, int packs)
    {
        var n = weights.Length;
        var perPack = n / packs;
        var packIndex = new int[n];
        var rankInPack = new int[n];
        if (perPack == 1)
        {
            for (var i = 0; i < n; i++)
            {
                packIndex[i] = i;
            }

            return (packIndex, rankInPack);
        }

        var order = new SortEntry[n];
        for (var i = 0; i < n; i++)
        {
            order[i] = new SortEntry(weights[i], i);
        }

        TorchCpuSort.SortDescending(order);
        var heap = new SortEntry[packs];
        for (var p = 0; p < packs; p++)
        {
            heap[p] = new SortEntry(0f, p);
        }

        var live = packs;
        var filled = new int[packs];
        for (var k = 0; k < n; k++)
        {
            var item = order[k].Item;
            var pack = heap[0].Item;
            packIndex[item] = pack;
            rankInPack[item] = filled[pack];
            heap[0].Key += weights[item];
            if (++filled[pack] == perPack)
            {
                heap[0] = heap[--live];
            }

            if (live > 0)
            {
                SiftDown(heap.AsSpan(0, live), lightestFirst: true);
            }
        }

        return (packIndex, rankInPack);
    }

    private static (int[] Phy2Log, int[] Rank, int[] Count) ReplicateExperts(float[] weights, int replicas)
    {
        var experts = weights.Length;
        var phy2log = new int[replicas];
        var rank = new int[replicas];
        var count = new int[experts];
        var heap = new SortEntry[experts];
        for (var e = 0; e < experts; e++)
        {
            phy2log[e] = e;
            count[e] = 1;
            heap[e] = new SortEntry(weights[e], e);
        }

        for (var i = (experts / 2) - 1; i >= 0; i--)
        {
            SiftDown(heap, lightestFirst: false, i);
        }

        for (var i = experts; i < replicas; i++)
        {
            var e = heap[0].Item;
            phy2log[i] = e;
            rank[i] = count[e];
            count[e]++;
            heap[0].Key = weights[e] / count[e];
            SiftDown(heap, lightestFirst: false);
        }

        return (phy2log, rank, count);
    }

    private static bool Before(SortEntry a, SortEntry b, bool lightestFirst) =>
        (lightestFirst ? a.Key < b.Key : a.Key > b.Key) || (a.Key == b.Key && a.Item < b.Item);

    private static void SiftDown(Span<SortEntry> heap, bool lightestFirst, int i = 0)
    {
        var entry = heap[i];
        while (true)
        {
            var child = (2 * i) + 1;
            if (child >= heap.Length)
            {
                break;
            }

            if (child + 1 < heap.Length && Before(heap[child + 1], heap[child], lightestFirst))
            {
                child++;
            }

            if (!Before(heap[child], entry, lightestFirst))
            {
                break;
            }

            heap[i] = heap[child];
            i = child;
        }

        heap[i] = entry;
    }
}
