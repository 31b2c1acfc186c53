using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Scripting;

namespace ExpertBridge.Cli.Policies;

/// <summary>
/// The CLI's resolver: a built-in name gives Core's policy itself; a <c>.csx</c> path (or a bare name found as
/// <c>NAME.csx</c> in <see cref="ScriptingOptions.PolicyDirectory"/>) is compiled, guarded and loaded by the scripting
/// host. A script that does not compile or that the API guard refuses is an <see cref="InputException"/> whose
/// subject is the first error's <c>file:line:col</c>.
/// </summary>
internal sealed class ScriptPolicyResolver : IPolicyResolver
{
    private readonly ScriptingOptions _options;

    public ScriptPolicyResolver(ScriptingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    public IPlacementPolicy Resolve(string spec, PolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(options);
        if (!PolicyResolver.IsScriptPath(spec) && BuiltInPolicies.TryCreate(spec) is { } builtIn)
        {
            return builtIn;
        }

        return new ScriptPolicy(PolicyResolver.Open(spec, _options with { Options = options }));
    }
}

/// <summary>
/// A loaded script as an offline verb needs it: calls go through the host's safe invoker (time limit, validation),
/// and a failed call stops the verb. A serving host keeps the placement in force when a policy fails; a replay or a
/// report that did the same would print numbers for a policy that was not running, so here the failure is an
/// <see cref="InputException"/> naming the script, the step and what went wrong (an exception's message names the
/// script line).
/// </summary>
internal sealed class ScriptPolicy : IPlacementPolicy, IDisposable
{
    internal const string RuleDecides = "a policy script answers every decision within its time limit, without throwing, with a valid placement";

    private readonly PolicyHost _host;

    public ScriptPolicy(PolicyHost host)
    {
        _host = host;
    }

    public string Name => _host.Name;

    /// <summary>The script's full path.</summary>
    public string Path => _host.ScriptPath ?? _host.Name;

    public PolicyDecision Decide(PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var outcome = _host.Invoke(context);
        switch (outcome.Kind)
        {
            case PolicyOutcomeKind.Applied:
                return PolicyDecision.Apply(outcome.Placement, outcome.Reason, outcome.AllowsColocatedReplicas);
            case PolicyOutcomeKind.Kept:
                return PolicyDecision.Keep(outcome.Reason);
            default:
                context.Cancellation.ThrowIfCancellationRequested();
                throw new InputException(Path, RuleDecides, $"policy '{outcome.PolicyName}' failed at step {context.Step} ({outcome.Failure}): {outcome.Reason}");
        }
    }

    public void Dispose() => _host.Dispose();
}
