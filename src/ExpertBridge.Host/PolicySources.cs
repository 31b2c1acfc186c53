using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Scripting;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Host;

/// <summary>Opens the policy a config names, through the scripting layer.</summary>
public static class PolicySources
{
    /// <summary>
    /// The config's <c>policy</c>: a built-in name, a .csx path (compiled, cached and watched: edits reload by
    /// themselves), or a bare name found as NAME.csx in <c>policyDirectory</c>. Throws <see cref="InputException"/>
    /// naming the config key, or the script's <c>file:line:col</c> when it does not compile.
    /// </summary>
    public static IPolicySource Open(HostConfig config, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var options = Options(config, loggerFactory);
        try
        {
            return new PolicyHostSource(PolicyResolver.Open(config.Policy, options));
        }
        catch (InputException ex) when (ex.Subject == "--policy")
        {
            throw new InputException($"{config.Source}: policy", ex.Rule, ex.Detail);
        }
    }

    /// <summary>A source over a policy object of the caller's, with the same time limit and validation as <see cref="Open"/>.</summary>
    public static IPolicySource ForPolicy(IPlacementPolicy policy, HostConfig config, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        return new PolicyHostSource(PolicyHost.ForPolicy(policy, Options(config, loggerFactory)));
    }

    private static ScriptingOptions Options(HostConfig config, ILoggerFactory loggerFactory) => new()
    {
        Options = config.PolicyOptions,
        DecisionTimeout = config.PolicyTimeout,
        Watch = true,
        PolicyDirectory = config.PolicyDirectory,
        LoggerFactory = loggerFactory,
    };

    /// <summary>Adapts a <see cref="PolicyHost"/>: counts its reloads and turns a failed reload into an exception.</summary>
    private sealed class PolicyHostSource : IPolicySource
    {
        private readonly PolicyHost _host;
        private long _reloads;
        private long _failures;

        public PolicyHostSource(PolicyHost host)
        {
            _host = host;
            _host.Reloaded += OnReloaded;
        }

        public string Description => _host.ScriptPath is { } path ? $"script {path} ({_host.Name} v{_host.Version})" : $"built-in '{_host.Name}'";

        public long Reloads => Interlocked.Read(ref _reloads);

        public long ReloadFailures => Interlocked.Read(ref _failures);

        public Task<PolicyOutcome> DecideAsync(PolicyContext context) => _host.InvokeAsync(context);

        public void Reload()
        {
            var result = _host.ReloadAsync().GetAwaiter().GetResult();
            if (!result.Success)
            {
                var first = result.Diagnostics.FirstOrDefault(d => d.Severity == ScriptDiagnosticSeverity.Error) ?? (result.Diagnostics.Count > 0 ? result.Diagnostics[0] : null);
                throw new InputException(first is null ? result.Source : $"{first.File}:{first.Line}:{first.Column}", "the policy compiles and loads; the running version stays", first?.Text ?? "the reload failed");
            }
        }

        public void Dispose()
        {
            _host.Reloaded -= OnReloaded;
            _host.Dispose();
        }

        private void OnReloaded(object? sender, PolicyReloadResult result)
        {
            if (result.Status == PolicyReloadStatus.Loaded)
            {
                Interlocked.Increment(ref _reloads);
            }
            else if (result.Status == PolicyReloadStatus.Failed)
            {
                Interlocked.Increment(ref _failures);
            }
        }
    }
}
