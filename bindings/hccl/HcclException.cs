using System.Runtime.CompilerServices;
using ExpertBridge.Interop;

namespace ExpertBridge.Interop.Hccl;

/// <summary>An HCCL call failed; carries the HcclResult name and its description from hccl_types.h (HCCL has no
/// error-string function in every CANN release).</summary>
public sealed class HcclException : NativeCallException
{
    public HcclException(HcclResult status, string? expression)
        : base((long)status, Hccl.GetResultName(status) ?? $"HcclResult {(int)status}", Describe(status), expression) => Status = status;

    public HcclException() { }

    public HcclException(string message) : base(message) { }

    public HcclException(string message, Exception innerException) : base(message, innerException) { }

    public HcclResult Status { get; } = HcclResult.EInternal;

    /// <summary>Throws an <see cref="HcclException"/> unless <paramref name="status"/> is <c>HCCL_SUCCESS</c>.</summary>
    public static void ThrowIfFailed(HcclResult status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != HcclResult.Success) throw new HcclException(status, expression);
    }

    /// <summary>The description hccl_types.h gives each result.</summary>
    public static string Describe(HcclResult status) => status switch
    {
        HcclResult.Success => "success",
        HcclResult.EPara => "parameter error",
        HcclResult.EPtr => "empty pointer",
        HcclResult.EMemory => "memory error",
        HcclResult.EInternal => "internal error",
        HcclResult.ENotSupport => "feature not supported",
        HcclResult.ENotFound => "specific resource not found",
        HcclResult.EUnavail => "resource unavailable",
        HcclResult.ESyscall => "system call failed",
        HcclResult.ETimeout => "timeout",
        HcclResult.EOpenFileFailure => "open file failed",
        HcclResult.ETcpConnect => "tcp connect failed",
        HcclResult.ERoceConnect => "roce connect failed",
        HcclResult.ETcpTransfer => "tcp transfer failed",
        HcclResult.ERoceTransfer => "roce transfer failed",
        HcclResult.ERuntime => "runtime api call failed",
        HcclResult.EDrv => "driver api call failed",
        HcclResult.EProfiling => "profiling api call failed",
        HcclResult.ECce => "cce api call failed",
        HcclResult.ENetwork => "network api call failed",
        HcclResult.EAgain => "try again",
        HcclResult.ERemote => "error completion from the remote side",
        HcclResult.ESuspending => "communicator suspending",
        _ => "unknown HCCL result",
    };
}
