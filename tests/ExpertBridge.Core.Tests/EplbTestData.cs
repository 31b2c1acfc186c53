using System.Text.Json;

namespace ExpertBridge.Core.Tests;

/// <summary>Inputs shared by the EPLB and minimal-movement tests: the published examples, golden files, random loads.</summary>
internal static class EplbTestData
{
    private static readonly JsonSerializerOptions s_json = new() { PropertyNameCaseInsensitive = true };

    /// <summary>The weights of DeepSeek's README example (2 layers x 12 experts).</summary>
    public static LoadMatrix Readme() => LoadMatrix.FromRows(
    [
        [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
        [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
    ]);

    /// <summary>FlashLB's counter-example (vLLM PR #37656): 8 experts, 8 devices x 2 slots.</summary>
    public static LoadMatrix FlashLb() => LoadMatrix.FromRows([[600, 560, 120, 120, 20, 10, 10, 10]]);

    /// <summary>
    /// Skewed loads: per layer a random permutation of Zipf weights tokens / rank^skew (skew itself varies by layer),
    /// rounded to whole tokens, so hot experts carry an order of magnitude more than cold ones.
    /// </summary>
    public static LoadMatrix Zipf(Random rng, int layers, int experts, double tokens = 100_000)
    {
        var values = new double[layers * experts];
        var ranks = Enumerable.Range(1, experts).ToArray();
        for (var l = 0; l < layers; l++)
        {
            var skew = 0.6 + (rng.NextDouble() * 0.8);
            rng.Shuffle(ranks);
            for (var e = 0; e < experts; e++)
            {
                values[(l * experts) + e] = Math.Floor(tokens / Math.Pow(ranks[e], skew));
            }
        }

        return new LoadMatrix(layers, experts, values);
    }

    /// <summary>Small whole-number loads in [0, high): many ties.</summary>
    public static LoadMatrix SmallIntegers(Random rng, int layers, int experts, int high)
    {
        var values = new double[layers * experts];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = rng.Next(high);
        }

        return new LoadMatrix(layers, experts, values);
    }

    /// <summary>One case computed by DeepSeek's reference implementation (see Data/reference/make_eplb_cases.py).</summary>
    public sealed record ReferenceCase(string Name, int Replicas, int Groups, int Nodes, int Devices, double[][] Load, int[][] Phy2Log, int[][] LogCnt)
    {
        public override string ToString() => Name;
    }

    /// <summary>One libstdc++ sort result (see Data/reference/make_sort_cases.py).</summary>
    public sealed record SortCase(int Depth, double[] Keys, int[] Order);

    public static IReadOnlyList<ReferenceCase> ReferenceCases() => ReadCases<ReferenceCase>("eplb_reference_cases.json");

    public static IReadOnlyList<SortCase> SortCases() => ReadCases<SortCase>("torch_sort_cases.json");

    private static List<T> ReadCases<T>(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Data", file);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").Deserialize<List<T>>(s_json)
            ?? throw new InvalidDataException($"{path} has no cases");
    }
}
