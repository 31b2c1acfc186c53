namespace ExpertBridge.Core.Policies;

/// <summary>
/// The placement engines start from: slot i holds expert i; redundant slot E + j holds expert j mod E (as vLLM
/// starts). Its decision always returns that placement, so it never adapts: the baseline for everything else.
/// </summary>
public sealed class TrivialPolicy : IPlacementPolicy
{
    public string Name => "trivial";

    public PolicyDecision Decide(PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var placement = Build(context.Topology, context.Layers, context.LogicalExperts);
        return placement.Equals(context.Current) ? PolicyDecision.Keep("trivial placement already in force") : PolicyDecision.Apply(placement, "trivial placement");
    }

    /// <summary>The trivial placement for <paramref name="layers"/> layers of <paramref name="experts"/> experts.</summary>
    public static Placement Build(Topology topology, int layers, int experts)
    {
        ArgumentNullException.ThrowIfNull(topology);
        RequireEnoughSlots(topology, experts);
        var slots = topology.Slots;
        var phy2log = new int[layers * slots];
        for (var l = 0; l < layers; l++)
        {
            for (var s = 0; s < slots; s++)
            {
                phy2log[(l * slots) + s] = s % experts;
            }
        }

        return new Placement(topology, experts, phy2log);
    }

    /// <summary>Throws unless every logical expert can get a slot.</summary>
    public static void RequireEnoughSlots(Topology topology, int experts)
    {
        ArgumentNullException.ThrowIfNull(topology);
        if (topology.Slots < experts)
        {
            throw new InputException("--slots-per-device", "devices x slots-per-device >= experts", $"{topology.Devices} x {topology.SlotsPerDevice} = {topology.Slots} slots cannot hold {experts} experts");
        }
    }
}
