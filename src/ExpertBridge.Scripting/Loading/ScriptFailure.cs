using System.Diagnostics;

namespace ExpertBridge.Scripting;

/// <summary>
/// Turns an exception thrown by script code into text (type, message, and the script line it came from), so that no
/// exception object, which may hold the script's types, outlives the call and keeps its load context alive.
/// </summary>
internal static class ScriptFailure
{
    /// <summary>The first frame of the exception that lies in one of <paramref name="scriptFiles"/>, if any.</summary>
    public static (string File, int Line, int Column)? ScriptFrame(Exception exception, IReadOnlyCollection<string> scriptFiles)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            foreach (var frame in new StackTrace(e, fNeedFileInfo: true).GetFrames())
            {
                var file = frame.GetFileName();
                if (file is not null && scriptFiles.Contains(file, PolicySourceSet.PathComparer))
                {
                    return (file, frame.GetFileLineNumber(), Math.Max(1, frame.GetFileColumnNumber()));
                }
            }
        }

        return null;
    }

    /// <summary><c>InvalidOperationException: message (at /p/x.csx:12)</c>.</summary>
    public static string Describe(Exception exception, IReadOnlyCollection<string> scriptFiles)
    {
        var inner = Unwrap(exception);
        var where = ScriptFrame(inner, scriptFiles) is { } f ? $" (at {f.File}:{f.Line})" : "";
        return $"{inner.GetType().Name}: {inner.Message}{where}";
    }

    public static Exception Unwrap(Exception exception) => exception switch
    {
        AggregateException { InnerExceptions.Count: 1 } a => Unwrap(a.InnerExceptions[0]),
        System.Reflection.TargetInvocationException { InnerException: { } inner } => Unwrap(inner),
        _ => exception,
    };
}
