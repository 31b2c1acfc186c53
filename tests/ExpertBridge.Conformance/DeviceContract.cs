using ExpertBridge.Devices;
using ExpertBridge.Devices.Conformance;

namespace ExpertBridge.Conformance;

/// <summary>Opens one runtime per backend for a test class, or records why it cannot be opened here.</summary>
public abstract class RuntimeFixture : IDisposable
{
    private readonly Lazy<(DeviceRuntime? Runtime, string Reason)> _runtime;

    protected RuntimeFixture(DeviceRuntimeOptions options, string? skip = null)
    {
        _runtime = new Lazy<(DeviceRuntime?, string)>(() =>
        {
            if (skip is not null)
            {
                return (null, skip);
            }

            try
            {
                var runtime = DeviceRuntime.Open(options);
                return runtime.Devices.Count > 0 ? (runtime, "") : (null, $"{runtime.Name}: no device");
            }
            catch (DeviceException ex)
            {
                return (null, ex.Message);
            }
        });
    }

    /// <summary>The runtime, or a skip naming why this backend is absent.</summary>
    public DeviceRuntime Runtime
    {
        get
        {
            var (runtime, reason) = _runtime.Value;
            if (runtime is null)
            {
                Assert.Skip(reason);
            }

            return runtime;
        }
    }

    public void Dispose()
    {
        if (_runtime.IsValueCreated)
        {
            _runtime.Value.Runtime?.Dispose();
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// The device contract, written once: every backend's thin subclass runs these facts. Each fact runs the named check
/// of <see cref="ConformanceSuite"/> (the same code `expertbridge conformance` runs on an operator's hardware).
/// </summary>
public abstract class DeviceContract(RuntimeFixture fixture)
{
    [Fact]
    public void Enumerate_Devices_ReportNameAndMemory() => Run("enumerate");

    [Fact]
    public void Allocate_BeyondDeviceMemory_ThrowsOutOfMemoryAndFreesBack() => Run("allocation-limits");

    [Fact]
    public void Copy_OddSizesAndOffsets_IsBitExact() => Run("copy-odd-sizes");

    [Fact]
    public void Stream_OrderAndCrossStreamWait_AreRespected() => Run("stream-order-events");

    [Fact]
    public void PeerCopy_TwoDevices_IsBitExact() => Run("peer-copy");

    [Fact]
    public void Copy_PastAllocationEnd_MapsToVendorError() => Run("error-mapping");

    [Fact]
    public void HostCopies_Pinned_ReportBandwidth() => Run("host-bandwidth");

    [Fact]
    public void DeviceCopies_WithinDevice_ReportBandwidth() => Run("device-bandwidth");

    [Fact]
    public void Ipc_ExportImport_MapsSameMemory() => Run("ipc-export-import");

    [Fact]
    public void Relocation_RandomWeights_IsBitExact() => Run("relocation-bit-exact");

    [Fact]
    public void Relocation_BandwidthCap_PacesToCapAndIsBitExact() => Run("relocation-bandwidth-cap");

    [Fact]
    public void Relocation_FailedCopy_KeepsOldMappingAndFreesStaging() => Run("relocation-failed-copy");

    [Fact]
    public void Relocation_OutOfMemory_KeepsOldMapping() => Run("relocation-out-of-memory");

    [Fact]
    public void Relocation_Timeout_QuarantinesStagingUntilDrained() => Run("relocation-timeout");

    [Fact]
    public void Relocation_BesideBusyComputeStream_KeepsBothCorrect() => Run("relocation-under-compute");

    private void Run(string check)
    {
        var runtime = fixture.Runtime;
        CheckResult result;
        lock (runtime)
        {
            // Checks of one backend share its fault knobs: run them one at a time.
            result = ConformanceSuite.RunOne(runtime, check);
        }

        switch (result.Status)
        {
            case CheckStatus.Skipped:
                Assert.Skip($"{runtime.Name}: {result.Message}");
                break;
            case CheckStatus.Failed:
                Assert.Fail($"{runtime.Name} {check}: {result.Message}");
                break;
            default:
                TestContext.Current.TestOutputHelper?.WriteLine(string.Join(", ", result.Figures.Select(f => $"{f.Key} {f.Value:0.###}")));
                break;
        }
    }
}
