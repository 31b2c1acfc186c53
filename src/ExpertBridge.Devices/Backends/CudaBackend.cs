using System.Runtime.CompilerServices;
using System.Text;
using ExpertBridge.Interop.Cuda;

namespace ExpertBridge.Devices.Backends;

/// <summary>
/// The CUDA driver backend over the generated bindings. Each device's primary context is retained at open and made
/// current on the calling thread before every call (cheap, and robust against other code that changes it).
/// Streams are created non-blocking, so they never serialize with the legacy default stream.
/// </summary>
internal sealed unsafe class CudaBackend : IDeviceBackend
{
    private readonly CUcontext[] _contexts;
    private readonly int _leastPriority;
    private readonly int _greatestPriority;
    private int _disposed;

    private CudaBackend(string name, CUcontext[] contexts, DeviceInfo[] devices, IFaultControl? faults, int least, int greatest)
    {
        Name = name;
        _contexts = contexts;
        Devices = devices;
        Faults = faults;
        _leastPriority = least;
        _greatestPriority = greatest;
    }

    public string Name { get; }

    public IReadOnlyList<DeviceInfo> Devices { get; }

    public IFaultControl? Faults { get; }

    public static IDeviceBackend Open(DeviceRuntimeOptions options)
    {
        var name = options.Emulated ? "cuda (emulated)" : "cuda";
        if (options.Emulated && Environment.GetEnvironmentVariable(Cuda.LibraryVariable) is null)
        {
            // Must happen before the bindings' resolver runs (first touch of Cuda): it reads the variable once.
            Environment.SetEnvironmentVariable(Cuda.LibraryVariable, EmulatorLibrary.Locate("libeb_cuda_emulator.so", options));
        }

        if (!Cuda.IsSupported)
        {
            throw NotAvailable(name, Cuda.LibraryProbe.FailureMessage ?? "the CUDA driver library could not be loaded");
        }

        var emulator = EmulatorLibrary.TryAttach(Cuda.LibraryProbe.Handle);
        if ((emulator is not null) != options.Emulated)
        {
            throw NotAvailable(name, $"this process already bound {Cuda.LibraryProbe.LoadedPath} for CUDA; the emulator and the driver cannot share a process");
        }

        var status = Cuda.Init(0);
        if (status is CUresult.ErrorNoDevice or CUresult.ErrorStubLibrary or CUresult.ErrorSystemDriverMismatch)
        {
            throw NotAvailable(name, $"cuInit: {CudaException.Describe(status).Name}");
        }

        Check(name, status);
        int count;
        Check(name, Cuda.DeviceGetCount(&count));
        var contexts = new CUcontext[count];
        var infos = new DeviceInfo[count];
        var buffer = stackalloc byte[256];
        for (var d = 0; d < count; d++)
        {
            CUcontext ctx;
            Check(name, Cuda.DevicePrimaryCtxRetain(&ctx, d));
            contexts[d] = ctx;
            Check(name, Cuda.DeviceGetName(buffer, 256, d));
            var deviceName = Utf8(buffer);
            Check(name, Cuda.DeviceGetPCIBusId(buffer, 256, d));
            var bus = Utf8(buffer);
            nuint total;
            Check(name, Cuda.DeviceTotalMem(&total, d));
            var peers = new List<int>();
            for (var p = 0; p < count; p++)
            {
                int can;
                if (p != d && Cuda.DeviceCanAccessPeer(&can, d, p) == CUresult.Success && can != 0)
                {
                    peers.Add(p);
                }
            }

            infos[d] = new DeviceInfo(d, deviceName, (long)total, options.Node, bus, peers);
        }

        int least = 0, greatest = 0;
        if (count > 0)
        {
            Check(name, Cuda.CtxSetCurrent(contexts[0]));
            Check(name, Cuda.CtxGetStreamPriorityRange(&least, &greatest));
        }

        return new CudaBackend(name, contexts, infos, emulator, least, greatest);
    }

    public DeviceMemoryInfo GetMemoryInfo(int device)
    {
        Use(device);
        nuint free, total;
        Check(Cuda.MemGetInfo(&free, &total));
        return new DeviceMemoryInfo((long)free, (long)total);
    }

    public void MakeCurrent(int device) => Use(device);

