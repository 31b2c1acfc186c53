namespace ExpertBridge.Devices;

/// <summary>
/// Point-to-point transfers between devices of different processes or nodes through the vendor's collective
/// library (NCCL on CUDA, HCCL on Ascend): one rank per global device (EP rank), so a process with several devices
/// holds several ranks. Sends and receives are enqueued on device streams; between <see cref="GroupStart"/> and
/// <see cref="GroupEnd"/> they progress together, which two ranks that send to each other need. Both sides must
/// issue matching calls in the same order.
/// </summary>
public abstract class CollectiveTransport : IDisposable
{
    /// <summary>Enqueues sending <paramref name="source"/> (on this process's device) to global rank <paramref name="peer"/>.</summary>
    public abstract void Send(DeviceStream stream, DeviceMemory source, int peer);

    /// <summary>Enqueues receiving into <paramref name="target"/> from global rank <paramref name="peer"/>.</summary>
    public abstract void Receive(DeviceStream stream, DeviceMemory target, int peer);

    public abstract void GroupStart();

    public abstract void GroupEnd();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}
