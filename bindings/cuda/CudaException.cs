using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ExpertBridge.Interop;

namespace ExpertBridge.Interop.Cuda;

/// <summary>A CUDA driver call failed; carries the driver's error name and string (cuGetErrorName/cuGetErrorString).</summary>
public sealed class CudaException : NativeCallException
{
    public CudaException(CUresult status, string? expression)
        : this(status, Describe(status), expression) { }

    private CudaException(CUresult status, (string Name, string Text) description, string? expression)
        : base((long)status, description.Name, description.Text, expression) => Status = status;

    public CudaException() { }

    public CudaException(string message) : base(message) { }

    public CudaException(string message, Exception innerException) : base(message, innerException) { }

    public CUresult Status { get; } = CUresult.ErrorUnknown;

    /// <summary>Throws a <see cref="CudaException"/> unless <paramref name="status"/> is <c>CUDA_SUCCESS</c>.</summary>
    public static void ThrowIfFailed(CUresult status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != CUresult.Success) throw new CudaException(status, expression);
    }

    /// <summary>The driver's name and description of a status; the manifest's name when the driver gives none.</summary>
    public static unsafe (string Name, string Text) Describe(CUresult status)
    {
        string? name = null, text = null;
        if (Cuda.IsSupported)
        {
            try
            {
                byte* p = null;
                if (Cuda.GetErrorName(status, &p) == CUresult.Success && p != null) name = Marshal.PtrToStringUTF8((nint)p);
                p = null;
                if (Cuda.GetErrorString(status, &p) == CUresult.Success && p != null) text = Marshal.PtrToStringUTF8((nint)p);
            }
            catch (EntryPointNotFoundException)
            {
                // a library without the error functions (an old or partial emulator): fall back below
            }
        }
        return (name ?? Cuda.GetResultName(status) ?? $"CUresult {(int)status}",
            text ?? "no description from the driver");
    }
}
