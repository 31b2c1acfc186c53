namespace ExpertBridge.Core.Latency;

/// <summary>Latency of one step under one placement: the sum over MoE layers of the slowest device, plus non-MoE time.</summary>
public readonly record struct StepLatency(double Millis, double MoeMillis, double ComputeMillisOfSlowest, double CommMillisOfSlowest);

/// <summary>
/// Turns a placement and one step's routed tokens into step latency (docs/latency-model.md):
/// per MoE layer, each device's time = its expert compute (the calibrated per-expert FFN time for the tokens each of
/// its slots receives; a replicated expert's tokens split over its replicas as <see cref="Dispatch"/> says (evenly by
/// default); a slot with no tokens is skipped; experts run back to back: each costs <see cref="GemmTable.BackToBackMillis"/>, and one of them the
/// single-call <see cref="GemmTable.Millis"/>) plus
/// dispatch and combine (the token bytes it receives from other devices, over NVLink-class bandwidth inside a node
/// and network bandwidth across nodes; tokens start spread evenly over devices, as with data-parallel attention);
/// the layer waits for its slowest device; the step adds a per-layer non-MoE constant.
/// Pure and allocation-free per call once constructed (scratch buffers are per instance: not thread-safe).
/// </summary>
public sealed class LatencyModel
{
    private readonly double _shapeScale;
    private readonly ReplicaSplitter _splitter;
    private double[] _slotTokens = [];
    private double[] _compute = [];
    private double[] _tokens = [];
    private double[] _follow = [];
    private int[] _active = [];

    public LatencyModel(MoeModel model, GemmTable table, Interconnect interconnect, ReplicaDispatch dispatch = ReplicaDispatch.Even)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(interconnect);
        Model = model;
        Table = table;
        Interconnect = interconnect;
        _splitter = new ReplicaSplitter(dispatch);

