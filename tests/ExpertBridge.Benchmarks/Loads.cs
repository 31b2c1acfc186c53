using ExpertBridge.Core;

namespace ExpertBridge.Benchmarks;

/// <summary>Seeded synthetic loads for benchmark setups.</summary>
internal static class Loads
{
    /// <summary>
    /// Per layer a shuffled Zipf profile tokens / rank^s with s drawn in [0.6, 1.4] (hot experts an order of magnitude
    /// above cold ones, skew differing by layer), rounded to whole tokens. <paramref name="tokens"/> is the hottest
    /// expert's count.
    /// </summary>
    public static LoadMatrix SkewedPerLayer(int seed, int layers, int experts, double tokens)
    {
        var rng = new Random(seed);
        var values = new double[layers * experts];
        var ranks = new int[experts];
        for (var l = 0; l < layers; l++)
        {
            for (var e = 0; e < experts; e++)
            {
                ranks[e] = e + 1;
            }

            rng.Shuffle(ranks);
            var s = 0.6 + (0.8 * rng.NextDouble());
            for (var e = 0; e < experts; e++)
            {
                values[(l * experts) + e] = Math.Round(tokens * Math.Pow(ranks[e], -s));
            }
        }

        return new LoadMatrix(layers, experts, values, "benchmark load");
    }

    /// <summary>
    /// <paramref name="load"/> with every count scaled by an independent factor in [1 - drift, 1 + drift]: the previous
    /// window of a slowly drifting workload.
    /// </summary>
    public static LoadMatrix Drifted(LoadMatrix load, int seed, double drift)
    {
        var rng = new Random(seed);
        var values = load.Values.ToArray();
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Math.Round(values[i] * (1 + (drift * ((2 * rng.NextDouble()) - 1))));
        }

        return new LoadMatrix(load.Layers, load.Experts, values, "benchmark load");
    }
}
