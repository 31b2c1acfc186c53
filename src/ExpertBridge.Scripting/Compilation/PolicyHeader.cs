using System.Text.RegularExpressions;
using ExpertBridge.Core.Policies;
using Microsoft.CodeAnalysis.Text;

namespace ExpertBridge.Scripting;

/// <summary>
/// The comment block a policy script opens with: its description and its options.
/// <code>
/// // omniplacement: joint replica and device optimisation (one line: what `policy list` shows)
/// // @description optional explicit one-line description (wins over the first comment line)
/// // @option move-budget = 16
/// // @option objective = "p95"
/// </code>
/// The header is every leading line that is blank or a <c>//</c> comment; it ends at the first other line.
/// Values may be quoted; keys are letters, digits, <c>-</c>, <c>_</c> and <c>.</c>, and are case-insensitive.
/// </summary>
internal sealed partial record PolicyHeader(string Description, PolicyOptions Options, IReadOnlyList<ScriptDiagnostic> Diagnostics)
{
    internal const string RuleOption = "header options are '// @option key = value', each key once";

    public static PolicyHeader Parse(string path, SourceText text)
    {
        var options = new List<KeyValuePair<string, string>>();
        var seen = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var diagnostics = new List<ScriptDiagnostic>();
        string? firstComment = null;
        string? description = null;
        foreach (var line in text.Lines)
        {
            var raw = line.ToString();
            var trimmed = raw.Trim();
            if (trimmed.Length == 0 || (line.LineNumber == 0 && trimmed.StartsWith("#!", StringComparison.Ordinal)))
            {
                continue;
            }

            if (!trimmed.StartsWith("//", StringComparison.Ordinal))
            {
                break;
            }

            var body = trimmed.TrimStart('/').Trim();
            var lineNo = line.LineNumber + 1;
            var column = raw.IndexOf(body.Length > 0 ? body[0] : '/', StringComparison.Ordinal) + 1;
            if (!body.StartsWith('@'))
            {
                firstComment ??= body.Length > 0 ? body : null;
                continue;
            }

            var directive = DirectiveName().Match(body).Value;
            switch (directive)
            {
                case "@option":
                    var m = OptionLine().Match(body);
                    if (!m.Success)
                    {
                        diagnostics.Add(Error(path, lineNo, column, $"malformed header option '{body}' (rule: {RuleOption})"));
                        break;
                    }

                    var key = m.Groups["key"].Value;
                    var value = Unquote(m.Groups["value"].Value.Trim());
                    if (value.Length == 0)
                    {
                        diagnostics.Add(Error(path, lineNo, column, $"header option '{key}' has no value (rule: {RuleOption})"));
                    }
                    else if (seen.TryGetValue(key, out var firstLine))
                    {
                        diagnostics.Add(Error(path, lineNo, column, $"header option '{key}' is set again (first on line {firstLine}) (rule: {RuleOption})"));
                    }
                    else
                    {
                        seen[key] = lineNo;
                        options.Add(new(key, value));
                    }

                    break;
                case "@description":
                    description = body["@description".Length..].Trim();
                    break;
                default:
                    diagnostics.Add(new ScriptDiagnostic(path, lineNo, column, ScriptDiagnosticSeverity.Warning, ScriptDiagnostic.HeaderId, $"unknown header directive '{directive}' is ignored (known: @option, @description)"));
                    break;
            }
        }

        var text1 = string.IsNullOrEmpty(description) ? firstComment ?? "" : description;
        return new PolicyHeader(text1, new PolicyOptions(options, $"{path} header"), diagnostics);
    }

    private static ScriptDiagnostic Error(string path, int line, int column, string message) =>
        new(path, line, column, ScriptDiagnosticSeverity.Error, ScriptDiagnostic.HeaderId, message);

    private static string Unquote(string value) =>
        value.Length >= 2 && value[0] == '"' && value[^1] == '"' ? value[1..^1] : value;

    [GeneratedRegex(@"^@[A-Za-z_][A-Za-z0-9_\-]*")]
    private static partial Regex DirectiveName();

    [GeneratedRegex(@"^@option\s+(?<key>[A-Za-z][A-Za-z0-9_.\-]*)\s*=(?<value>.*)$")]
    private static partial Regex OptionLine();
}
