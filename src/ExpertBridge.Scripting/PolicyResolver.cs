using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>
/// Turns what an operator writes after <c>--policy</c> into a running <see cref="PolicyHost"/>: a built-in name
/// (<see cref="BuiltInPolicies"/>), a path to a <c>.csx</c> script, or a bare name found as
/// <c>NAME.csx</c> in <see cref="ScriptingOptions.PolicyDirectory"/>. Built-in names win over scripts of the same
/// name; pass a path to mean the script.
/// </summary>
public static class PolicyResolver
{
    internal const string RuleSpec = "a built-in policy name or a path to a .csx script";

    /// <summary>True when <paramref name="spec"/> reads as a script path (ends in .csx or holds a directory).</summary>
    public static bool IsScriptPath(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.EndsWith(".csx", StringComparison.OrdinalIgnoreCase) || spec.Contains('/', StringComparison.Ordinal) || spec.Contains('\\', StringComparison.Ordinal);
    }

    /// <summary>
    /// Opens <paramref name="spec"/>: a script is compiled (or taken from the cache), loaded and, with
    /// <see cref="ScriptingOptions.Watch"/>, watched. Throws <see cref="InputException"/> for an unknown name, a
    /// missing file, or a script that does not compile or load (subject: <c>file:line:col</c> of the first error).
    /// </summary>
    public static Task<PolicyHost> OpenAsync(string spec, ScriptingOptions? options = null, CancellationToken cancellation = default)
    {
        options ??= ScriptingOptions.Default;
        options.Validate();
        var script = ResolveScript(spec, options);
        return script is null
            ? Task.FromResult(PolicyHost.ForBuiltIn(BuiltInPolicies.TryCreate(spec)!, options))
            : Task.Run(() => PolicyHost.ForScript(script, options, CreateCompiler(options), cancellation), cancellation);
    }

    /// <summary>Blocking <see cref="OpenAsync"/>, for command-line verbs.</summary>
    public static PolicyHost Open(string spec, ScriptingOptions? options = null) =>
        OpenAsync(spec, options).GetAwaiter().GetResult();

    /// <summary>The script path <paramref name="spec"/> names, or null for a built-in; throws for neither.</summary>
    internal static string? ResolveScript(string spec, ScriptingOptions options)
    {
        if (string.IsNullOrWhiteSpace(spec))
        {
            throw new InputException("--policy", RuleSpec, "the policy is empty");
        }

        if (IsScriptPath(spec))
        {
            var full = Path.GetFullPath(spec);
            if (File.Exists(full))
            {
                return full;
            }

            // A relative path may also name a script in the policy directory (`--policy omni/x.csx`, `eplb.csx`).
            if (!Path.IsPathRooted(spec) && options.PolicyDirectory is { } dir && Path.GetFullPath(Path.Combine(dir, spec)) is var inDir && File.Exists(inDir))
            {
                return inDir;
            }

            throw new InputException("--policy", RuleSpec, $"script '{spec}' not found ({full})");
        }

        if (BuiltInPolicies.TryCreate(spec) is not null)
        {
            return null;
        }

        if (options.PolicyDirectory is { } directory && Path.Combine(directory, spec + ".csx") is var candidate && File.Exists(candidate))
        {
            return Path.GetFullPath(candidate);
        }

        var known = string.Join(", ", BuiltInPolicies.Names.Order(StringComparer.Ordinal));
        var where = options.PolicyDirectory is null ? "" : $", nor {Path.Combine(options.PolicyDirectory, spec + ".csx")}";
        throw new InputException("--policy", RuleSpec, $"'{spec}' is not a built-in ({known}){where}");
    }

    internal static PolicyScriptCompiler CreateCompiler(ScriptingOptions options)
    {
        var logger = options.LoggerFactory.CreateLogger("ExpertBridge.Scripting.PolicyCompiler");
        var cache = options.UseCache ? new CompiledPolicyCache(options.EffectiveCacheDirectory, logger) : null;
        return new PolicyScriptCompiler(cache, logger, options.NullableWarnings);
    }
}
