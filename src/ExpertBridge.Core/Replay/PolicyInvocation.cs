using System.Diagnostics;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Core.Replay;

/// <summary>
/// Calls a policy the way every offline caller (replay, <c>place</c>) must: timed, with failures named after the
/// policy and step, and with the returned placement checked against the model and the placement rules.
/// </summary>
public static class PolicyInvocation
{
    /// <summary>Runs <see cref="IPlacementPolicy.Decide"/> once and measures its wall time.</summary>
    /// <exception cref="InputException">The policy reported a user mistake (passed through unchanged).</exception>
    /// <exception cref="PolicyFailedException">The policy threw anything else.</exception>
    public static PolicyDecision Decide(IPlacementPolicy policy, PolicyContext context, out double millis)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(context);
        var clock = Stopwatch.StartNew();
        PolicyDecision? decision;
        try
        {
            decision = policy.Decide(context);
        }
        catch (Exception ex) when (ex is not InputException && !(ex is OperationCanceledException && context.Cancellation.IsCancellationRequested))
        {
            throw new PolicyFailedException(policy.Name, context.Step, ex);
        }

        millis = clock.Elapsed.TotalMilliseconds;
        return decision ?? throw new PolicyFailedException(policy.Name, context.Step, new InvalidOperationException("Decide returned null instead of a decision"));
    }

    /// <summary>
    /// Throws <see cref="InputException"/> (subject: the policy and step; detail: layer, slot) unless the placement of
    /// <paramref name="decision"/> fits the context's model and topology and keeps every placement rule. Co-located
    /// replicas pass when the caller allows them or the decision declares them (EPLB's packing makes them).
    /// A keep decision has nothing to check.
    /// </summary>
    public static void EnsureValid(IPlacementPolicy policy, PolicyContext context, PolicyDecision decision, bool allowColocatedReplicas)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(decision);
        if (decision.Placement is not { } placement)
        {
            return;
        }

        var subject = $"policy '{policy.Name}' at step {context.Step}";
        PlacementValidator.EnsureShape(placement, context.Topology, context.Layers, context.LogicalExperts, subject);
        PlacementValidator.EnsureValid(placement, subject, allowColocatedReplicas || decision.AllowsColocatedReplicas);
    }
}

/// <summary>A policy threw while deciding (a bug in the policy, not a user mistake): names the policy and the step.</summary>
public sealed class PolicyFailedException : Exception
{
    public PolicyFailedException(string policy, long step, Exception innerException)
        : base($"policy '{policy}' failed at step {step}: {innerException?.GetType().Name}: {innerException?.Message}", innerException)
    {
        Policy = policy;
        Step = step;
    }

    public PolicyFailedException()
        : base("a policy failed")
    {
    }

    public PolicyFailedException(string message)
        : base(message)
    {
    }

    public PolicyFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The policy that failed.</summary>
    public string Policy { get; } = "?";

    /// <summary>The step its decision was for (-1 when unknown).</summary>
    public long Step { get; } = -1;
}
