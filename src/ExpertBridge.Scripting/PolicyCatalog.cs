using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using Microsoft.CodeAnalysis.Text;

namespace ExpertBridge.Scripting;

/// <summary>Where a listed policy comes from.</summary>
public enum PolicyKind
{
    BuiltIn,
    Script,
}

/// <summary>One row of <c>policy list</c>.</summary>
/// <param name="Name">
/// What <c>--policy</c> accepts with the directory as <see cref="ScriptingOptions.PolicyDirectory"/>: the built-in name,
/// or the script's file name without <c>.csx</c> (with it, when a built-in has the same name).
/// </param>
/// <param name="Kind">Built-in or script.</param>
/// <param name="Path">The script's full path; null for built-ins.</param>
/// <param name="Description">The script header's description (its first comment line, or <c>// @description</c>).</param>
/// <param name="Options">The script header's <c>// @option</c> values.</param>
/// <param name="Problems">Header problems (a malformed option line), as <c>file:line:col: message</c>.</param>
public sealed record PolicyListing(string Name, PolicyKind Kind, string? Path, string Description, IReadOnlyDictionary<string, string> Options, IReadOnlyList<ScriptDiagnostic> Problems);

/// <summary>The data of <c>policy list</c>: built-ins, then the scripts of a directory, read without compiling.</summary>
public static class PolicyCatalog
{
    /// <summary>Built-in policies, then every <c>*.csx</c> directly in <paramref name="scriptDirectory"/> (when given).</summary>
    public static IReadOnlyList<PolicyListing> List(string? scriptDirectory = null)
    {
        var result = BuiltInPolicies.Names
            .Order(StringComparer.Ordinal)
            .Select(n => new PolicyListing(n, PolicyKind.BuiltIn, null, "built into ExpertBridge.Core", new Dictionary<string, string>(), []))
            .ToList();
        if (scriptDirectory is null)
        {
            return result;
        }

        var directory = System.IO.Path.GetFullPath(scriptDirectory);
        if (!Directory.Exists(directory))
        {
            throw new InputException(scriptDirectory, "an existing policy directory", "directory not found");
        }

        foreach (var path in Directory.EnumerateFiles(directory, "*.csx", SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal))
        {
            var bytes = PolicySourceSet.ReadShared(path, out var error);
            var name = System.IO.Path.GetFileNameWithoutExtension(path);
            name = BuiltInPolicies.TryCreate(name) is null ? name : System.IO.Path.GetFileName(path);
            if (bytes is null)
            {
                var problem = new ScriptDiagnostic(path, 1, 1, ScriptDiagnosticSeverity.Error, ScriptDiagnostic.ScriptId, $"cannot read the script: {error}");
                result.Add(new PolicyListing(name, PolicyKind.Script, path, "", new Dictionary<string, string>(), [problem]));
                continue;
            }

            var header = PolicyHeader.Parse(path, SourceText.From(bytes, bytes.Length));
            result.Add(new PolicyListing(name, PolicyKind.Script, path, header.Description, header.Options.Values, header.Diagnostics));
        }

        return result;
    }
}
