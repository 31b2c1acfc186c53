using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Core.Traces;

namespace ExpertBridge.Policies.Tests;

/// <summary>Small builders for histories, options and traces.</summary>
internal static class Loads
{
    public static PolicyOptions Options(params (string Key, string Value)[] values) =>
        new(values.Select(v => new KeyValuePair<string, string>(v.Key, v.Value)), "test options");

    /// <summary>OmniPlacement fitted once from scratch on the window mean (the static variant's core).</summary>
    public static PolicyOptions Static(params (string Key, string Value)[] values) =>
        Options([("mode", "static"), ("predictor", "mean"), ("scenarios", "0"), .. values]);

    /// <summary>A one-step history holding <paramref name="layers"/> (one row of expert loads per layer).</summary>
    public static LoadHistory History(params double[][] layers)
    {
        var history = new LoadHistory(layers.Length, layers[0].Length, 1);
        history.Record(layers.SelectMany(r => r.Select(v => (float)v)).ToArray().AsSpan());
        return history;
    }

    /// <summary>A history holding steps [start, start + count) of <paramref name="trace"/>.</summary>
    public static LoadHistory History(LoadTrace trace, int start, int count)
    {
        var history = new LoadHistory(trace.Layers, trace.Experts, count);
        for (var s = start; s < start + count; s++)
        {
            history.Record(trace.GetStep(s));
        }

        return history;
    }

    /// <summary>A small generated trace (4 layers x 32 experts unless told otherwise).</summary>
    public static LoadTrace Trace(int steps = 200, double drift = 0, int switchEvery = 0, int seed = 1, int layers = 4, int experts = 32, double skew = 1.2, int tokens = 512) =>
        TraceGenerator.Generate(new TraceOptions
        {
            Layers = layers,
            Experts = experts,
            Steps = steps,
            TokensPerStep = tokens,
            TopK = 4,
            Skew = skew,
            Drift = drift,
            SwitchEvery = switchEvery,
            Seed = seed,
        });

    public static double MaxDeviceLoad(Placement placement, int layer, ReadOnlySpan<double> loads) =>
        PlacementMetrics.Layer(placement, layer, loads).MaxDeviceLoad;

    /// <summary>Every expert that sits on the same device before and after is in the same slot.</summary>
    public static void AssertUnchangedExpertsStay(Placement before, Placement after)
    {
        var slots = before.Topology.SlotsPerDevice;
        for (var l = 0; l < before.Layers; l++)
        {
            var a = before.Layer(l);
            var b = after.Layer(l);
            for (var s = 0; s < a.Length; s++)
            {
                var e = a[s];
                if (e < 0 || b[s] == e)
                {
                    continue;
                }

                var device = s / slots;
                Assert.False(b.Slice(device * slots, slots).Contains(e), $"layer {l}: expert {e} stayed on device {device} but left slot {s}");
            }
        }
    }
}
