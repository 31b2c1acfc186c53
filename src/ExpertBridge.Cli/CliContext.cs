using ExpertBridge.Cli.Output;
using ExpertBridge.Cli.Policies;
using ExpertBridge.Core.Policies;
using ExpertBridge.Scripting;

namespace ExpertBridge.Cli;

/// <summary>What a verb may use: the output writers, the policy resolver and script settings, progress and cancellation.</summary>
internal sealed class CliContext
{
    public CliContext(TextWriter stdout, TextWriter stderr, IPolicyResolver policies, ScriptingOptions scripting, PolicyOptions policyOptions, ProgressMode progress, CancellationToken cancellation)
    {
        Stdout = stdout;
        Stderr = stderr;
        Policies = policies;
        Scripting = scripting;
        PolicyOptions = policyOptions;
        Progress = progress;
        Cancellation = cancellation;
    }

    /// <summary>Results: tables, JSON with <c>--json -</c>.</summary>
    public TextWriter Stdout { get; }

    /// <summary>Errors and progress.</summary>
    public TextWriter Stderr { get; }

    public IPolicyResolver Policies { get; }

    /// <summary>Script compile, cache and call settings, and the policy directory (for <c>policy check</c> and <c>policy list</c>).</summary>
    public ScriptingOptions Scripting { get; }

    /// <summary>
    /// The policy options of every <c>--option</c> (empty for verbs without it). After the verb, the CLI warns about
    /// keys no policy read (<see cref="Verbs.SharedOptions.WarnUnread"/>).
    /// </summary>
    public PolicyOptions PolicyOptions { get; }

    public ProgressMode Progress { get; }

    public CancellationToken Cancellation { get; }

    /// <summary>A progress sink for one task, drawn as <see cref="Progress"/> says.</summary>
    public ProgressReporter StartProgress(string label) => new(Stderr, Progress, label);
}
