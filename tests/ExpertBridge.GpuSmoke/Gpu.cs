using System.Runtime.InteropServices;
using System.Text;
using ExpertBridge.Interop.Cuda;

namespace ExpertBridge.GpuSmoke;

/// <summary>Small helpers over the raw bindings: primary contexts, buffers, timed streams, the test pattern.</summary>
internal static unsafe class Gpu
{
    private static bool s_initialized;

    public static void Check(CUresult status, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(status))] string? expression = null) =>
        CudaException.ThrowIfFailed(status, expression);

    public static void Init()
    {
        if (s_initialized) return;
        Check(Cuda.Init(0));
        s_initialized = true;
    }

    public static int Device(int ordinal)
    {
        Init();
        int device;
        Check(Cuda.DeviceGet(&device, ordinal));
        return device;
    }

    /// <summary>Retains device <paramref name="ordinal"/>'s primary context and makes it current.</summary>
    public static CUcontext Activate(int ordinal)
    {
        CUcontext ctx;
        Check(Cuda.DevicePrimaryCtxRetain(&ctx, Device(ordinal)));
        Check(Cuda.CtxSetCurrent(ctx));
        return ctx;
    }

    public static string Text(Func<nint, int, CUresult> call, int capacity = 256)
    {
        var buffer = new byte[capacity];
        fixed (byte* p = buffer) Check(call((nint)p, capacity));
        var end = Array.IndexOf(buffer, (byte)0);
        return Encoding.UTF8.GetString(buffer, 0, end < 0 ? buffer.Length : end);
    }

    public static ulong Alloc(long bytes)
    {
        ulong p;
        Check(Cuda.MemAlloc(&p, (nuint)bytes));
        return p;
    }

    public static byte* AllocHost(long bytes)
    {
        void* p;
        Check(Cuda.MemAllocHost(&p, (nuint)bytes));
        return (byte*)p;
    }

    public static CUstream CreateStream()
    {
        CUstream s;
        Check(Cuda.StreamCreate(&s, (uint)CUstreamFlags.NonBlocking));
        return s;
    }

    /// <summary>Milliseconds that <paramref name="work"/> took on <paramref name="stream"/>, timed with events.</summary>
    public static float Time(CUstream stream, Action work)
    {
        CUevent start, stop;
        Check(Cuda.EventCreate(&start, (uint)CUeventFlags.Default));
        Check(Cuda.EventCreate(&stop, (uint)CUeventFlags.Default));
        try
        {
            Check(Cuda.EventRecord(start, stream));
            work();
            Check(Cuda.EventRecord(stop, stream));
            Check(Cuda.EventSynchronize(stop));
            float ms;
            Check(Cuda.EventElapsedTime(&ms, start, stop));
            return ms;
        }
        finally
        {
            Check(Cuda.EventDestroy(start));
            Check(Cuda.EventDestroy(stop));
        }
    }

    public static double GigabytesPerSecond(long bytes, float ms) => ms <= 0 ? 0 : bytes / (ms / 1000.0) / 1e9;

    /// <summary>The test pattern: every 8-byte word is a function of its index, so misplaced data is caught.</summary>
    public static void Fill(byte* p, long bytes)
    {
        var words = (ulong*)p;
        for (long i = 0, n = bytes / 8; i < n; i++) words[i] = Word(i);
    }

    /// <summary>The index of the first 8-byte word from <paramref name="fromByte"/> on that differs from the pattern, or -1.</summary>
    public static long FirstMismatch(byte* p, long bytes, long fromByte = 0)
    {
        var words = (ulong*)p;
        for (long i = fromByte / 8, n = bytes / 8; i < n; i++)
        {
            if (words[i] != Word(i)) return i;
        }
        return -1;
    }

    private static ulong Word(long i) => ((ulong)i * 0x9E3779B97F4A7C15UL) ^ 0x5EB1D6E5C0FFEE00UL;

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    public static void FreeHost(byte* p) => Check(Cuda.MemFreeHost(p));

    public static void Zero(byte* p, long bytes) => NativeMemory.Clear(p, (nuint)bytes);
}
