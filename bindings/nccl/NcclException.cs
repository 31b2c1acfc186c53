using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ExpertBridge.Interop;

namespace ExpertBridge.Interop.Nccl;

/// <summary>An NCCL call failed; carries the result's name, ncclGetErrorString and NCCL's last error message.</summary>
public sealed class NcclException : NativeCallException
{
    public NcclException(NcclResult status, string? expression)
        : this(status, Describe(status), expression) { }

    private NcclException(NcclResult status, (string Name, string Text) description, string? expression)
        : base((long)status, description.Name, description.Text, expression) => Status = status;

    public NcclException() { }

    public NcclException(string message) : base(message) { }

    public NcclException(string message, Exception innerException) : base(message, innerException) { }

    public NcclResult Status { get; } = NcclResult.InternalError;

    /// <summary>Throws an <see cref="NcclException"/> unless <paramref name="status"/> is <c>ncclSuccess</c>.</summary>
    public static void ThrowIfFailed(NcclResult status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != NcclResult.Success) throw new NcclException(status, expression);
    }

    /// <summary>The result's name and NCCL's description of it, with the last error message where NCCL has one.</summary>
    public static unsafe (string Name, string Text) Describe(NcclResult status)
    {
        var name = Nccl.GetResultName(status) ?? $"ncclResult_t {(int)status}";
        string? text = null, last = null;
        if (Nccl.IsSupported)
        {
            try
            {
                text = Marshal.PtrToStringUTF8((nint)Nccl.GetErrorString(status));
                last = Marshal.PtrToStringUTF8((nint)Nccl.GetLastError(NcclComm.Null));
            }
            catch (EntryPointNotFoundException)
            {
                // an NCCL without ncclGetLastError (before 2.13) or a partial emulator
            }
        }
        text ??= "no description from NCCL";
        return (name, string.IsNullOrEmpty(last) ? text : $"{text}; last error: {last}");
    }
}
