using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace ExpertBridge.Host;

/// <summary>The logging every embedding of the host uses: one line per event on stderr (stdout stays the server's).</summary>
public static class HostLogging
{
    /// <summary>A logger factory writing single-line events at or above <paramref name="level"/> to stderr.</summary>
    public static ILoggerFactory CreateFactory(LogLevel level) =>
        LoggerFactory.Create(b => b
            .SetMinimumLevel(level)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.ColorBehavior = LoggerColorBehavior.Disabled;
            }));
}
