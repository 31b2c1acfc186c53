using ExpertBridge.Core;

namespace ExpertBridge.Policies.Tests.Scaffolding;

/// <summary>
/// A tiny seeded trace for tests until Core's TraceGenerator lands: per layer a Zipf-like popularity over a random
/// permutation of experts, a mean-reverting random walk on log-popularity (drift), optional abrupt reshuffles of the
/// hot set (switching), and per-step Poisson-like noise (normal approximation).
/// </summary>
internal static class SyntheticTrace
{
    public static LoadTrace Generate(int layers, int experts, int steps, int tokens = 512, int topK = 4, double skew = 1.0, double drift = 0.0, int switchEvery = 0, int seed = 1)
    {
        var random = new Random(seed);
        var logp = new double[layers * experts];
        var walk = new double[layers * experts];
        for (var l = 0; l < layers; l++)
        {
            var layerSkew = skew * (0.7 + (0.6 * random.NextDouble()));
            var perm = Permutation(random, experts);
            for (var e = 0; e < experts; e++)
            {
                logp[(l * experts) + perm[e]] = -layerSkew * Math.Log(e + 1.0);
            }
        }

        var values = new float[steps * layers * experts];
        var weights = new double[experts];
        for (var t = 0; t < steps; t++)
        {
            if (switchEvery > 0 && t > 0 && t % switchEvery == 0)
            {
                for (var l = 0; l < layers; l++)
                {
                    var perm = Permutation(random, experts);
                    var row = logp.AsSpan(l * experts, experts).ToArray();
                    for (var e = 0; e < experts; e++)
                    {
                        logp[(l * experts) + e] = row[perm[e]];
                    }
                }
            }

            for (var l = 0; l < layers; l++)
            {
                double sum = 0;
                for (var e = 0; e < experts; e++)
                {
                    var i = (l * experts) + e;
                    walk[i] = (0.995 * walk[i]) + (drift * Normal(random));
                    weights[e] = Math.Exp(logp[i] + walk[i]);
                    sum += weights[e];
                }

                for (var e = 0; e < experts; e++)
                {
                    var mean = Math.Min(tokens, tokens * topK * weights[e] / sum);
                    var count = Math.Round(mean + (Math.Sqrt(mean) * Normal(random)));
                    values[(((long)t * layers) + l) * experts + e] = (float)Math.Clamp(count, 0, tokens);
                }
            }
        }

        return new LoadTrace(steps, layers, experts, values, "synthetic trace");
    }

    /// <summary>A one-step history holding <paramref name="loads"/> ([layers][experts]).</summary>
    public static LoadHistory History(params double[][] loads)
    {
        var history = new LoadHistory(loads.Length, loads[0].Length, 1);
        history.Record(loads.SelectMany(r => r.Select(v => (float)v)).ToArray().AsSpan());
        return history;
    }

    /// <summary>A history holding every step of <paramref name="trace"/> from <paramref name="start"/> (count steps).</summary>
    public static LoadHistory History(LoadTrace trace, int start, int count)
    {
        var history = new LoadHistory(trace.Layers, trace.Experts, count);
        for (var s = start; s < start + count; s++)
        {
            history.Record(trace.GetStep(s));
        }

        return history;
    }

    private static int[] Permutation(Random random, int n)
    {
        var perm = Enumerable.Range(0, n).ToArray();
        random.Shuffle(perm);
        return perm;
    }

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
