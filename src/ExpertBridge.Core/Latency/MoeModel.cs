namespace ExpertBridge.Core.Latency;

/// <summary>
/// The shape of an MoE model as the latency model needs it. Presets: <c>deepseek-v3</c> (58 MoE layers, 256 routed
/// experts, top-8, hidden 7168, expert intermediate 2048, FP8 weights, FP8 dispatch and BF16 combine as DeepEP does)
/// and <c>small</c> (for tests).
/// </summary>
public sealed record MoeModel(
    string Name,
    int MoeLayers,
    int RoutedExperts,
    int TopK,
    int Hidden,
    int ExpertIntermediate,
    double WeightBytesPerParam,
    double DispatchBytesPerToken,
    double CombineBytesPerToken,
    double NonMoeMillisPerLayer)
{
    /// <summary>Bytes of one expert's weights (gate, up, down).</summary>
    public long ExpertBytes => (long)(3.0 * Hidden * ExpertIntermediate * WeightBytesPerParam);

    /// <summary>
    /// DeepSeek-V3. Non-MoE time per layer (attention, dense parts, norms) for a decode step is a per-layer constant;
    /// 0.05 ms is an order-of-magnitude figure, not a measurement: pass your own with <c>--non-moe-ms</c>.
    /// </summary>
    public static MoeModel DeepSeekV3 { get; } = new("deepseek-v3", 58, 256, 8, 7168, 2048, 1.0, 7168 + (7168 / 128 * 4), 7168 * 2, 0.05);

    /// <summary>A small model for tests (same expert shape family, scaled down).</summary>
    public static MoeModel Small { get; } = new("small", 4, 32, 4, 1024, 512, 1.0, 1024 + 32, 2048, 0.01);

    /// <summary>The presets by name.</summary>
    public static MoeModel FromName(string name) => name.ToUpperInvariant() switch
    {
        "DEEPSEEK-V3" => DeepSeekV3,
        "SMALL" => Small,
        _ => throw new InputException("--model", "one of: deepseek-v3, small", $"unknown model '{name}'"),
    };
}

/// <summary>Link bandwidths for dispatch and combine (one direction, per device).</summary>
public sealed record Interconnect(double IntraNodeGBps, double InterNodeGBps)
{
    /// <summary>
    /// NVLink-class inside a node (397 GB/s one-way peer copy measured on 2x H200, docs/hardware) and a 400 Gb/s
    /// RDMA NIC per GPU across nodes (50 GB/s, the vendor figure, not measured here).
    /// </summary>
    public static Interconnect Default { get; } = new(397, 50);
}
