namespace ExpertBridge.Core;

/// <summary>One (layer, slot) whose expert changes between two placements.</summary>
public readonly record struct SlotChange(int Layer, int Slot, int From, int To);

/// <summary>What it takes to go from one placement to another: the slots that change and the bytes to move.</summary>
public sealed class PlacementDiff
{
    private PlacementDiff(IReadOnlyList<SlotChange> changes, long bytesMoved, int[] changesPerLayer)
    {
        Changes = changes;
        BytesMoved = bytesMoved;
        ChangesPerLayer = changesPerLayer;
    }

    /// <summary>Every (layer, slot) whose expert changes, in layer then slot order.</summary>
    public IReadOnlyList<SlotChange> Changes { get; }

    /// <summary>Number of (layer, slot) pairs whose expert changes (a slot that becomes empty moves nothing but counts).</summary>
    public int ExpertsMoved => Changes.Count;

    /// <summary>Bytes to copy: one expert's bytes for every slot that receives an expert.</summary>
    public long BytesMoved { get; }

    /// <summary>Changed slots per layer.</summary>
    public IReadOnlyList<int> ChangesPerLayer { get; }

    /// <summary>Layers with at least one change.</summary>
    public IEnumerable<int> ChangedLayers => Enumerable.Range(0, ChangesPerLayer.Count).Where(l => ChangesPerLayer[l] > 0);

    /// <summary>
    /// Compares <paramref name="from"/> and <paramref name="to"/>; <paramref name="layerBytes"/> gives one expert's bytes per
    /// layer (defaults to the topology's expert size for every layer).
    /// </summary>
    public static PlacementDiff Compute(Placement from, Placement to, IReadOnlyList<long>? layerBytes = null)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        if (from.Layers != to.Layers || from.Slots != to.Slots)
        {
            throw new InputException("placement diff", PlacementValidator.RuleShape, $"cannot compare {from.Layers}x{from.Slots} with {to.Layers}x{to.Slots}");
        }

        var changes = new List<SlotChange>();
        var perLayer = new int[from.Layers];
        long bytes = 0;
        for (var l = 0; l < from.Layers; l++)
        {
            var a = from.Layer(l);
            var b = to.Layer(l);
            var expertBytes = layerBytes is null ? to.Topology.ExpertBytes : layerBytes[l];
            for (var s = 0; s < a.Length; s++)
            {
                if (a[s] != b[s])
                {
                    changes.Add(new SlotChange(l, s, a[s], b[s]));
                    perLayer[l]++;
                    if (b[s] >= 0)
                    {
                        bytes += expertBytes;
                    }
                }
            }
        }

        return new PlacementDiff(changes, bytes, perLayer);
    }

    /// <summary>Counts changed slots without building the change list (the replay's hot path).</summary>
    public static int CountChanges(Placement from, Placement to)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        var a = from.Phy2Log;
        var b = to.Phy2Log;
        if (a.Length != b.Length)
        {
            throw new InputException("placement diff", PlacementValidator.RuleShape, "placements differ in shape");
        }

        var n = 0;
        for (var i = 0; i < a.Length; i++)
        {
            if (a[i] != b[i])
            {
                n++;
            }
        }

        return n;
    }
}
