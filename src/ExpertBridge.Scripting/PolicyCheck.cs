using System.Diagnostics;
using System.Globalization;
using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>The result of <c>policy check F.csx</c>.</summary>
/// <param name="Path">The script's full path.</param>
/// <param name="Success">Compiled, loaded, answered the synthetic case twice without failing, placements valid.</param>
/// <param name="PolicyName">The policy's name, when it loaded.</param>
/// <param name="Description">The header's description.</param>
/// <param name="Diagnostics">Every error and warning as <c>file:line:col: message</c> (the script's and its #load'ed files').</param>
/// <param name="Outcomes">The calls on the synthetic case (none when it did not load).</param>
/// <param name="Summary">One line: what was checked and how it went.</param>
/// <param name="CompileTime">Read, compile and load.</param>
public sealed record PolicyCheckResult(
    string Path,
    bool Success,
    string? PolicyName,
    string Description,
    IReadOnlyList<ScriptDiagnostic> Diagnostics,
    IReadOnlyList<PolicyOutcome> Outcomes,
    string Summary,
    TimeSpan CompileTime)
{
    /// <summary>0 when the check passed, 1 when it did not.</summary>
    public int ExitCode => Success ? 0 : 1;

    /// <summary>What the CLI prints: each diagnostic, then the summary.</summary>
    public IEnumerable<string> Lines => Diagnostics.Select(d => d.ToString()).Append(Summary);
}

/// <summary>
/// <c>policy check</c>: compiles a script (always, with nullable flow analysis, so every warning shows; the script and its library also fill the cache), runs the API
/// guard, loads it into its own context, calls it twice through the safe invoker on a small synthetic case (two
/// nodes, a skewed and drifting load; the second call starts from the first call's placement), validates what it
/// returns, and unloads it.
/// </summary>
public static class PolicyCheck
{
    public static PolicyCheckResult Run(string scriptPath, ScriptingOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(scriptPath);
        options ??= ScriptingOptions.Default;
        options.Validate();
        var logger = options.LoggerFactory.CreateLogger("ExpertBridge.Scripting.PolicyCheck");
        var clock = Stopwatch.StartNew();
        var sources = PolicySourceSet.Read(scriptPath);
        var compiled = PolicyResolver.CreateCompiler(options with { NullableWarnings = true }).Compile(sources, useCache: false, cancellation);
        var path = sources.MainPath;
        var description = sources.Header.Description;
        if (!compiled.Success)
        {
            var errors = compiled.Diagnostics.Count(d => d.IsError);
            return new PolicyCheckResult(path, false, null, description, compiled.Diagnostics, [], $"failed: {path}: {errors} error(s)", clock.Elapsed);
        }

        var (version, error) = PolicyLoader.Load(compiled, options.Options, 1, options.EntryTimeout, logger);
        if (version is null)
        {
            return new PolicyCheckResult(path, false, null, description, [.. compiled.Diagnostics, error!], [], $"failed: {path}: the script did not load", clock.Elapsed);
        }

        var compileTime = clock.Elapsed;
        var name = version.Name;
        using var slot = new PolicySlot(version);
        var invoker = new SafePolicyInvoker(slot, options.DecisionTimeout, logger);
        var synthetic = SyntheticCase.Create();
        var first = invoker.Invoke(synthetic.Context(synthetic.Start, cancellation));
        var second = invoker.Invoke(synthetic.Context(first.Placement, cancellation));
        var ok = first.Kind != PolicyOutcomeKind.Failed && second.Kind != PolicyOutcomeKind.Failed;
        var summary = string.Create(
            CultureInfo.InvariantCulture,
            $"{(ok ? "ok" : "failed")}: {path}: policy '{name}' loaded in {compileTime.TotalMilliseconds:F0} ms; {synthetic.Describe()}: " +
            $"first call {Describe(first)}, imbalance {synthetic.Imbalance(synthetic.Start):F3} -> {synthetic.Imbalance(first.Placement):F3}; second call {Describe(second)}");
        return new PolicyCheckResult(path, ok, name, description, compiled.Diagnostics, [first, second], summary, compileTime);
    }

    private static string Describe(PolicyOutcome o) =>
        o.Kind == PolicyOutcomeKind.Failed ? $"failed ({o.Failure}: {o.Reason})" : $"{o.Kind.ToString().ToLowerInvariant()} ({o.Reason}, {o.Elapsed.TotalMilliseconds:F1} ms)";

    /// <summary>
    /// Three layers of eight experts on two nodes x two devices x three slots (four redundant slots), 48 steps of a
    /// seeded skewed load whose hot experts change halfway; the trivial placement is in force.
    /// </summary>
    private sealed class SyntheticCase
    {
        private const int Layers = 3;
        private const int Experts = 8;
        private const int Steps = 48;

        private SyntheticCase(Topology topology, LoadHistory history, Placement start)
        {
            Topology = topology;
            History = history;
            Start = start;
        }

        public Topology Topology { get; }

        public LoadHistory History { get; }

        public Placement Start { get; }

        public static SyntheticCase Create()
        {
            var topology = Topology.Create(devices: 4, slotsPerDevice: 3, nodes: 2, expertBytes: 1 << 20);
            var history = new LoadHistory(Layers, Experts, Steps);
            var random = new Random(20261128);
            var step = new float[Layers * Experts];
            for (var s = 0; s < Steps; s++)
            {
                for (var l = 0; l < Layers; l++)
                {
                    for (var e = 0; e < Experts; e++)
                    {
                        // Zipf-like popularity; from halfway on the ranking of each layer rotates by two experts.
                        var rank = (e + l + (s >= Steps / 2 ? 2 : 0)) % Experts;
                        var weight = 1.0 / Math.Pow(rank + 1, 1.2);
                        step[(l * Experts) + e] = (float)Math.Round(400 * weight * (0.8 + (0.4 * random.NextDouble())));
                    }
                }

                history.Record(step);
            }

            return new SyntheticCase(topology, history, TrivialPolicy.Build(topology, Layers, Experts));
        }

        public PolicyContext Context(Placement current, CancellationToken cancellation) =>
            new(Topology, History, current, PolicyOptions.Empty, expertGroups: 2, step: Steps, cancellation: cancellation);

        public double Imbalance(Placement placement) => PlacementMetrics.Evaluate(placement, History.WindowSum(Steps)).ImbalanceMean;

        public string Describe() =>
            $"synthetic case {Layers} layers x {Experts} experts on {Topology.Nodes} nodes x {Topology.DevicesPerNode} devices x {Topology.SlotsPerDevice} slots, {Steps} steps";
    }
}
