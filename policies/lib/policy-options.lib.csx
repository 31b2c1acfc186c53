// Script helpers shared by the policies in this directory. Only using-directives and type declarations, so the
// file compiles both as a script library (#load "lib/policy-options.lib.csx") and as ordinary C#.
using System;
using ExpertBridge.Core.Policies;

/// <summary>
/// Runs a policy that reads its knobs from <see cref="PolicyContext.Options"/> (the built-ins do) with a script's
/// <c>Options</c> underneath: the script header's options, then the config's and command line's, then the caller's
/// per-call options (each later source wins).
/// </summary>
public sealed class OptionsOverlayPolicy : IPlacementPolicy
{
    private readonly IPlacementPolicy _inner;
    private readonly PolicyOptions _options;

    public OptionsOverlayPolicy(IPlacementPolicy inner, PolicyOptions options)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        _inner = inner;
        _options = options;
    }

    public string Name => _options.GetString("name", _inner.Name);

    public PolicyDecision Decide(PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var merged = new PolicyContext(
            context.Topology,
            context.History,
            context.Current,
            _options.With(context.Options),
            context.ExpertGroups,
            context.LayerExpertBytes,
            context.Step,
            context.Cancellation);
        return _inner.Decide(merged);
    }
}
