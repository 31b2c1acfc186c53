using System.Diagnostics;

namespace ExpertBridge.Devices.Relocation;

/// <summary>
/// A host-side token bucket over the bytes one device issues for relocation (generic cell rate algorithm): a
/// reservation of n bytes returns how long to wait before issuing them, so that over any interval t at most
/// <c>rate × (t + <see cref="Burst"/>)</c> bytes (plus one reservation) are issued. Reservations are first come, first
/// served; waiting is the caller's (a timer, never a spin). Thread-safe.
/// </summary>
internal sealed class BandwidthPacer
{
    /// <summary>How far ahead of the steady rate issues may run: absorbs the timer's late wake-ups (about 1 ms on
    /// Linux) without losing rate, and bounds the burst a device sees after an idle period.</summary>
    public static readonly TimeSpan Burst = TimeSpan.FromMilliseconds(5);

    private readonly object _gate = new();
    private readonly double _ticksPerByte;
    private readonly long _burstTicks;
    private long _theoreticalArrival;

    public BandwidthPacer(long bytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerSecond);
        BytesPerSecond = bytesPerSecond;
        _ticksPerByte = Stopwatch.Frequency / (double)bytesPerSecond;
        _burstTicks = (long)(Burst.TotalSeconds * Stopwatch.Frequency);
    }

    public long BytesPerSecond { get; }

    /// <summary>
    /// The size of one paced unit: about a millisecond of the rate, at least 256 KiB (fewer driver calls at low rates)
    /// and at most 64 MiB (larger transfers are split so that one unit is a short burst on the device).
    /// </summary>
    public long ChunkBytes => Math.Clamp(BytesPerSecond / 1000, 256L << 10, 64L << 20);

    /// <summary>Reserves <paramref name="bytes"/> now; returns the wait before issuing them (zero: issue now).</summary>
    public TimeSpan Reserve(long bytes) => Reserve(bytes, Stopwatch.GetTimestamp());

    /// <summary>Reserves <paramref name="bytes"/> at timestamp <paramref name="now"/> (<see cref="Stopwatch"/> ticks).</summary>
    internal TimeSpan Reserve(long bytes, long now)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            var arrival = Math.Max(_theoreticalArrival, now);
            var start = arrival - _burstTicks;
            _theoreticalArrival = arrival + (long)Math.Ceiling(bytes * _ticksPerByte);
            return start > now ? Stopwatch.GetElapsedTime(now, start) : TimeSpan.Zero;
        }
    }

    /// <summary>Waits out the reservations of every pacer in <paramref name="pacers"/> (the longest wait) without
    /// blocking a thread.</summary>
    public static Task WaitAsync(IEnumerable<BandwidthPacer> pacers, long bytes, CancellationToken cancellationToken) =>
        WaitAsync(pacers.Select(p => (p, bytes)), cancellationToken);

    /// <summary>Reserves each (pacer, bytes) pair and waits out the longest of their waits without blocking a thread.</summary>
    public static Task WaitAsync(IEnumerable<(BandwidthPacer Pacer, long Bytes)> reservations, CancellationToken cancellationToken)
    {
        var wait = TimeSpan.Zero;
        foreach (var (pacer, bytes) in reservations)
        {
            var w = pacer.Reserve(bytes);
            if (w > wait)
            {
                wait = w;
            }
        }

        return wait > TimeSpan.Zero ? Task.Delay(wait, cancellationToken) : Task.CompletedTask;
    }
}
