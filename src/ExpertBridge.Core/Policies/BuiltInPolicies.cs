namespace ExpertBridge.Core.Policies;

/// <summary>The policies compiled into Core. Scripts (<c>policies/*.csx</c>) are resolved by the scripting layer.</summary>
public static class BuiltInPolicies
{
    private static readonly Dictionary<string, Func<IPlacementPolicy>> s_factories = new(StringComparer.OrdinalIgnoreCase)
    {
        ["trivial"] = () => new TrivialPolicy(),
        ["eplb"] = () => new EplbPolicy(),
    };

    /// <summary>Names of the built-in policies.</summary>
    public static IReadOnlyCollection<string> Names => s_factories.Keys;

    /// <summary>A new instance of built-in policy <paramref name="name"/>, or null.</summary>
    public static IPlacementPolicy? TryCreate(string name) =>
        s_factories.TryGetValue(name, out var factory) ? factory() : null;
}
