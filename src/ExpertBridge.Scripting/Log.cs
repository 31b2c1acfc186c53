using Microsoft.Extensions.Logging;

namespace ExpertBridge.Scripting;

/// <summary>Every log line of the scripting host, defined once.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "policy cache hit for {Path} ({Key})")]
    public static partial void CacheHit(ILogger logger, string path, string key);

    [LoggerMessage(2, LogLevel.Warning, "policy cache unavailable at {Path}: {Reason}; compiling without it")]
    public static partial void CacheUnavailable(ILogger logger, string path, string reason);

    [LoggerMessage(3, LogLevel.Warning, "ignoring policy cache entry {Path}: {Reason}")]
    public static partial void CacheEntryIgnored(ILogger logger, string path, string reason);

    [LoggerMessage(4, LogLevel.Information, "policy '{Name}' version {Version} is live from {Source} ({How}, {Milliseconds:F0} ms)")]
    public static partial void PolicyLive(ILogger logger, string name, int version, string source, string how, double milliseconds);

    [LoggerMessage(5, LogLevel.Warning, "policy {Source} did not load; the running version stays: {Diagnostic}")]
    public static partial void LoadFailed(ILogger logger, string source, string diagnostic);

    [LoggerMessage(6, LogLevel.Warning, "policy '{Name}' version {Version} failed ({Reason}); the placement in force stays: {Message}")]
    public static partial void DecisionFailed(ILogger logger, string name, int version, PolicyFailureReason reason, string message);

    [LoggerMessage(7, LogLevel.Debug, "policy '{Name}' version {Version} drained and unloaded")]
    public static partial void VersionUnloaded(ILogger logger, string name, int version);

    [LoggerMessage(8, LogLevel.Warning, "watching {Directory} failed ({Reason}); rescanning, polling every {Seconds:F1} s")]
    public static partial void WatcherFailed(ILogger logger, string directory, string reason, double seconds);

    [LoggerMessage(9, LogLevel.Information, "policy sources changed: {Path}; reloading")]
    public static partial void SourcesChanged(ILogger logger, string path);

    [LoggerMessage(10, LogLevel.Warning, "reloading {Path} after a change failed: {Reason}")]
    public static partial void ReloadCrashed(ILogger logger, string path, string reason);
}
