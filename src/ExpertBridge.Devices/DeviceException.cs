namespace ExpertBridge.Devices;

/// <summary>
/// A device call failed. Carries the backend, the operation, the vendor's code, name and text, and a
/// vendor-independent <see cref="Kind"/> that callers (the relocation engine) act on.
/// </summary>
public sealed class DeviceException : Exception
{
    public DeviceException(DeviceErrorKind kind, string backend, string operation, int code, string errorName, string errorText, Exception? inner = null)
        : base($"{backend}: {operation} failed with {errorName} ({code}): {errorText}", inner)
    {
        Kind = kind;
        Backend = backend;
        Operation = operation;
        Code = code;
        ErrorName = errorName;
        ErrorText = errorText;
    }

    public DeviceException()
        : this(DeviceErrorKind.Other, "device", "call", 0, "ERROR", "unspecified")
    {
    }

    public DeviceException(string message)
        : this(DeviceErrorKind.Other, "device", "call", 0, "ERROR", message)
    {
    }

    public DeviceException(string message, Exception innerException)
        : this(DeviceErrorKind.Other, "device", "call", 0, "ERROR", message, innerException)
    {
    }

    public DeviceErrorKind Kind { get; }

    /// <summary>Runtime name, for example <c>cuda (emulated)</c>.</summary>
    public string Backend { get; } = "device";

    /// <summary>The failing call or expression.</summary>
    public string Operation { get; } = "call";

    /// <summary>The vendor's status code.</summary>
    public int Code { get; }

    /// <summary>The vendor's name for <see cref="Code"/>, for example <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public string ErrorName { get; } = "ERROR";

    /// <summary>The vendor's text for <see cref="Code"/>.</summary>
    public string ErrorText { get; } = "";
}
