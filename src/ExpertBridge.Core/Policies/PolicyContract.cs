using System.Collections.Concurrent;
using System.Globalization;

namespace ExpertBridge.Core.Policies;

/// <summary>
/// A placement policy: given the load history and the placement in force, decide whether to move experts.
/// Implementations are pure functions of the context: no I/O, no statics, no threads (scripts are held to this at
/// compile time). Built-ins live in <see cref="BuiltInPolicies"/>; scripts in <c>policies/*.csx</c> return one.
/// </summary>
public interface IPlacementPolicy
{
    /// <summary>Short name used in reports (<c>eplb</c>, <c>omniplacement</c>).</summary>
    string Name { get; }

    /// <summary>Returns a new placement, or keep. Must honour <see cref="PolicyContext.Cancellation"/>.</summary>
    PolicyDecision Decide(PolicyContext context);
}

/// <summary>What a policy sees.</summary>
public sealed class PolicyContext
{
    public PolicyContext(Topology topology, IReadOnlyLoadHistory history, Placement current, PolicyOptions? options = null, int expertGroups = 1, IReadOnlyList<long>? layerExpertBytes = null, long step = 0, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(current);
        if (history.Layers != current.Layers || history.Experts != current.LogicalExperts)
        {
            throw new InputException("policy context", PlacementValidator.RuleShape, $"history is {history.Layers}x{history.Experts}, placement is {current.Layers}x{current.LogicalExperts}");
        }

        Topology = topology;
        History = history;
        Current = current;
        Options = options ?? PolicyOptions.Empty;
        ExpertGroups = expertGroups;
        LayerExpertBytes = layerExpertBytes ?? Enumerable.Repeat(topology.ExpertBytes, current.Layers).ToArray();
        Step = step;
        Cancellation = cancellation;
    }

    /// <summary>Nodes, devices, slots.</summary>
    public Topology Topology { get; }

    /// <summary>Per-step loads up to (not including) the current step.</summary>
    public IReadOnlyLoadHistory History { get; }

    /// <summary>The placement in force.</summary>
    public Placement Current { get; }

    /// <summary>Options from the script's header, the config, or the command line.</summary>
    public PolicyOptions Options { get; }

    /// <summary>Expert groups of the model (DeepSeek-V3: 8), for group-limited routing; 1 when unknown.</summary>
    public int ExpertGroups { get; }

    /// <summary>One expert's bytes in each layer (0 when unknown).</summary>
    public IReadOnlyList<long> LayerExpertBytes { get; }

    /// <summary>The step the decision is for.</summary>
    public long Step { get; }

    public int Layers => Current.Layers;

    public int LogicalExperts => Current.LogicalExperts;

    /// <summary>Signalled when the host's time budget for this call runs out.</summary>
    public CancellationToken Cancellation { get; }
}

/// <summary>A policy's answer: a new placement, or keep the one in force.</summary>
public sealed class PolicyDecision
{
    private PolicyDecision(Placement? placement, string reason, bool allowsColocatedReplicas)
    {
        Placement = placement;
        Reason = reason;
        AllowsColocatedReplicas = allowsColocatedReplicas;
    }

    /// <summary>The new placement, or null to keep the current one.</summary>
    public Placement? Placement { get; }

    /// <summary>Why, in a few words (logged by the host).</summary>
    public string Reason { get; }

    public bool IsKeep => Placement is null;

    /// <summary>
    /// True when the policy may place two replicas of one expert on one device (EPLB does): the host validates the
    /// placement with <c>allowColocatedReplicas</c> set. Engines accept such placements; the duplicate slot is wasted.
    /// </summary>
    public bool AllowsColocatedReplicas { get; }

    public static PolicyDecision Keep(string reason = "keep") => new(null, reason, false);

    public static PolicyDecision Apply(Placement placement, string reason = "rebalance", bool allowsColocatedReplicas = false)
    {
        ArgumentNullException.ThrowIfNull(placement);
        return new PolicyDecision(placement, reason, allowsColocatedReplicas);
    }
}

