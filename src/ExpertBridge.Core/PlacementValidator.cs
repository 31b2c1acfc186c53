namespace ExpertBridge.Core;

/// <summary>One broken placement rule, with where it was broken.</summary>
public sealed record PlacementViolation(int Layer, int Slot, string Rule, string Detail)
{
    public override string ToString() =>
        Slot >= 0 ? $"layer {Layer} slot {Slot}: {Detail} (rule: {Rule})" : $"layer {Layer}: {Detail} (rule: {Rule})";
}

/// <summary>
/// The placement rules every consumer relies on: ids in range (or -1 for an empty slot), every logical expert has
/// at least one replica, and no two replicas of one expert share a device unless explicitly allowed.
/// </summary>
public static class PlacementValidator
{
    public const string RuleIdInRange = "expert ids are -1 or in [0, experts)";
    public const string RuleEveryExpertPlaced = "every logical expert has at least one replica";
    public const string RuleNoColocatedReplicas = "no two replicas of one expert on one device";
    public const string RuleShape = "placement shape matches the model";

    /// <summary>Every violation (up to <paramref name="limit"/>), in layer then slot order.</summary>
    public static IReadOnlyList<PlacementViolation> Validate(Placement placement, bool allowColocatedReplicas = false, int limit = 100)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var violations = new List<PlacementViolation>();
        var topology = placement.Topology;
        var seenOnDevice = new int[placement.LogicalExperts];
        var count = new int[placement.LogicalExperts];
        for (var l = 0; l < placement.Layers && violations.Count < limit; l++)
        {
            Array.Clear(count);
            Array.Fill(seenOnDevice, -1);
            var row = placement.Layer(l);
            for (var s = 0; s < row.Length; s++)
            {
                var e = row[s];
                if (e == -1)
                {
                    continue;
                }

                if (e < 0 || e >= placement.LogicalExperts)
                {
                    violations.Add(new PlacementViolation(l, s, RuleIdInRange, $"expert id {e} is out of range (experts: {placement.LogicalExperts})"));
                    continue;
                }

                count[e]++;
                var device = topology.DeviceOf(s);
                if (seenOnDevice[e] == device && !allowColocatedReplicas)
                {
                    violations.Add(new PlacementViolation(l, s, RuleNoColocatedReplicas, $"expert {e} already has a replica on device {device}"));
                }

                seenOnDevice[e] = device;
            }

            for (var e = 0; e < placement.LogicalExperts && violations.Count < limit; e++)
            {
                if (count[e] == 0)
                {
                    violations.Add(new PlacementViolation(l, -1, RuleEveryExpertPlaced, $"expert {e} has no replica"));
                }
            }
        }

        return violations;
    }

    /// <summary>Throws <see cref="InputException"/> naming the first broken rule (and how many others).</summary>
    public static void EnsureValid(Placement placement, string subject = "placement", bool allowColocatedReplicas = false)
    {
        var violations = Validate(placement, allowColocatedReplicas);
        if (violations.Count > 0)
        {
            var first = violations[0];
            var more = violations.Count > 1 ? $" (+{violations.Count - 1} more)" : "";
            var where = first.Slot >= 0 ? $"layer {first.Layer} slot {first.Slot}" : $"layer {first.Layer}";
            throw new InputException(subject, first.Rule, $"{where}: {first.Detail}{more}");
        }
    }

    /// <summary>Throws when <paramref name="placement"/> does not fit a model of this shape and topology.</summary>
    public static void EnsureShape(Placement placement, Topology topology, int layers, int experts, string subject = "placement")
    {
        ArgumentNullException.ThrowIfNull(placement);
        if (placement.Layers != layers || placement.LogicalExperts != experts)
        {
            throw new InputException(subject, RuleShape, $"placement is {placement.Layers} layers x {placement.LogicalExperts} experts, the model is {layers} x {experts}");
        }

        if (placement.Topology.Devices != topology.Devices || placement.Topology.SlotsPerDevice != topology.SlotsPerDevice)
        {
            throw new InputException(subject, RuleShape, $"placement is for {placement.Topology.Devices} devices x {placement.Topology.SlotsPerDevice} slots, the topology has {topology.Devices} x {topology.SlotsPerDevice}");
        }
    }
}
