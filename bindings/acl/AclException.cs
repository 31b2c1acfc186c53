using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ExpertBridge.Interop;

namespace ExpertBridge.Interop.Acl;

/// <summary>An AscendCL call failed; carries the code's name and the thread's aclGetRecentErrMsg.</summary>
public sealed class AclException : NativeCallException
{
    public AclException(AclError status, string? expression)
        : this(status, Describe(status), expression) { }

    private AclException(AclError status, (string Name, string Text) description, string? expression)
        : base((long)status, description.Name, description.Text, expression) => Status = status;

    public AclException() { }

    public AclException(string message) : base(message) { }

    public AclException(string message, Exception innerException) : base(message, innerException) { }

    public AclError Status { get; } = AclError.ErrorFailure;

    /// <summary>Throws an <see cref="AclException"/> unless <paramref name="status"/> is <c>ACL_SUCCESS</c>.</summary>
    public static void ThrowIfFailed(AclError status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != AclError.Success) throw new AclException(status, expression);
    }

    /// <summary>The code's name and the runtime's most recent error message on this thread.</summary>
    public static unsafe (string Name, string Text) Describe(AclError status)
    {
        string? text = null;
        if (Acl.IsSupported)
        {
            try
            {
                text = Marshal.PtrToStringUTF8((nint)Acl.GetRecentErrMsg());
            }
            catch (EntryPointNotFoundException)
            {
                // a partial emulator without aclGetRecentErrMsg
            }
        }
        return (Acl.GetResultName(status) ?? $"aclError {(int)status}",
            string.IsNullOrEmpty(text) ? "no message from the AscendCL runtime" : text);
    }
}
