namespace ExpertBridge.Core;

/// <summary>Balance of one layer under one placement.</summary>
public readonly record struct LayerBalance(int Layer, double MaxDeviceLoad, double MeanDeviceLoad, int Replicas)
{
    /// <summary>max / mean device load (1 = perfect; 1 when the layer has no load).</summary>
    public double Imbalance => MeanDeviceLoad > 0 ? MaxDeviceLoad / MeanDeviceLoad : 1.0;

    /// <summary>mean / max device load, as vLLM and SGLang log it (1 = perfect).</summary>
    public double Balancedness => MaxDeviceLoad > 0 ? MeanDeviceLoad / MaxDeviceLoad : 1.0;

    /// <summary>BestEP: the perfectly balanced per-device load (total / devices), the bound OmniPlacement's report plots.</summary>
    public double BestEp => MeanDeviceLoad;
}

/// <summary>Balance of every layer, and the summary over layers.</summary>
public sealed record PlacementReport(IReadOnlyList<LayerBalance> Layers)
{
    public double ImbalanceMean => Layers.Average(l => l.Imbalance);

    public double ImbalanceMax => Layers.Max(l => l.Imbalance);

    public double BalancednessMean => Layers.Average(l => l.Balancedness);

    /// <summary>Sum over layers of the busiest device's load: what a step waits for.</summary>
    public double MaxLoadSum => Layers.Sum(l => l.MaxDeviceLoad);

    /// <summary>Sum over layers of BestEP.</summary>
    public double BestEpSum => Layers.Sum(l => l.BestEp);
}

/// <summary>
/// Load metrics with the engines' conventions: a replicated expert's tokens are split evenly over its replicas;
/// per layer imbalance = max device load / mean device load; balancedness = mean / max; BestEP = total / devices.
/// Pure functions; the span overloads allocate nothing.
/// </summary>
public static class PlacementMetrics
{
    /// <summary>
    /// Fills <paramref name="deviceLoads"/> (length = devices) with the load each device carries in <paramref name="layer"/>.
    /// <paramref name="replicaCounts"/> must be the layer's replica counts (see <see cref="Placement.ReplicaCounts"/>).
    /// Loads of experts without a replica are dropped (the validator reports them).
    /// </summary>
    public static void DeviceLoads(Placement placement, int layer, ReadOnlySpan<double> expertLoads, ReadOnlySpan<int> replicaCounts, Span<double> deviceLoads)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var topology = placement.Topology;
        deviceLoads.Clear();
        var row = placement.Layer(layer);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e >= 0 && e < expertLoads.Length && replicaCounts[e] > 0)
            {
                deviceLoads[topology.DeviceOf(s)] += expertLoads[e] / replicaCounts[e];
            }
        }
    }

    /// <summary>Same as the double overload, for float step counts.</summary>
    public static void DeviceLoads(Placement placement, int layer, ReadOnlySpan<float> expertLoads, ReadOnlySpan<int> replicaCounts, Span<double> deviceLoads)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var topology = placement.Topology;
        deviceLoads.Clear();
        var row = placement.Layer(layer);
        for (var s = 0; s < row.Length; s++)
        {
            var e = row[s];
            if (e >= 0 && e < expertLoads.Length && replicaCounts[e] > 0)
            {
                deviceLoads[topology.DeviceOf(s)] += expertLoads[e] / replicaCounts[e];
            }
        }
    }

    /// <summary>Balance of one layer: busiest device, mean device load (= BestEP) and replica total.</summary>
    public static LayerBalance Layer(Placement placement, int layer, ReadOnlySpan<double> expertLoads)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var counts = placement.ReplicaCounts(layer);
        Span<double> devices = placement.Topology.Devices <= 512 ? stackalloc double[placement.Topology.Devices] : new double[placement.Topology.Devices];
        DeviceLoads(placement, layer, expertLoads, counts, devices);
        return Summarise(layer, devices, counts);
    }

    /// <summary>Balance of every layer of <paramref name="load"/> under <paramref name="placement"/>.</summary>
    public static PlacementReport Evaluate(Placement placement, LoadMatrix load)
    {
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentNullException.ThrowIfNull(load);
        if (load.Layers != placement.Layers || load.Experts != placement.LogicalExperts)
        {
            throw new InputException("load", PlacementValidator.RuleShape, $"load is {load.Layers} layers x {load.Experts} experts, the placement is {placement.Layers} x {placement.LogicalExperts}");
        }

        var layers = new LayerBalance[placement.Layers];
        for (var l = 0; l < layers.Length; l++)
        {
            layers[l] = Layer(placement, l, load.Layer(l));
        }

        return new PlacementReport(layers);
    }

    /// <summary>Summarises device loads into a <see cref="LayerBalance"/>.</summary>
    public static LayerBalance Summarise(int layer, ReadOnlySpan<double> deviceLoads, ReadOnlySpan<int> replicaCounts)
    {
        double max = 0, sum = 0;
        foreach (var d in deviceLoads)
        {
            max = Math.Max(max, d);
            sum += d;
        }

        var replicas = 0;
        foreach (var c in replicaCounts)
        {
            replicas += c;
        }

        return new LayerBalance(layer, max, deviceLoads.Length > 0 ? sum / deviceLoads.Length : 0, replicas);
    }
}
