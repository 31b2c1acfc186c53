using ExpertBridge.Core;

namespace ExpertBridge.Scripting;

/// <summary>Severity of a <see cref="ScriptDiagnostic"/>.</summary>
public enum ScriptDiagnosticSeverity
{
    Warning,
    Error,
}

/// <summary>
/// One problem in a policy script or a file it <c>#load</c>s, at its real path, 1-based line and column.
/// <see cref="ToString"/> is the <c>file:line:col: message</c> line editors and the CLI print.
/// </summary>
/// <param name="File">Full path of the file the problem is in (a <c>#load</c>ed file when it is there).</param>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
/// <param name="Severity">Errors stop the script from loading; warnings are reported only.</param>
/// <param name="Id">The compiler's id (<c>CS0103</c>), or <c>EBP001</c>... for this host's own checks.</param>
/// <param name="Message">What is wrong, naming the rule where one applies.</param>
public sealed record ScriptDiagnostic(string File, int Line, int Column, ScriptDiagnosticSeverity Severity, string Id, string Message)
{
    /// <summary>Id of a header problem (<c>// @option</c> lines).</summary>
    public const string HeaderId = "EBP001";

    /// <summary>Id of a refused or missing <c>#load</c> / <c>#r</c>.</summary>
    public const string DirectiveId = "EBP002";

    /// <summary>Id of a use of an API that policies may not touch.</summary>
    public const string ForbiddenApiId = "EBP003";

    /// <summary>Id of a script that cannot be read or does not yield a policy.</summary>
    public const string ScriptId = "EBP004";

    public bool IsError => Severity == ScriptDiagnosticSeverity.Error;

    /// <summary>
    /// The input error the script's top level threw, when that is what this diagnostic reports: typically an option
    /// value the policy refused while parsing its options (<c>ema-alpha: 'abc' is not a number</c>). Hosts that turn
    /// diagnostics into one <see cref="InputException"/> pass it on as it is: it already names the option and the rule.
    /// </summary>
    public InputException? Cause { get; init; }

    /// <summary>The message with <c>warning</c> and the compiler id where they apply (<c>CS0103: The name...</c>).</summary>
    public string Text
    {
        get
        {
            var prefix = Severity == ScriptDiagnosticSeverity.Warning ? "warning " : "";
            return Id.StartsWith("CS", StringComparison.Ordinal) ? $"{prefix}{Id}: {Message}" : $"{prefix}{Message}";
        }
    }

    /// <summary><c>file:line:col: message</c>.</summary>
    public override string ToString() => $"{File}:{Line}:{Column}: {Text}";
}
