using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using ExpertBridge.Interop.Acl;
using ExpertBridge.Interop.Hccl;

namespace ExpertBridge.Devices.Transport;

/// <summary>
/// HCCL point-to-point transfers over the generated bindings: one communicator per local rank (HcclCommInitRootInfo,
/// each on its own thread with its device current, since the call blocks until every rank joins). HcclSend/HcclRecv
/// block their stream until the peer's matching call runs, so two ranks that send to each other would deadlock with
/// them; a group is therefore collected and issued at <see cref="CollectiveTransport.GroupEnd"/> as one
/// HcclBatchSendRecv per local communicator, on the group's first stream of that device (its other streams are
/// joined to it with events before and after, which keeps every transfer stream-ordered). HCCL has no abort in the
/// bound subset: <see cref="CollectiveTransport.Abort"/> makes the transport refuse further calls and leaves the
/// communicators to <see cref="CollectiveTransport.Dispose()"/>. Not run on this project's machines (no Ascend here).
/// </summary>
internal sealed unsafe class HcclTransport : CollectiveTransport
{
    private readonly HcclComm[] _comms;
    private readonly List<Operation> _group = [];
    private readonly List<DeviceEvent> _joins = [];

    internal HcclTransport(DeviceRuntime runtime, int ranks, IReadOnlyList<int> localRanks, HcclComm[] comms)
        : base(runtime, "hccl", ranks, localRanks)
    {
        _comms = comms;
    }

    /// <summary>The operations of the open group, as HcclBatchSendRecv items, in call order (for tests).</summary>
    internal IReadOnlyList<(int Device, HcclSendRecvItem Item)> PendingItems => [.. _group.Select(o => (o.Stream.Device, o.Item))];

    public static HcclTransport Connect(DeviceRuntime runtime, CollectiveTransportOptions options)
    {
        RequireLibrary(runtime);
        var id = ResolveUniqueId(options, (int)Hccl.HCCL_ROOT_INFO_BYTES, "hccl", () => NewUniqueId(runtime));
        var local = options.LocalRanks;
        var comms = JoinWithTimeout("hccl", "HcclCommInitRootInfo", options.InitTimeout, () =>
        {
            var result = new HcclComm[local.Count];
            var errors = new ExceptionDispatchInfo?[local.Count];
            var threads = new List<Thread>();
            for (var d = 0; d < local.Count; d++)
            {
                if (local[d] < 0)
                {
                    continue;
                }

                var device = d;
                var thread = new Thread(() =>
                {
                    try
                    {
                        runtime.Backend.MakeCurrent(device);
                        HcclRootInfo info = default;
                        id.CopyTo(new Span<byte>(info.@internal, id.Length));
                        HcclComm comm;
                        Check(Hccl.CommInitRootInfo((uint)options.Ranks, &info, (uint)local[device], &comm));
                        result[device] = comm;
                    }
#pragma warning disable CA1031 // rethrown on the joining thread (an escape here would end the process)
                    catch (Exception ex)
                    {
                        errors[device] = ExceptionDispatchInfo.Capture(ex);
                    }
#pragma warning restore CA1031
                })
                {
                    IsBackground = true,
                    Name = $"hccl init (device {d})",
                };
                thread.Start();
                threads.Add(thread);
            }

            foreach (var t in threads)
            {
                t.Join();
            }

            if (errors.FirstOrDefault(e => e is not null) is { } error)
            {
                foreach (var c in result.Where(c => !c.IsNull))
                {
                    _ = Hccl.CommDestroy(c);
                }

                error.Throw();
            }

            return result;
        });
        return new HcclTransport(runtime, options.Ranks, local, comms);
    }

    public static byte[] NewUniqueId(DeviceRuntime runtime)
    {
        RequireLibrary(runtime);
        runtime.Backend.MakeCurrent(0); // HcclGetRootInfo needs a device set on the calling thread
        HcclRootInfo info = default;
        Check(Hccl.GetRootInfo(&info));
        return new ReadOnlySpan<byte>(info.@internal, (int)Hccl.HCCL_ROOT_INFO_BYTES).ToArray();
    }

    protected override void StartGroupCore()
    {
        _group.Clear();
        ReleaseFinishedJoins();
    }

    protected override void SendCore(DeviceStream stream, DeviceMemory source, int peer) =>
        _group.Add(new Operation(stream, Item(HcclSendRecvType.Send, source, peer)));

    protected override void ReceiveCore(DeviceStream stream, DeviceMemory target, int peer) =>
        _group.Add(new Operation(stream, Item(HcclSendRecvType.Recv, target, peer)));

