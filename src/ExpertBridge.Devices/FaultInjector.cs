using ExpertBridge.Devices.Backends;

namespace ExpertBridge.Devices;

/// <summary>
/// Fault injection of the host backend and of the emulated drivers (the same knobs as the emulators' EB_EMU_*
/// environment variables). Real hardware has none: <see cref="DeviceRuntime.Faults"/> is null there.
/// Counters start when a knob is set; settings last until <see cref="Reset"/>.
/// </summary>
public sealed class FaultInjector
{
    private readonly IFaultControl _control;

    internal FaultInjector(IFaultControl control) => _control = control;

    /// <summary>The <paramref name="nth"/> copy from now (1-based) and the <paramref name="count"/> - 1 after it fail
    /// after writing half their bytes; -1 fails every copy from the n-th on.</summary>
    public void FailCopy(int nth, int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nth, 1);
        _control.Set("FAIL_COPY_COUNT", count);
        _control.Set("FAIL_COPY_NTH", nth);
    }

    /// <summary>The <paramref name="nth"/> device allocation from now fails with out-of-memory.</summary>
    public void FailAllocation(int nth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nth, 1);
        _control.Set("OOM_ALLOC_NTH", nth);
    }

    /// <summary>The <paramref name="nth"/> copy from now blocks its stream until <see cref="Reset"/>.</summary>
    public void StallCopy(int nth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nth, 1);
        _control.Set("STALL_COPY_NTH", nth);
    }

    /// <summary>Every copy takes at least <paramref name="delay"/>.</summary>
    public void DelayCopies(TimeSpan delay) => _control.Set("COPY_DELAY_US", (long)delay.TotalMicroseconds);

    /// <summary>Clears every knob and releases stalled copies.</summary>
    public void Reset() => _control.Reset();

    /// <summary>Live device allocations over all devices (to check that buffers were freed), or null when unknown.</summary>
    public long? LiveAllocations => _control.Stat("allocations");
}
