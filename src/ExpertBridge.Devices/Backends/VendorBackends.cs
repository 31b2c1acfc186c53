namespace ExpertBridge.Devices.Backends;

/// <summary>CUDA driver backend over the generated bindings (bindings/cuda, bindings/nccl).</summary>
internal static class CudaBackend
{
    public static IDeviceBackend Open(DeviceRuntimeOptions options) =>
        throw new DeviceException(DeviceErrorKind.NotAvailable, "cuda", "open", 0, "NOT_BUILT", "the CUDA bindings are not part of this build yet");
}

/// <summary>AscendCL backend over the generated bindings (bindings/acl, bindings/hccl).</summary>
internal static class CannBackend
{
    public static IDeviceBackend Open(DeviceRuntimeOptions options) =>
        throw new DeviceException(DeviceErrorKind.NotAvailable, "cann", "open", 0, "NOT_BUILT", "the AscendCL bindings are not part of this build yet");
}
