using System.Globalization;
using Prometheus;

namespace ExpertBridge.Host;

/// <summary>
/// The bridge's Prometheus metrics, in a registry of its own (several bridges in one process do not collide), served
/// in the text format on a loopback port when one is configured.
/// </summary>
public sealed class BridgeMetrics : IDisposable
{
    private readonly CollectorRegistry _registry;
    private readonly Gauge _balancedness;
    private readonly Gauge _imbalance;
    private readonly Gauge _layerImbalance;
    private readonly Gauge _epoch;
    private readonly Counter _steps;
    private readonly Counter _stepsDropped;
    private readonly Counter _rebalances;
    private readonly Counter _expertsMoved;
    private readonly Counter _bytesMoved;
    private readonly Counter _layersCommitted;
    private readonly Histogram _policySeconds;
    private readonly Counter _reloads;
    private readonly Counter _failures;
    private readonly string[] _layerLabels;
    private MetricServer? _server;

    public BridgeMetrics(int layers)
    {
        _registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);
        _balancedness = f.CreateGauge("expertbridge_balancedness", "Mean over layers of mean/max device load in the window, under the mapping in force (1 = perfect).");
        _imbalance = f.CreateGauge("expertbridge_imbalance", "Mean over layers of max/mean device load in the window, under the mapping in force (1 = perfect).");
        _layerImbalance = f.CreateGauge("expertbridge_layer_imbalance", "Max/mean device load of one layer in the window, under the mapping in force.", "layer");
        _epoch = f.CreateGauge("expertbridge_epoch", "Mapping epoch: bumped at every step boundary that commits a layer.");
        _steps = f.CreateCounter("expertbridge_steps_total", "Steps recorded.");
        _stepsDropped = f.CreateCounter("expertbridge_steps_dropped_total", "Recorded steps the worker could not fold into the history in time (the ring overflowed).");
        _rebalances = f.CreateCounter("expertbridge_rebalances_total", "Rebalances whose new placement was staged for commit.");
        _expertsMoved = f.CreateCounter("expertbridge_experts_moved_total", "Slots that received another expert (committed).");
        _bytesMoved = f.CreateCounter("expertbridge_bytes_moved_total", "Expert weight bytes copied into slots (committed).");
        _layersCommitted = f.CreateCounter("expertbridge_layers_committed_total", "Layers whose new mapping was committed at a step boundary.");
        _policySeconds = f.CreateHistogram("expertbridge_policy_seconds", "Time of one policy decision.", new HistogramConfiguration
        {
            Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        });
        _reloads = f.CreateCounter("expertbridge_policy_reloads_total", "Successful policy reloads.");
        _failures = f.CreateCounter("expertbridge_failures_total", "Failures by reason; each kept the mapping in force.", "reason");
        _layerLabels = Enumerable.Range(0, layers).Select(l => l.ToString(CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>The registry, for exporters of the embedding application.</summary>
    public CollectorRegistry Registry => _registry;

    /// <summary>The URL served, or null when no port is configured.</summary>
    public Uri? Endpoint { get; private set; }

    /// <summary>Serves <c>http://host:port/metrics</c>; host must be a loopback address (the config enforces it).</summary>
    public void Serve(string host, int port)
    {
        var hostname = host == "::1" ? "[::1]" : host;
        var server = new MetricServer(hostname, port, "metrics/", _registry);
        try
        {
            server.Start();
        }
        catch (System.Net.HttpListenerException ex)
        {
            server.Dispose();
            throw new Core.InputException("metrics.port", "a free loopback port", $"cannot listen on {hostname}:{port.ToString(CultureInfo.InvariantCulture)}: {ex.Message}");
        }

        _server = server;
        Endpoint = new Uri($"http://{hostname}:{port.ToString(CultureInfo.InvariantCulture)}/metrics");
    }

    /// <summary>The metrics in the Prometheus text format.</summary>
    public string ExportText()
    {
        using var stream = new MemoryStream();
        _registry.CollectAndExportAsTextAsync(stream).GetAwaiter().GetResult();
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    internal void Balance(Core.PlacementReport report)
    {
        _balancedness.Set(report.BalancednessMean);
        _imbalance.Set(report.ImbalanceMean);
        foreach (var l in report.Layers)
        {
            _layerImbalance.WithLabels(_layerLabels[l.Layer]).Set(l.Imbalance);
        }
    }

    internal void StepsTotal(long total) => _steps.IncTo(total);

    internal void StepsDropped(long n) => _stepsDropped.Inc(n);

    internal void Rebalanced() => _rebalances.Inc();

    internal void Committed(long epoch, int layers, long experts, long bytes)
    {
        _epoch.Set(epoch);
        _layersCommitted.Inc(layers);
        _expertsMoved.Inc(experts);
        _bytesMoved.Inc(bytes);
    }

    internal void PolicyTime(TimeSpan elapsed) => _policySeconds.Observe(elapsed.TotalSeconds);

    internal void Reloads(long total) => _reloads.IncTo(total);

    internal void Failure(string reason) => _failures.WithLabels(reason).Inc();

    public void Dispose()
    {
        _server?.Dispose();
        _server = null;
    }
}
