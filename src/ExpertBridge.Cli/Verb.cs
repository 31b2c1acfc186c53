using ExpertBridge.Cli.Arguments;

namespace ExpertBridge.Cli;

/// <summary>One <c>expertbridge</c> verb: its options, help and behaviour.</summary>
internal abstract class Verb
{
    /// <summary>As typed: <c>replay</c>, <c>trace generate</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One line for the verb list.</summary>
    public abstract string Summary { get; }

    /// <summary>A paragraph for <c>--help</c>.</summary>
    public virtual string Description => Summary;

    /// <summary>One runnable example for <c>--help</c>.</summary>
    public abstract string Example { get; }

    /// <summary>The verb's own options (the common ones are added by <see cref="Cli"/>).</summary>
    public abstract IReadOnlyList<CliOption> Options { get; }

    /// <summary>Runs the verb; returns the exit code. User mistakes are thrown as <see cref="Core.InputException"/>.</summary>
    public abstract int Execute(ParsedArguments args, CliContext context);
}
