using System.Diagnostics;
using ExpertBridge.Devices.Backends;

namespace ExpertBridge.Devices;

/// <summary>
/// An in-order queue of device work. Enqueue calls return at once; events tell when the work is done.
/// A failure of queued work is reported by the next event recorded on the stream after it (and by
/// <see cref="Synchronize"/>), as <see cref="DeviceException"/> with <see cref="DeviceErrorKind.DeviceFault"/>.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "A device stream (CUDA/AscendCL term), not a System.IO.Stream.")]
public sealed class DeviceStream : DeviceResource
{
    internal DeviceStream(DeviceRuntime runtime, int device, nint handle, StreamPriority priority)
        : base(runtime, ResourceKind.Stream, device, (ulong)handle)
    {
        Priority = priority;
    }

    public StreamPriority Priority { get; }

    private nint Native => (nint)Handle;

    /// <summary>
    /// Enqueues a copy of <paramref name="src"/> into <paramref name="dst"/> (same length): host to device, device to
    /// host, within a device, or between two devices of this process (a peer copy).
    /// </summary>
    public void EnqueueCopy(DeviceMemory dst, DeviceMemory src)
    {
        ThrowIfDisposed();
        DeviceRuntime.CheckCopy(dst, src);
        if (src.Length > 0)
        {
            Runtime.Backend.EnqueueCopy(Native, Device, dst, src);
        }
    }

    /// <summary>Enqueues setting every byte of <paramref name="dst"/> to <paramref name="value"/>.</summary>
    public void EnqueueFill(DeviceMemory dst, byte value)
    {
        ThrowIfDisposed();
        if (dst.IsHost)
        {
            throw new ArgumentException($"fill target {dst} must be device memory", nameof(dst));
        }

        if (dst.Length > 0)
        {
            Runtime.Backend.EnqueueFill(Native, Device, dst, value);
        }
    }

    /// <summary>Records <paramref name="evt"/> after the work queued so far.</summary>
    public void Record(DeviceEvent evt)
    {
        ArgumentNullException.ThrowIfNull(evt);
        ThrowIfDisposed();
        Runtime.Backend.Record((nint)evt.Handle, Native, Device);
    }

    /// <summary>Records a new event after the work queued so far (the caller disposes it).</summary>
    public DeviceEvent Record()
    {
        var evt = Runtime.CreateEvent(Device);
        Record(evt);
        return evt;
    }

    /// <summary>Makes later work on this stream wait for <paramref name="evt"/> (which may belong to another device).</summary>
    public void Wait(DeviceEvent evt)
    {
        ArgumentNullException.ThrowIfNull(evt);
        ThrowIfDisposed();
        Runtime.Backend.Wait(Native, Device, (nint)evt.Handle);
    }

    /// <summary>Blocks until the queued work is done; throws when some of it failed since the last report.</summary>
    public void Synchronize()
    {
        ThrowIfDisposed();
        Runtime.Backend.SynchronizeStream(Native, Device);
    }
}

/// <summary>A marker in a stream: completion, failure and timing of the work before it.</summary>
public sealed class DeviceEvent : DeviceResource
{
    internal DeviceEvent(DeviceRuntime runtime, int device, nint handle)
        : base(runtime, ResourceKind.Event, device, (ulong)handle)
    {
    }

    /// <summary>True when the work before the last record is done (or the event was never recorded).</summary>
    /// <exception cref="DeviceException">That work failed.</exception>
    public bool IsComplete
    {
        get
        {
            ThrowIfDisposed();
            return Runtime.Backend.Query((nint)Handle, Device);
        }
    }

    /// <summary>Blocks until the event completes; throws when the work before it failed.</summary>
    public void Synchronize()
    {
        ThrowIfDisposed();
        Runtime.Backend.Synchronize((nint)Handle, Device);
    }

    /// <summary>
    /// Waits without blocking a thread until the event completes (true) or <paramref name="timeout"/> passes (false).
    /// Throws <see cref="DeviceException"/> when the work failed, <see cref="OperationCanceledException"/> on cancellation.
    /// </summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        while (!IsComplete)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (timeout != Timeout.InfiniteTimeSpan && clock.Elapsed >= timeout)
            {
                return false;
            }

            await Pause(clock, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>
    /// Between two polls of device work that started <paramref name="clock"/> ago: yield the thread for the first
    /// <see cref="SpinPhase"/> (a copy of tens of MB finishes within it, and a 1 ms timer tick per transfer would leave
    /// a fast device idle), then sleep at the timer's resolution.
    /// </summary>
    internal static Task Pause(Stopwatch clock, CancellationToken cancellationToken) =>
        clock.Elapsed < SpinPhase ? Task.Run(Thread.Yield, CancellationToken.None) : Task.Delay(1, cancellationToken);

    private static readonly TimeSpan SpinPhase = TimeSpan.FromMilliseconds(2);

    /// <summary>Time between two completed, timed events of the same device.</summary>
    public static TimeSpan Elapsed(DeviceEvent start, DeviceEvent end)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(end);
        start.ThrowIfDisposed();
        end.ThrowIfDisposed();
        var ms = start.Runtime.Backend.ElapsedMilliseconds((nint)start.Handle, (nint)end.Handle, start.Device);
        return TimeSpan.FromMilliseconds(ms);
    }
}
