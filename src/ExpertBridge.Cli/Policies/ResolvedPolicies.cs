using ExpertBridge.Core.Policies;

namespace ExpertBridge.Cli.Policies;

/// <summary>
/// The policies one verb resolved, disposed together when the verb ends (script hosts hold load contexts and file
/// watchers; built-ins hold nothing). If one spec fails to resolve, those already resolved are disposed.
/// </summary>
internal sealed class ResolvedPolicies : IDisposable
{
    private readonly List<IPlacementPolicy> _policies;

    private ResolvedPolicies(List<IPlacementPolicy> policies)
    {
        _policies = policies;
    }

    public IReadOnlyList<IPlacementPolicy> Policies => _policies;

    /// <summary>Resolves every spec in order, with the verb's <c>--option</c> values.</summary>
    public static ResolvedPolicies Resolve(IPolicyResolver resolver, IEnumerable<string> specs, PolicyOptions options)
    {
        var resolved = new ResolvedPolicies([]);
        try
        {
            foreach (var spec in specs)
            {
                resolved._policies.Add(resolver.Resolve(spec, options));
            }

            return resolved;
        }
        catch
        {
            resolved.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var policy in _policies)
        {
            (policy as IDisposable)?.Dispose();
        }

        _policies.Clear();
    }
}