    public void EnablePeerAccess(int device, int peer)
    {
        Use(device);
        var status = Cuda.CtxEnablePeerAccess(_contexts[peer], 0);
        if (status != CUresult.ErrorPeerAccessAlreadyEnabled)
        {
            Check(status);
        }
    }

    public ulong Allocate(int device, long bytes)
    {
        Use(device);
        ulong p;
        Check(Cuda.MemAlloc(&p, (nuint)bytes));
        return p;
    }

    public nint AllocateHost(long bytes)
    {
        Use(0);
        void* p;
        Check(Cuda.MemHostAlloc(&p, (nuint)bytes, Cuda.CU_MEMHOSTALLOC_PORTABLE));
        return (nint)p;
    }

    public nint CreateStream(int device, StreamPriority priority)
    {
        Use(device);
        var value = priority == StreamPriority.High ? _greatestPriority : _leastPriority;
        CUstream s;
        Check(Cuda.StreamCreateWithPriority(&s, 1 /* CU_STREAM_NON_BLOCKING */, value));
        return s.Handle;
    }

    public nint CreateEvent(int device)
    {
        Use(device);
        CUevent e;
        Check(Cuda.EventCreate(&e, 0));
        return e.Handle;
    }

    public void Release(ResourceKind kind, int device, ulong handle)
    {
        Use(device < 0 ? 0 : device);
        switch (kind)
        {
            case ResourceKind.DeviceMemory:
                Check(Cuda.MemFree(handle));
                break;
            case ResourceKind.HostMemory:
                Check(Cuda.MemFreeHost((void*)handle));
                break;
            case ResourceKind.ImportedMemory:
                Check(Cuda.IpcCloseMemHandle(handle));
                break;
            case ResourceKind.Stream:
                Check(Cuda.StreamDestroy(new CUstream((nint)handle)));
                break;
            case ResourceKind.Event:
                Check(Cuda.EventDestroy(new CUevent((nint)handle)));
                break;
        }
    }

    public void CopySync(DeviceMemory dst, DeviceMemory src)
    {
        var n = (nuint)src.Length;
        if (src.IsHost)
        {
            Use(dst.Device);
            Check(Cuda.MemcpyHtoD(dst.Address, (void*)src.Address, n));
        }
        else if (dst.IsHost)
        {
            Use(src.Device);
            Check(Cuda.MemcpyDtoH((void*)dst.Address, src.Address, n));
        }
        else if (src.Device == dst.Device)
        {
            Use(dst.Device);
            Check(Cuda.MemcpyDtoD(dst.Address, src.Address, n));
        }
        else
        {
            Use(dst.Device);
            Check(Cuda.MemcpyPeer(dst.Address, _contexts[dst.Device], src.Address, _contexts[src.Device], n));
        }
    }

    public void FillSync(DeviceMemory dst, byte value)
    {
        Use(dst.Device);
        Check(Cuda.MemsetD8(dst.Address, value, (nuint)dst.Length));
    }

    public void EnqueueCopy(nint stream, int streamDevice, DeviceMemory dst, DeviceMemory src)
    {
        Use(streamDevice);
        var s = new CUstream(stream);
        var n = (nuint)src.Length;
        if (src.IsHost)
        {
            Check(Cuda.MemcpyHtoDAsync(dst.Address, (void*)src.Address, n, s));
        }
        else if (dst.IsHost)
        {
            Check(Cuda.MemcpyDtoHAsync((void*)dst.Address, src.Address, n, s));
        }
        else if (src.Device == dst.Device)
        {
            Check(Cuda.MemcpyDtoDAsync(dst.Address, src.Address, n, s));
        }
        else
        {
            Check(Cuda.MemcpyPeerAsync(dst.Address, _contexts[dst.Device], src.Address, _contexts[src.Device], n, s));
        }
    }

    public void EnqueueFill(nint stream, int streamDevice, DeviceMemory dst, byte value)
    {
        Use(streamDevice);
        Check(Cuda.MemsetD8Async(dst.Address, value, (nuint)dst.Length, new CUstream(stream)));
    }

    public void Record(nint evt, nint stream, int streamDevice)
    {
        Use(streamDevice);
        Check(Cuda.EventRecord(new CUevent(evt), new CUstream(stream)));
    }

    public void Wait(nint stream, int streamDevice, nint evt)
    {
        Use(streamDevice);
        Check(Cuda.StreamWaitEvent(new CUstream(stream), new CUevent(evt), 0));
    }

