using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;

namespace ExpertBridge.Cli;

/// <summary>What a verb may use: the output writers, the policy resolver, progress and cancellation.</summary>
internal sealed class CliContext
{
    public CliContext(TextWriter stdout, TextWriter stderr, IPolicyResolver policies, ProgressMode progress, CancellationToken cancellation)
    {
        Stdout = stdout;
        Stderr = stderr;
        Policies = policies;
        Progress = progress;
        Cancellation = cancellation;
    }

    /// <summary>Results: tables, JSON with <c>--json -</c>.</summary>
    public TextWriter Stdout { get; }

    /// <summary>Errors and progress.</summary>
    public TextWriter Stderr { get; }

    public IPolicyResolver Policies { get; }

    public ProgressMode Progress { get; }

    public CancellationToken Cancellation { get; }

    /// <summary>A progress sink for one task, drawn as <see cref="Progress"/> says.</summary>
    public ProgressReporter StartProgress(string label) => new(Stderr, Progress, label);
}