    protected override void EndGroupCore()
    {
        try
        {
            foreach (var device in _group.Select(o => o.Stream.Device).Distinct().ToList())
            {
                var ops = _group.Where(o => o.Stream.Device == device).ToList();
                var streams = ops.Select(o => o.Stream).Distinct().ToList();
                var main = streams[0];
                foreach (var other in streams.Skip(1))
                {
                    var ready = other.Record();
                    _joins.Add(ready);
                    main.Wait(ready);
                }

                var items = ops.Select(o => o.Item).ToArray();
                Runtime.Backend.MakeCurrent(device);
                fixed (HcclSendRecvItem* p = items)
                {
                    Check(Hccl.BatchSendRecv(p, (uint)items.Length, _comms[device], new AclrtStream((nint)main.Handle)));
                }

                if (streams.Count > 1)
                {
                    var done = main.Record();
                    _joins.Add(done);
                    foreach (var other in streams.Skip(1))
                    {
                        other.Wait(done);
                    }
                }
            }
        }
        finally
        {
            _group.Clear();
        }
    }

    protected override DeviceException? QueryAsyncError()
    {
        foreach (var comm in _comms)
        {
            if (comm.IsNull)
            {
                continue;
            }

            HcclResult error;
            Check(Hccl.GetCommAsyncError(comm, &error));
            if (error != HcclResult.Success)
            {
                return Error(error, "HcclGetCommAsyncError");
            }
        }

        return null;
    }

    protected override void AbortCore()
    {
        // No HcclCommAbort in the bound subset: refuse further calls (the base class does) and destroy at Dispose.
    }

    protected override void Dispose(bool disposing)
    {
        foreach (var e in _joins)
        {
            e.Dispose();
        }

        _joins.Clear();
        for (var d = 0; d < _comms.Length; d++)
        {
            if (!_comms[d].IsNull)
            {
                _ = Hccl.CommDestroy(_comms[d]);
                _comms[d] = HcclComm.Null;
            }
        }

        base.Dispose(disposing);
    }

    private void ReleaseFinishedJoins()
    {
        for (var i = _joins.Count - 1; i >= 0; i--)
        {
            bool done;
            try
            {
                done = _joins[i].IsComplete;
            }
            catch (DeviceException)
            {
                done = true; // reported through the transfers' own events
            }

            if (done)
            {
                _joins[i].Dispose();
                _joins.RemoveAt(i);
            }
        }
    }

    private static HcclSendRecvItem Item(HcclSendRecvType type, DeviceMemory memory, int peer) => new()
    {
        sendRecvType = type,
        buf = (void*)memory.Address,
        count = (ulong)memory.Length,
        dataType = HcclDataType.Uint8,
        remoteRank = (uint)peer,
    };

    private static void RequireLibrary(DeviceRuntime runtime)
    {
        if (runtime.IsEmulated)
        {
            throw new DeviceException(DeviceErrorKind.NotAvailable, "hccl", "open", 0, "NOT_AVAILABLE",
                $"HCCL drives real NPUs; {runtime.Name} is an emulator (use the host backend's tests for the protocol)");
        }

        if (!Hccl.IsSupported)
        {
            throw new DeviceException(DeviceErrorKind.NotAvailable, "hccl", "open", 0, "NOT_AVAILABLE",
                Hccl.LibraryProbe.FailureMessage ?? "libhccl.so could not be loaded");
        }
    }

    private static void Check(HcclResult status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != HcclResult.Success)
        {
            throw Error(status, expression);
        }
    }

    internal static DeviceException Error(HcclResult status, string? expression)
    {
        var kind = status switch
        {
            HcclResult.EPara or HcclResult.EPtr => DeviceErrorKind.InvalidArgument,
            HcclResult.EMemory => DeviceErrorKind.OutOfMemory,
            HcclResult.ETimeout => DeviceErrorKind.Timeout,
            HcclResult.ENotSupport => DeviceErrorKind.Unsupported,
            HcclResult.ERemote or HcclResult.ETcpConnect or HcclResult.ERoceConnect or HcclResult.ETcpTransfer
                or HcclResult.ERoceTransfer or HcclResult.ENetwork or HcclResult.ERuntime or HcclResult.EDrv => DeviceErrorKind.DeviceFault,
            _ => DeviceErrorKind.Other,
        };
        return new DeviceException(kind, "hccl", expression ?? "hccl call", (int)status,
            Hccl.GetResultName(status) ?? $"HcclResult {(int)status}", HcclException.Describe(status));
    }

    private readonly record struct Operation(DeviceStream Stream, HcclSendRecvItem Item);
}
