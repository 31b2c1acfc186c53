using ExpertBridge.Core;
using ExpertBridge.Core.Policies;

namespace ExpertBridge.Host;

/// <summary>A built-in policy by name; reloading builds a fresh instance.</summary>
internal sealed class BuiltInPolicySource : IPolicySource
{
    private readonly string _name;
    private IPlacementPolicy _current;
    private long _reloads;

    public BuiltInPolicySource(string name, string subject)
    {
        _name = name;
        _current = BuiltInPolicies.TryCreate(name)
            ?? throw new InputException(subject, $"a built-in policy ({string.Join(", ", BuiltInPolicies.Names.Order(StringComparer.Ordinal))}) or a .csx script", $"unknown policy '{name}'");
    }

    public string Description => $"built-in '{_name}'";

    public long Reloads => Interlocked.Read(ref _reloads);

    public long ReloadFailures => 0;

    public IPlacementPolicy Current => Volatile.Read(ref _current);

    public void Reload()
    {
        Volatile.Write(ref _current, BuiltInPolicies.TryCreate(_name)!);
        Interlocked.Increment(ref _reloads);
    }

    public void Dispose()
    {
    }
}

/// <summary>
/// Turns the config's <c>policy</c> value into a source. Built-in names resolve here; script paths go to the factory
/// that the scripting layer provides (<see cref="BridgeServices.ScriptPolicySourceFactory"/>).
/// </summary>
public static class PolicySources
{
    /// <summary>Creates the source for <paramref name="config"/>.</summary>
    public static IPolicySource Create(HostConfig config, Func<HostConfig, IPolicySource>? scriptSourceFactory = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var subject = $"{config.Source}: policy";
        if (!HostConfig.LooksLikePath(config.Policy))
        {
            return new BuiltInPolicySource(config.Policy, subject);
        }

        return scriptSourceFactory is not null
            ? scriptSourceFactory(config)
            : throw new InputException(subject, "a built-in policy name, or a .csx script when the scripting layer is present", $"'{config.Policy}' is a script, and this build has no script compiler (ExpertBridge.Scripting)");
    }
}
