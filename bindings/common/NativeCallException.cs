namespace ExpertBridge.Interop;

/// <summary>A vendor call returned a failure status. The message names the call (as written at the call site), the
/// vendor's name of the status and its description.</summary>
public abstract class NativeCallException : Exception
{
    protected NativeCallException(long code, string errorName, string errorText, string? expression)
        : base(Format(code, errorName, errorText, expression))
    {
        Code = code;
        ErrorName = errorName;
        ErrorText = errorText;
        Expression = expression;
    }

    protected NativeCallException() : this(-1, "UNKNOWN", "unknown failure", null) { }

    protected NativeCallException(string message) : base(message)
    {
        ErrorName = "UNKNOWN";
        ErrorText = message;
    }

    protected NativeCallException(string message, Exception innerException) : base(message, innerException)
    {
        ErrorName = "UNKNOWN";
        ErrorText = message;
    }

    /// <summary>The numeric status.</summary>
    public long Code { get; } = -1;

    /// <summary>The vendor's name of the status, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public string ErrorName { get; }

    /// <summary>The vendor's description, e.g. <c>out of memory</c>.</summary>
    public string ErrorText { get; }

    /// <summary>The failing call as written (from <c>CallerArgumentExpression</c>), or null.</summary>
    public string? Expression { get; }

    private static string Format(long code, string name, string text, string? expression) =>
        $"{expression ?? "native call"} failed: {name} ({code}): {text}";
}