    public bool Query(nint evt, int device)
    {
        Use(device);
        var status = Cuda.EventQuery(new CUevent(evt));
        if (status == CUresult.ErrorNotReady)
        {
            return false;
        }

        Check(status, async: true);
        return true;
    }

    public void Synchronize(nint evt, int device)
    {
        Use(device);
        Check(Cuda.EventSynchronize(new CUevent(evt)), async: true);
    }

    public void SynchronizeStream(nint stream, int device)
    {
        Use(device);
        Check(Cuda.StreamSynchronize(new CUstream(stream)), async: true);
    }

    public float ElapsedMilliseconds(nint start, nint end, int device)
    {
        Use(device);
        float ms;
        Check(Cuda.EventElapsedTime(&ms, new CUevent(start), new CUevent(end)));
        return ms;
    }

    public byte[] ExportIpc(int device, ulong address)
    {
        Use(device);
        CUipcMemHandle handle;
        Check(Cuda.IpcGetMemHandle(&handle, address));
        return new ReadOnlySpan<byte>(handle.reserved, Cuda.CU_IPC_HANDLE_SIZE).ToArray();
    }

    public ulong ImportIpc(int device, ReadOnlySpan<byte> handle)
    {
        if (handle.Length != Cuda.CU_IPC_HANDLE_SIZE)
        {
            throw new ArgumentException($"a CUDA IPC handle has {Cuda.CU_IPC_HANDLE_SIZE} bytes, got {handle.Length}", nameof(handle));
        }

        Use(device);
        CUipcMemHandle h;
        handle.CopyTo(new Span<byte>(h.reserved, Cuda.CU_IPC_HANDLE_SIZE));
        ulong p;
        Check(Cuda.IpcOpenMemHandle(&p, h, 1 /* CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS */));
        return p;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        for (var d = 0; d < _contexts.Length; d++)
        {
            // Releasing the last reference destroys the primary context with everything still allocated in it.
            _ = Cuda.DevicePrimaryCtxRelease(d);
        }
    }

    private void Use(int device) => Check(Cuda.CtxSetCurrent(_contexts[device]));

    private void Check(CUresult status, bool async = false, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != CUresult.Success)
        {
            throw Error(Name, status, async, expression);
        }
    }

    private static void Check(string name, CUresult status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != CUresult.Success)
        {
            throw Error(name, status, false, expression);
        }
    }

    private static DeviceException Error(string backend, CUresult status, bool async, string? expression)
    {
        var (errorName, text) = CudaException.Describe(status);
        var kind = status switch
        {
            CUresult.ErrorOutOfMemory => DeviceErrorKind.OutOfMemory,
            CUresult.ErrorInvalidValue or CUresult.ErrorInvalidDevice => DeviceErrorKind.InvalidArgument,
            CUresult.ErrorInvalidHandle or CUresult.ErrorInvalidContext or CUresult.ErrorContextIsDestroyed => DeviceErrorKind.InvalidHandle,
            CUresult.ErrorPeerAccessUnsupported or CUresult.ErrorPeerAccessNotEnabled or CUresult.ErrorTooManyPeers => DeviceErrorKind.PeerAccess,
            CUresult.ErrorNotSupported or CUresult.ErrorNotPermitted => DeviceErrorKind.Unsupported,
            CUresult.ErrorTimeout => DeviceErrorKind.Timeout,
            CUresult.ErrorNoDevice or CUresult.ErrorNotInitialized or CUresult.ErrorDeinitialized => DeviceErrorKind.NotAvailable,
            _ => async ? DeviceErrorKind.DeviceFault : DeviceErrorKind.Other,
        };
        return new DeviceException(kind, backend, expression ?? "cuda call", (int)status, errorName, text);
    }

    private static DeviceException NotAvailable(string name, string why) =>
        new(DeviceErrorKind.NotAvailable, name, "open", 0, "NOT_AVAILABLE", why);

    private static string Utf8(byte* p) => Encoding.UTF8.GetString(new ReadOnlySpan<byte>(p, 256).SliceAtNull());
}

internal static class SpanExtensions
{
    public static ReadOnlySpan<byte> SliceAtNull(this ReadOnlySpan<byte> span)
    {
        var end = span.IndexOf((byte)0);
        return end < 0 ? span : span[..end];
    }
}
