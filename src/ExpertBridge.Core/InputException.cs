namespace ExpertBridge.Core;

/// <summary>
/// A user mistake: a file, option, config key or script that breaks a documented rule.
/// The CLI prints <see cref="Exception.Message"/> as one line and exits with code 2; hosts log it and keep running.
/// </summary>
public sealed class InputException : Exception
{
    public InputException(string subject, string rule, string detail)
        : base($"{subject}: {detail} (rule: {rule})")
    {
        Subject = subject;
        Rule = rule;
        Detail = detail;
    }

    public InputException() : this("input", "valid", "invalid input") { }

    public InputException(string message) : this("input", "valid", message) { }

    public InputException(string message, Exception innerException) : base(message, innerException)
    {
        Subject = "input";
        Rule = "valid";
        Detail = message;
    }

    /// <summary>What was wrong: a file path, an option (<c>--devices</c>), a config key, or <c>layer 3 slot 17</c>.</summary>
    public string Subject { get; } = "input";

    /// <summary>The rule that was broken, in a few words.</summary>
    public string Rule { get; } = "valid";

    /// <summary>The detail without the subject and rule.</summary>
    public string Detail { get; } = "";
}
