namespace ExpertBridge.Devices;

/// <summary>How to open a <see cref="DeviceRuntime"/>.</summary>
public sealed class DeviceRuntimeOptions
{
    /// <summary>The backend; <see cref="DeviceBackend.Host"/> by default.</summary>
    public DeviceBackend Backend { get; init; } = DeviceBackend.Host;

    /// <summary>
    /// For <see cref="DeviceBackend.Cuda"/> and <see cref="DeviceBackend.Cann"/>: load ExpertBridge's host-memory emulator
    /// (libeb_cuda_emulator.so / libeb_acl_emulator.so) in place of the vendor library. A process binds one library per
    /// vendor: the first runtime of a vendor decides whether it is the emulator or the driver.
    /// </summary>
    public bool Emulated { get; init; }

    /// <summary>
    /// Folder holding the emulator libraries. Default: <c>EXPERTBRIDGE_EMULATOR_DIR</c>, else the folder of the
    /// application, else <c>artifacts/native</c> of the repository that contains the application.
    /// </summary>
    public string? EmulatorDirectory { get; init; }

    /// <summary>Host backend: number of emulated devices.</summary>
    public int HostDevices { get; init; } = 2;

    /// <summary>Host backend: memory limit of each device in bytes.</summary>
    public long HostDeviceMemory { get; init; } = 1L << 30;

    /// <summary>The node (host) this process runs on, reported in <see cref="DeviceInfo.Node"/>.</summary>
    public int Node { get; init; }
}
