using ExpertBridge.Devices;

namespace ExpertBridge.Conformance;

public sealed class HostFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Host, HostDevices = 2, HostDeviceMemory = 256L << 20 });

public sealed class EmulatedCudaFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda, Emulated = true });

public sealed class EmulatedCannFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cann, Emulated = true });

public sealed class CudaFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cuda });

public sealed class CannFixture() : RuntimeFixture(new DeviceRuntimeOptions { Backend = DeviceBackend.Cann });

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
