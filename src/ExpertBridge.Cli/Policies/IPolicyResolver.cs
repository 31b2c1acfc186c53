using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Cli.Policies;

/// <summary>
/// Turns a <c>--policy</c> value into a policy. The one seam between the verbs and where policies come from:
/// <see cref="BuiltInPolicyResolver"/> knows Core's built-ins; <see cref="ScriptPolicyResolver"/> (the CLI's default)
/// adds <c>.csx</c> scripts.
/// </summary>
internal interface IPolicyResolver
{
    /// <summary>
    /// The policy <paramref name="spec"/> names; throws <see cref="InputException"/> with subject <c>--policy</c> (or
    /// a script's <c>file:line:col</c>) when none. <paramref name="options"/> are the verb's <c>--option</c> values:
    /// a script's top level sees them over its header's. The caller disposes a returned policy that is
    /// <see cref="IDisposable"/> (see <see cref="ResolvedPolicies"/>).
    /// </summary>
    IPlacementPolicy Resolve(string spec, PolicyOptions options);
}

/// <summary>Resolves the policies compiled into Core (<see cref="BuiltInPolicies"/>).</summary>
internal sealed class BuiltInPolicyResolver : IPolicyResolver
{
    public IPlacementPolicy Resolve(string spec, PolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var policy = BuiltInPolicies.TryCreate(spec);
        if (policy is not null)
        {
            return policy;
        }

        var names = string.Join(", ", BuiltInPolicies.Names.Order(StringComparer.Ordinal));
        if (spec.EndsWith(".csx", StringComparison.OrdinalIgnoreCase))
        {
            throw new InputException("--policy", $"a built-in policy ({names})", $"'{spec}' is a policy script, and this resolver knows built-ins only");
        }

        throw new InputException("--policy", $"a built-in policy ({names}) or a .csx script", $"unknown policy '{spec}'");
    }
}