/// <summary>String options with typed getters whose errors name the key and the rule.</summary>
public sealed class PolicyOptions
{
    private readonly Dictionary<string, string> _values;

    // Where reads are recorded: this instance's own record first, then those of the options it was merged from (With),
    // so that the caller who made a set of options can ask which of its keys no policy ever read (Unread).
    private readonly ConcurrentDictionary<string, byte>[] _reads;

    public PolicyOptions(IEnumerable<KeyValuePair<string, string>> values, string source = "policy options")
        : this(values, source, [])
    {
    }

    private PolicyOptions(IEnumerable<KeyValuePair<string, string>> values, string source, ConcurrentDictionary<string, byte>[] inherited)
    {
        ArgumentNullException.ThrowIfNull(values);
        _values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var kv in values)
        {
            _values[kv.Key] = kv.Value;
        }

        Source = source;
        _reads = [new ConcurrentDictionary<string, byte>(StringComparer.OrdinalIgnoreCase), .. inherited.Distinct()];
    }

    public static PolicyOptions Empty { get; } = new([]);

    /// <summary>Where the options came from (a script header, a config file), for messages.</summary>
    public string Source { get; }

    public IReadOnlyDictionary<string, string> Values => _values;

    /// <summary>
    /// These options overlaid with <paramref name="overrides"/> (overrides win). Reads of the result count as reads of
    /// both, for <see cref="Unread"/>. <paramref name="source"/> names the result in messages (default: the overrides').
    /// </summary>
    public PolicyOptions With(PolicyOptions overrides, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        var merged = _values.Concat(overrides._values).GroupBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(g => g.Last());
        return new PolicyOptions(merged, source ?? overrides.Source, [.. _reads, .. overrides._reads]);
    }

    /// <summary>
    /// Keys of these options that nothing has asked for yet (through this instance or one merged from it): after a
    /// policy has been built and has decided, a key left here is one it does not know, typically a misspelt knob.
    /// </summary>
    public IReadOnlyList<string> Unread => [.. _values.Keys.Where(k => !_reads[0].ContainsKey(k)).Order(StringComparer.OrdinalIgnoreCase)];

    public bool Has(string key) => TryGet(key, out _);

    public string GetString(string key, string fallback) => TryGet(key, out var v) ? v : fallback;

    private bool TryGet(string key, out string value)
    {
        foreach (var reads in _reads)
        {
            reads.TryAdd(key, 0);
        }

        return _values.TryGetValue(key, out value!);
    }

    public double GetDouble(string key, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        if (!TryGet(key, out var raw))
        {
            return fallback;
        }

        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
        {
            throw new InputException($"{Source}: {key}", "a number", $"'{raw}' is not a number");
        }

        if (v < min || v > max)
        {
            throw new InputException($"{Source}: {key}", $"{min.ToString(CultureInfo.InvariantCulture)} <= value <= {max.ToString(CultureInfo.InvariantCulture)}", $"got {raw}");
        }

        return v;
    }

    public int GetInt(string key, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!TryGet(key, out var raw))
        {
            return fallback;
        }

        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
        {
            throw new InputException($"{Source}: {key}", "a whole number", $"'{raw}' is not a whole number");
        }

        if (v < min || v > max)
        {
            throw new InputException($"{Source}: {key}", $"{min} <= value <= {max}", $"got {raw}");
        }

        return v;
    }

    public bool GetBool(string key, bool fallback)
    {
        if (!TryGet(key, out var raw))
        {
            return fallback;
        }

        return raw.Trim().ToUpperInvariant() switch
        {
            "TRUE" or "1" or "YES" or "ON" => true,
            "FALSE" or "0" or "NO" or "OFF" => false,
            _ => throw new InputException($"{Source}: {key}", "true or false", $"'{raw}' is not a boolean"),
        };
    }
}