        // A table measured for another expert shape is scaled by weight size (both the memory-bound and the
        // compute-bound regime scale with hidden x intermediate).
        _shapeScale = table.Hidden > 0 && table.Intermediate > 0
            ? (double)model.Hidden * model.ExpertIntermediate / ((double)table.Hidden * table.Intermediate)
            : 1.0;
    }

    public MoeModel Model { get; }

    public GemmTable Table { get; }

    public Interconnect Interconnect { get; }

    /// <summary>How a replicated expert's tokens are split over its replicas.</summary>
    public ReplicaDispatch Dispatch => _splitter.Dispatch;

    /// <summary>Latency of one step: <paramref name="stepCounts"/> is [layers, experts] tokens routed to each logical expert.</summary>
    public StepLatency Step(Placement placement, ReadOnlySpan<float> stepCounts)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var experts = placement.LogicalExperts;
        if (stepCounts.Length != placement.Layers * experts)
        {
            throw new InputException("step loads", PlacementValidator.RuleShape, $"expected {placement.Layers * experts} values, got {stepCounts.Length}");
        }

        double total = 0, moe = 0, slowCompute = 0, slowComm = 0;
        for (var l = 0; l < placement.Layers; l++)
        {
            var (layerMs, compute, comm) = Layer(placement.Topology, placement.Layer(l), stepCounts.Slice(l * experts, experts));
            moe += layerMs;
            slowCompute += compute;
            slowComm += comm;
            total += layerMs + Model.NonMoeMillisPerLayer;
        }

        return new StepLatency(total, moe, slowCompute, slowComm);
    }

    /// <summary>
    /// BestEP, as OmniPlacement's report defines it: the same tokens per layer routed uniformly over the experts (every
    /// expert gets total / experts), each device holding experts / devices of them, no replicas.
    /// </summary>
    public StepLatency BestEp(Topology topology, int experts, ReadOnlySpan<float> stepCounts)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var layers = stepCounts.Length / experts;
        double total = 0, moe = 0, slowCompute = 0, slowComm = 0;
        var perDevice = (double)experts / topology.Devices;
        for (var l = 0; l < layers; l++)
        {
            double sum = 0;
            foreach (var c in stepCounts.Slice(l * experts, experts))
            {
                sum += c;
            }

            var perExpert = sum / experts;
            var compute = perDevice <= 1
                ? perDevice * Table.Millis(perExpert) * _shapeScale
                : (((perDevice - 1) * Table.BackToBackMillis(perExpert)) + Table.Millis(perExpert)) * _shapeScale;
            var comm = CommMillis(topology, sum / topology.Devices);
            var layerMs = compute + comm;
            moe += layerMs;
            slowCompute += compute;
            slowComm += comm;
            total += layerMs + Model.NonMoeMillisPerLayer;
        }

        return new StepLatency(total, moe, slowCompute, slowComm);
    }

    /// <summary>
    /// The step's own routed load spread perfectly evenly over the devices, per layer: every expert once (no
    /// replicas), the layer's summed expert time (each expert's back-to-back time for its tokens) divided by the
    /// devices, plus one lone-call surcharge (the experts' mean), plus the dispatch and combine of an even share of the
    /// tokens. BestEP as the reference defines it (total layer load / ranks), in time rather than tokens. No placement
    /// under either dispatch beats it as long as splitting an expert's tokens never costs less in total (true of the
    /// calibrated tables: a flat then rising cost). When every expert is active, <see cref="BestEp"/>'s uniform routing
    /// sits below it by what the routing's own skew costs (hot experts' compute-bound tokens), which no placement can
    /// remove; idle experts cost nothing here, so with many of them the bound can fall below BestEP.
    /// </summary>
    public StepLatency BalancedBound(Topology topology, int experts, ReadOnlySpan<float> stepCounts)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var layers = stepCounts.Length / experts;
        double total = 0, moe = 0, slowCompute = 0, slowComm = 0;
        for (var l = 0; l < layers; l++)
        {
            double tokens = 0, single = 0, follow = 0;
            var active = 0;
            foreach (var c in stepCounts.Slice(l * experts, experts))
            {
                if (c > 0)
                {
                    tokens += c;
                    single += Table.Millis(c);
                    follow += Table.BackToBackMillis(c);
                    active++;
                }
            }

            var compute = active == 0 ? 0 : ((follow / topology.Devices) + ((single - follow) / active)) * _shapeScale;
            var comm = CommMillis(topology, tokens / topology.Devices);
            moe += compute + comm;
            slowCompute += compute;
            slowComm += comm;
            total += compute + comm + Model.NonMoeMillisPerLayer;
        }

        return new StepLatency(total, moe, slowCompute, slowComm);
    }

    /// <summary>
    /// Compute time of one device that runs experts with <paramref name="slotTokens"/> tokens each (zero-token slots
    /// are skipped; experts run back to back, see <see cref="GemmTable.BackToBackMillis"/>).
    /// </summary>
    public double DeviceComputeMillis(ReadOnlySpan<double> slotTokens)
    {
        double sum = 0, follow = 0;
        var active = 0;
        foreach (var t in slotTokens)
        {
            if (t > 0)
            {
                sum += Table.Millis(t);
                follow += Table.BackToBackMillis(t);
                active++;
            }
        }

        return GemmTable.BackToBack(sum, follow, active) * _shapeScale;
    }

    /// <summary>Tokens per step: the routed token-expert pairs of the first layer over top-k.</summary>
    public double TokensPerStep(ReadOnlySpan<float> stepCounts, int experts)
    {
        double sum = 0;
        foreach (var c in stepCounts[..experts])
        {
            sum += c;
        }

        return sum / Model.TopK;
    }

    /// <summary>
    /// The tokens each slot of <paramref name="placement"/>'s first <paramref name="layers"/> layers serves for
    /// <paramref name="stepCounts"/> under <see cref="Dispatch"/>, in whole tokens: [layers * slots].
    /// </summary>
    public int[] SlotTokens(Placement placement, ReadOnlySpan<float> stepCounts, int layers)
    {
        ArgumentNullException.ThrowIfNull(placement);
        var slots = placement.Slots;
        var experts = placement.LogicalExperts;
        var result = new int[layers * slots];
        var tokens = new double[slots];
        for (var l = 0; l < layers; l++)
        {
            _splitter.Split(placement.Topology, placement.Layer(l), stepCounts.Slice(l * experts, experts), tokens, integral: true);
            for (var s = 0; s < slots; s++)
            {
                result[(l * slots) + s] = (int)tokens[s];
            }
        }

        return result;
    }

    private (double LayerMillis, double Compute, double Comm) Layer(Topology topology, ReadOnlySpan<int> row, ReadOnlySpan<float> counts)
    {
        var devices = topology.Devices;
        if (_slotTokens.Length != row.Length)
        {
            _slotTokens = new double[row.Length];
        }

        _splitter.Split(topology, row, counts, _slotTokens);
        if (_compute.Length != devices)
        {
            _compute = new double[devices];
            _tokens = new double[devices];
            _follow = new double[devices];
            _active = new int[devices];
        }

        Array.Clear(_compute);
        Array.Clear(_tokens);
        Array.Clear(_follow);
        Array.Clear(_active);
        for (var s = 0; s < row.Length; s++)
        {
            var t = _slotTokens[s];
            if (t <= 0)
            {
                continue;
            }

            var d = topology.DeviceOf(s);
            _compute[d] += Table.Millis(t);
            _follow[d] += Table.BackToBackMillis(t);
            _tokens[d] += t;
            _active[d]++;
        }

        double worst = 0, worstCompute = 0, worstComm = 0;
        for (var d = 0; d < devices; d++)
        {
            var compute = GemmTable.BackToBack(_compute[d], _follow[d], _active[d]) * _shapeScale;
            var comm = CommMillis(topology, _tokens[d]);
            var time = compute + comm;
            if (time > worst)
            {
                worst = time;
                worstCompute = compute;
                worstComm = comm;
            }
        }

        return (worst, worstCompute, worstComm);
    }

    // Dispatch + combine for a device that receives `tokens` token-expert pairs; tokens start spread evenly over devices.
    private double CommMillis(Topology topology, double tokens)
    {
        var p = (double)topology.Devices;
        var intraShare = (topology.DevicesPerNode - 1) / p;
        var interShare = (p - topology.DevicesPerNode) / p;
        var bytes = tokens * (Model.DispatchBytesPerToken + Model.CombineBytesPerToken);
        return (bytes * intraShare / (Interconnect.IntraNodeGBps * 1e6)) + (bytes * interShare / (Interconnect.InterNodeGBps * 1e6));
    }
}
