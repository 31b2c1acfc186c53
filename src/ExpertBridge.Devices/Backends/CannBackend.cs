using System.Runtime.CompilerServices;
using ExpertBridge.Interop.Acl;

namespace ExpertBridge.Devices.Backends;

/// <summary>
/// The AscendCL backend over the generated bindings. aclInit runs once per process (a second runtime reuses it) and
/// is not finalized on dispose: AscendCL cannot be initialized again in the same process. Each device's default
/// context (from aclrtSetDevice) is made current before every call. The bindings carry no IPC entry points yet, so
/// IPC reports Unsupported.
/// </summary>
internal sealed unsafe class CannBackend : IDeviceBackend
{
    private readonly AclrtContext[] _contexts;
    private int _disposed;

    private CannBackend(string name, AclrtContext[] contexts, DeviceInfo[] devices, IFaultControl? faults)
    {
        Name = name;
        _contexts = contexts;
        Devices = devices;
        Faults = faults;
    }

    public string Name { get; }

    public IReadOnlyList<DeviceInfo> Devices { get; }

    public IFaultControl? Faults { get; }

    public static IDeviceBackend Open(DeviceRuntimeOptions options)
    {
        var name = options.Emulated ? "cann (emulated)" : "cann";
        if (options.Emulated && Environment.GetEnvironmentVariable(Acl.LibraryVariable) is null)
        {
            Environment.SetEnvironmentVariable(Acl.LibraryVariable, EmulatorLibrary.Locate("libeb_acl_emulator.so", options));
        }

        if (!Acl.IsSupported)
        {
            throw NotAvailable(name, Acl.LibraryProbe.FailureMessage ?? "libascendcl.so could not be loaded");
        }

        var emulator = EmulatorLibrary.TryAttach(Acl.LibraryProbe.Handle);
        if ((emulator is not null) != options.Emulated)
        {
            throw NotAvailable(name, $"this process already bound {Acl.LibraryProbe.LoadedPath} for AscendCL; the emulator and CANN cannot share a process");
        }

        var status = Acl.Init(null);
        if (status != AclError.ErrorRepeatInitialize)
        {
            Check(name, status);
        }

        uint count;
        Check(name, Acl.GetDeviceCount(&count));
        var contexts = new AclrtContext[count];
        var infos = new DeviceInfo[count];
        for (var d = 0; d < (int)count; d++)
        {
            Check(name, Acl.SetDevice(d));
            AclrtContext ctx;
            Check(name, Acl.GetCurrentContext(&ctx));
            contexts[d] = ctx;
            nuint free, total;
            Check(name, Acl.GetMemInfo(AclrtMemAttr.HbmMem, &free, &total));
            var peers = new List<int>();
            for (var p = 0; p < (int)count; p++)
            {
                int can;
                if (p != d && Acl.DeviceCanAccessPeer(&can, d, p) == AclError.Success && can != 0)
                {
                    peers.Add(p);
                }
            }

            infos[d] = new DeviceInfo(d, $"Ascend NPU {d}", (long)total, options.Node, $"npu:{d}", peers);
        }

        return new CannBackend(name, contexts, infos, emulator);
    }

    public DeviceMemoryInfo GetMemoryInfo(int device)
    {
        Use(device);
        nuint free, total;
        Check(Acl.GetMemInfo(AclrtMemAttr.HbmMem, &free, &total));
        return new DeviceMemoryInfo((long)free, (long)total);
    }

    public void MakeCurrent(int device) => Use(device);

    public void EnablePeerAccess(int device, int peer)
    {
        Use(device);
        Check(Acl.DeviceEnablePeerAccess(peer, 0));
    }

    public ulong Allocate(int device, long bytes)
    {
        Use(device);
        void* p;
        Check(Acl.Malloc(&p, (nuint)bytes, AclrtMemMallocPolicy.HugeFirst));
        return (ulong)p;
    }

    public nint AllocateHost(long bytes)
    {
        Use(0);
        void* p;
        Check(Acl.MallocHost(&p, (nuint)bytes));
        return (nint)p;
    }

    public nint CreateStream(int device, StreamPriority priority)
    {
        Use(device);
        AclrtStream s;
        Check(Acl.CreateStreamWithConfig(&s, priority == StreamPriority.Low ? 7u : 0u, 0));
        return s.Handle;
    }

    public nint CreateEvent(int device)
    {
        Use(device);
        AclrtEvent e;
        Check(Acl.CreateEvent(&e));
        return e.Handle;
    }

    public void Release(ResourceKind kind, int device, ulong handle)
    {
        Use(device < 0 ? 0 : device);
        switch (kind)
        {
            case ResourceKind.DeviceMemory:
                Check(Acl.Free((void*)handle));
                break;
            case ResourceKind.HostMemory:
                Check(Acl.FreeHost((void*)handle));
                break;
            case ResourceKind.Stream:
                Check(Acl.DestroyStream(new AclrtStream((nint)handle)));
                break;
            case ResourceKind.Event:
                Check(Acl.DestroyEvent(new AclrtEvent((nint)handle)));
                break;
            default:
                throw Unsupported(kind.ToString());
        }
    }

    public void CopySync(DeviceMemory dst, DeviceMemory src)
    {
        Use(dst.IsHost ? src.Device : dst.Device);
        var n = (nuint)src.Length;
        Check(Acl.Memcpy((void*)dst.Address, n, (void*)src.Address, n, KindOf(dst, src)));
    }

