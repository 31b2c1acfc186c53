using ExpertBridge.Core;

namespace ExpertBridge.Scripting;

/// <summary>What came of one policy call.</summary>
public enum PolicyOutcomeKind
{
    /// <summary>The policy returned a new placement and it passed validation.</summary>
    Applied,

    /// <summary>The policy chose to keep the placement in force.</summary>
    Kept,

    /// <summary>The call failed; the placement in force stays (see <see cref="PolicyOutcome.Failure"/>).</summary>
    Failed,
}

/// <summary>Why a policy call failed.</summary>
public enum PolicyFailureReason
{
    /// <summary>No answer within the time limit (<see cref="ScriptingOptions.DecisionTimeout"/>).</summary>
    Timeout,

    /// <summary>The policy threw.</summary>
    Exception,

    /// <summary>The policy returned a placement that breaks a placement rule.</summary>
    InvalidPlacement,

    /// <summary>An earlier call of the same version is still running after its time limit.</summary>
    Busy,

    /// <summary>The caller's cancellation token fired.</summary>
    Cancelled,
}

/// <summary>
/// The result of one policy call: the placement to use from now on (the new one, or the one in force), and why.
/// </summary>
/// <param name="Kind">Applied, kept, or failed.</param>
/// <param name="Placement">The placement in force after the call.</param>
/// <param name="Reason">The policy's reason, or what went wrong (naming the rule for an invalid placement).</param>
/// <param name="Failure">Set when <paramref name="Kind"/> is <see cref="PolicyOutcomeKind.Failed"/>.</param>
/// <param name="PolicyName">The policy that was called.</param>
/// <param name="PolicyVersion">Its version (1, then one more per reload).</param>
/// <param name="Elapsed">Time from the call until the answer, or until the time limit.</param>
/// <param name="AllowsColocatedReplicas">The applied decision declared co-located replicas (EPLB) and was validated so.</param>
public sealed record PolicyOutcome(
    PolicyOutcomeKind Kind,
    Placement Placement,
    string Reason,
    PolicyFailureReason? Failure,
    string PolicyName,
    int PolicyVersion,
    TimeSpan Elapsed,
    bool AllowsColocatedReplicas = false)
{
    public bool IsApplied => Kind == PolicyOutcomeKind.Applied;

    public override string ToString() => Kind switch
    {
        PolicyOutcomeKind.Failed => $"{PolicyName} v{PolicyVersion}: failed ({Failure}): {Reason}",
        _ => $"{PolicyName} v{PolicyVersion}: {Kind.ToString().ToLowerInvariant()} ({Reason})",
    };
}

/// <summary>Counts of policy calls by outcome and failure reason, since the host started.</summary>
public sealed record PolicyInvocationStats(long Calls, long Applied, long Kept, IReadOnlyDictionary<PolicyFailureReason, long> Failures)
{
    public long Failed => Failures.Values.Sum();

    public long this[PolicyFailureReason reason] => Failures.TryGetValue(reason, out var n) ? n : 0;
}
