using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Policies.Tests.Scaffolding;

/// <summary>
/// DeepSeek EPLB's global policy (replicate by largest per-replica load, then balanced packing with equal slot counts),
/// as a yardstick until Core's faithful port lands. May co-locate replicas, as the original does.
/// </summary>
internal sealed class ReferenceEplb : IPlacementPolicy
{
    private readonly int _window;

    public ReferenceEplb(int window = 0) => _window = window;

    public string Name => "eplb";

    public PolicyDecision Decide(PolicyContext context)
    {
        var load = context.History.WindowSum(_window > 0 ? _window : context.History.Count);
        return PolicyDecision.Apply(Fit(context.Topology, load));
    }

    public static Placement Fit(Topology topology, LoadMatrix load)
    {
        var slots = topology.Slots;
        var perDevice = topology.SlotsPerDevice;
        var phy2log = new int[load.Layers * slots];
        for (var l = 0; l < load.Layers; l++)
        {
            var w = load.Layer(l).ToArray();
            var count = Enumerable.Repeat(1, w.Length).ToArray();
            var replicas = Enumerable.Range(0, w.Length).ToList();
            for (var r = w.Length; r < slots; r++)
            {
                var best = 0;
                for (var e = 1; e < w.Length; e++)
                {
                    if (w[e] / count[e] > w[best] / count[best])
                    {
                        best = e;
                    }
                }

                count[best]++;
                replicas.Add(best);
            }

            var order = replicas.OrderByDescending(e => w[e] / count[e]).ToList();
            var packLoad = new double[topology.Devices];
            var fill = new int[topology.Devices];
            foreach (var e in order)
            {
                var pack = -1;
                for (var d = 0; d < topology.Devices; d++)
                {
                    if (fill[d] < perDevice && (pack < 0 || packLoad[d] < packLoad[pack]))
                    {
                        pack = d;
                    }
                }

                phy2log[(l * slots) + (pack * perDevice) + fill[pack]] = e;
                fill[pack]++;
                packLoad[pack] += w[e] / count[e];
            }
        }

        return new Placement(topology, load.Experts, phy2log);
    }
}