    public void FillSync(DeviceMemory dst, byte value)
    {
        Use(dst.Device);
        Check(Acl.Memset((void*)dst.Address, (nuint)dst.Length, value, (nuint)dst.Length));
    }

    public void EnqueueCopy(nint stream, int streamDevice, DeviceMemory dst, DeviceMemory src)
    {
        Use(streamDevice);
        var n = (nuint)src.Length;
        Check(Acl.MemcpyAsync((void*)dst.Address, n, (void*)src.Address, n, KindOf(dst, src), new AclrtStream(stream)));
    }

    public void EnqueueFill(nint stream, int streamDevice, DeviceMemory dst, byte value)
    {
        Use(streamDevice);
        Check(Acl.MemsetAsync((void*)dst.Address, (nuint)dst.Length, value, (nuint)dst.Length, new AclrtStream(stream)));
    }

    public void Record(nint evt, nint stream, int streamDevice)
    {
        Use(streamDevice);
        Check(Acl.RecordEvent(new AclrtEvent(evt), new AclrtStream(stream)));
    }

    public void Wait(nint stream, int streamDevice, nint evt)
    {
        Use(streamDevice);
        Check(Acl.StreamWaitEvent(new AclrtStream(stream), new AclrtEvent(evt)));
    }

    public bool Query(nint evt, int device)
    {
        Use(device);
        AclrtEventRecordedStatus status;
        Check(Acl.QueryEventStatus(new AclrtEvent(evt), &status), async: true);
        return status == AclrtEventRecordedStatus.Complete;
    }

    public void Synchronize(nint evt, int device)
    {
        Use(device);
        Check(Acl.SynchronizeEvent(new AclrtEvent(evt)), async: true);
    }

    public void SynchronizeStream(nint stream, int device)
    {
        Use(device);
        Check(Acl.SynchronizeStream(new AclrtStream(stream)), async: true);
    }

    public float ElapsedMilliseconds(nint start, nint end, int device)
    {
        Use(device);
        float ms;
        Check(Acl.EventElapsedTime(&ms, new AclrtEvent(start), new AclrtEvent(end)));
        return ms;
    }

    public byte[] ExportIpc(int device, ulong address) => throw Unsupported("IPC export (the AscendCL bindings carry no aclrtIpcMem* entry points)");

    public ulong ImportIpc(int device, ReadOnlySpan<byte> handle) => throw Unsupported("IPC import (the AscendCL bindings carry no aclrtIpcMem* entry points)");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        for (var d = 0; d < _contexts.Length; d++)
        {
            _ = Acl.ResetDevice(d); // frees what the device still holds; aclFinalize is left to process exit
        }
    }

    private static AclrtMemcpyKind KindOf(DeviceMemory dst, DeviceMemory src) =>
        src.IsHost ? AclrtMemcpyKind.HostToDevice : dst.IsHost ? AclrtMemcpyKind.DeviceToHost : AclrtMemcpyKind.DeviceToDevice;

    private void Use(int device) => Check(Acl.SetCurrentContext(_contexts[device]));

    private void Check(AclError status, bool async = false, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != AclError.Success)
        {
            throw Error(Name, status, async, expression);
        }
    }

    private static void Check(string name, AclError status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != AclError.Success)
        {
            throw Error(name, status, false, expression);
        }
    }

    private static DeviceException Error(string backend, AclError status, bool async, string? expression)
    {
        var (errorName, text) = AclException.Describe(status);
        var kind = status switch
        {
            AclError.ErrorRtMemoryAllocation or AclError.ErrorBadAlloc or AclError.ErrorRtDeviceOom => DeviceErrorKind.OutOfMemory,
            AclError.ErrorInvalidParam or AclError.ErrorRtParamInvalid or AclError.ErrorRtInvalidDeviceid or AclError.ErrorInvalidDevice
                or AclError.ErrorRtAddrUnaligned or AclError.ErrorMemoryAddressUnaligned => DeviceErrorKind.InvalidArgument,
            AclError.ErrorRtContextNull or AclError.ErrorRtInvalidHandle or AclError.ErrorInvalidResourceHandle => DeviceErrorKind.InvalidHandle,
            AclError.ErrorRtFeatureNotSupport or AclError.ErrorFeatureUnsupported or AclError.ErrorApiNotSupport => DeviceErrorKind.Unsupported,
            AclError.ErrorRtWaitTimeout or AclError.ErrorRtStreamSyncTimeout => DeviceErrorKind.Timeout,
            AclError.ErrorRtNoDevice or AclError.ErrorUninitialize => DeviceErrorKind.NotAvailable,
            _ => async ? DeviceErrorKind.DeviceFault : DeviceErrorKind.Other,
        };
        return new DeviceException(kind, backend, expression ?? "acl call", (int)status, errorName, text);
    }

    private DeviceException Unsupported(string what) =>
        new(DeviceErrorKind.Unsupported, Name, what, 0, "NOT_SUPPORTED", $"{what} is not available on this backend");

    private static DeviceException NotAvailable(string name, string why) =>
        new(DeviceErrorKind.NotAvailable, name, "open", 0, "NOT_AVAILABLE", why);
}
