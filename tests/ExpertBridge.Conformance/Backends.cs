using ExpertBridge.Devices;

namespace ExpertBridge.Conformance;

/// <summary>
/// A process binds one library per vendor, so a test run is either emulated (the default, CI) or on hardware
/// (EXPERTBRIDGE_CONFORMANCE_HARDWARE=1: the real CUDA / Ascend classes run, the emulated ones skip).
/// </summary>
internal static class Mode
{
    public static bool Hardware => Environment.GetEnvironmentVariable("EXPERTBRIDGE_CONFORMANCE_HARDWARE") == "1";

    public static string? EmulatedOnly => Hardware ? "EXPERTBRIDGE_CONFORMANCE_HARDWARE=1: this run binds the vendor libraries, not the emulators" : null;

    public static string? HardwareOnly => Hardware ? null
        : "this run binds the emulators (one library per vendor and process); set EXPERTBRIDGE_CONFORMANCE_HARDWARE=1 or run `expertbridge conformance --backend cuda|cann` for the hardware";
}

public sealed class HostFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Host, HostDevices = 2, HostDeviceMemory = 256L << 20 });

public sealed class EmulatedCudaFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda, Emulated = true }, Mode.EmulatedOnly);

public sealed class EmulatedCannFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cann, Emulated = true }, Mode.EmulatedOnly);

public sealed class CudaFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda }, Mode.HardwareOnly);

public sealed class CannFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cann }, Mode.HardwareOnly);

/// <summary>The reference backend: CPU memory.</summary>
public sealed class HostConformance(HostFixture fixture) : DeviceContract(fixture), IClassFixture<HostFixture>;

/// <summary>The real CUDA binding and backend code over libeb_cuda_emulator.so.</summary>
public sealed class EmulatedCudaConformance(EmulatedCudaFixture fixture) : DeviceContract(fixture), IClassFixture<EmulatedCudaFixture>;

/// <summary>The real AscendCL binding and backend code over libeb_acl_emulator.so.</summary>
public sealed class EmulatedCannConformance(EmulatedCannFixture fixture) : DeviceContract(fixture), IClassFixture<EmulatedCannFixture>;

/// <summary>libcuda.so.1 and a GPU, when present (skipped with the reason otherwise).</summary>
public sealed class CudaConformance(CudaFixture fixture) : DeviceContract(fixture), IClassFixture<CudaFixture>;

/// <summary>libascendcl.so and an NPU, when present (skipped with the reason otherwise).</summary>
public sealed class CannConformance(CannFixture fixture) : DeviceContract(fixture), IClassFixture<CannFixture>;
