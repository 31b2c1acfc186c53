namespace ExpertBridge.Core.Policies;

/// <summary>
/// The globals of a policy script (<c>policies/*.csx</c>): its members are in scope in the script, so a script ends
/// with <c>return new MyPolicy(Options);</c>. Lives in Core so that it loads once, in the default load context, and
/// every collectible script version binds to the same type.
/// </summary>
public sealed class PolicyScriptGlobals
{
    public PolicyScriptGlobals(PolicyOptions options, string scriptPath)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(scriptPath);
        Options = options;
        ScriptPath = scriptPath;
    }

    /// <summary>
    /// The script's header options (<c>// @option key = value</c>) overlaid with options from the config or the
    /// command line (those win).
    /// </summary>
    public PolicyOptions Options { get; }

    /// <summary>Full path of the script, for messages.</summary>
    public string ScriptPath { get; }
}
