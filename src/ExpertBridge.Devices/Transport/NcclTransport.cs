using System.Runtime.CompilerServices;
using ExpertBridge.Interop.Cuda;
using ExpertBridge.Interop.Nccl;

namespace ExpertBridge.Devices.Transport;

/// <summary>
/// NCCL point-to-point transfers over the generated bindings: one blocking communicator per local rank, all created
/// in one ncclGroupStart/End (a process with several devices must join them together), bytes sent as ncclUint8 on the
/// caller's CUDA streams. Groups map to ncclGroupStart/End. Errors carry ncclGetErrorString and ncclGetLastError.
/// </summary>
internal sealed unsafe class NcclTransport : CollectiveTransport
{
    private readonly NcclComm[] _comms;

    private NcclTransport(DeviceRuntime runtime, int ranks, IReadOnlyList<int> localRanks, NcclComm[] comms)
        : base(runtime, "nccl", ranks, localRanks)
    {
        _comms = comms;
    }

    public static NcclTransport Connect(DeviceRuntime runtime, CollectiveTransportOptions options)
    {
        RequireLibrary(runtime);
        var id = ResolveUniqueId(options, Nccl.NCCL_UNIQUE_ID_BYTES, "nccl", () => NewUniqueId(runtime));
        var local = options.LocalRanks;
        var comms = JoinWithTimeout("nccl", "ncclCommInitRank", options.InitTimeout, () =>
        {
            NcclUniqueId uid = default;
            id.CopyTo(new Span<byte>(uid.@internal, Nccl.NCCL_UNIQUE_ID_BYTES));
            var result = new NcclComm[local.Count];
            Check(Nccl.GroupStart());
            try
            {
                for (var d = 0; d < local.Count; d++)
                {
                    if (local[d] >= 0)
                    {
                        runtime.Backend.MakeCurrent(d); // ncclCommInitRank binds the communicator to the current device
                        NcclComm comm;
                        Check(Nccl.CommInitRank(&comm, options.Ranks, uid, local[d]));
                        result[d] = comm;
                    }
                }
            }
            finally
            {
                Check(Nccl.GroupEnd());
            }

            return result;
        });
        return new NcclTransport(runtime, options.Ranks, local, comms);
    }

    public static byte[] NewUniqueId(DeviceRuntime runtime)
    {
        RequireLibrary(runtime);
        NcclUniqueId uid;
        Check(Nccl.GetUniqueId(&uid));
        return new ReadOnlySpan<byte>(uid.@internal, Nccl.NCCL_UNIQUE_ID_BYTES).ToArray();
    }

    protected override void StartGroupCore() => Check(Nccl.GroupStart());

    protected override void EndGroupCore() => Check(Nccl.GroupEnd());

    protected override void SendCore(DeviceStream stream, DeviceMemory source, int peer)
    {
        Runtime.Backend.MakeCurrent(stream.Device);
        Check(Nccl.Send((void*)source.Address, (nuint)source.Length, NcclDataType.Uint8, peer, _comms[stream.Device], new CUstream((nint)stream.Handle)));
    }

    protected override void ReceiveCore(DeviceStream stream, DeviceMemory target, int peer)
    {
        Runtime.Backend.MakeCurrent(stream.Device);
        Check(Nccl.Recv((void*)target.Address, (nuint)target.Length, NcclDataType.Uint8, peer, _comms[stream.Device], new CUstream((nint)stream.Handle)));
    }

    protected override DeviceException? QueryAsyncError()
    {
        foreach (var comm in _comms)
        {
            if (comm.IsNull)
            {
                continue;
            }

            NcclResult error;
            Check(Nccl.CommGetAsyncError(comm, &error));
            if (error is not NcclResult.Success and not NcclResult.InProgress)
            {
                return Error(error, "ncclCommGetAsyncError");
            }
        }

        return null;
    }

    protected override void AbortCore()
    {
        // ncclCommAbort stops the communicator's kernels (they leave the streams) and frees it; errors do not matter now.
        for (var d = 0; d < _comms.Length; d++)
        {
            if (!_comms[d].IsNull)
            {
                _ = Nccl.CommAbort(_comms[d]);
                _comms[d] = NcclComm.Null;
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (!IsAborted)
        {
            // A communicator with an asynchronous error cannot be destroyed cleanly (destroy would wait for the peer).
            var failed = QueryAsyncErrorQuietly();
            for (var d = 0; d < _comms.Length; d++)
            {
                if (!_comms[d].IsNull)
                {
                    _ = failed ? Nccl.CommAbort(_comms[d]) : Nccl.CommDestroy(_comms[d]);
                    _comms[d] = NcclComm.Null;
                }
            }
        }

        base.Dispose(disposing);
    }

    private bool QueryAsyncErrorQuietly()
    {
        try
        {
            return QueryAsyncError() is not null;
        }
        catch (DeviceException)
        {
            return true;
        }
    }

    private static void RequireLibrary(DeviceRuntime runtime)
    {
        if (runtime.IsEmulated)
        {
            throw new DeviceException(DeviceErrorKind.NotAvailable, "nccl", "open", 0, "NOT_AVAILABLE",
                $"NCCL drives real GPUs; {runtime.Name} is an emulator (use the host backend's tests for the protocol)");
        }

        if (!Nccl.IsSupported)
        {
            throw new DeviceException(DeviceErrorKind.NotAvailable, "nccl", "open", 0, "NOT_AVAILABLE",
                Nccl.LibraryProbe.FailureMessage ?? "libnccl.so.2 could not be loaded");
        }
    }

    private static void Check(NcclResult status, [CallerArgumentExpression(nameof(status))] string? expression = null)
    {
        if (status != NcclResult.Success)
        {
            throw Error(status, expression);
        }
    }

    internal static DeviceException Error(NcclResult status, string? expression)
    {
        var (name, text) = NcclException.Describe(status);
        var kind = status switch
        {
            NcclResult.InvalidArgument or NcclResult.InvalidUsage => DeviceErrorKind.InvalidArgument,
            NcclResult.UnhandledCudaError or NcclResult.SystemError or NcclResult.RemoteError => DeviceErrorKind.DeviceFault,
            _ => DeviceErrorKind.Other,
        };
        return new DeviceException(kind, "nccl", expression ?? "nccl call", (int)status, name, text);
    }
}
