using System.Runtime.InteropServices;
using ExpertBridge.Host;
using Microsoft.Extensions.Logging;

namespace ExpertBridge.Native;

/// <summary>eb_status of expertbridge.h; the values are ABI.</summary>
public enum Status
{
    Ok = 0,
    InvalidArgument = 1,
    InvalidHandle = 2,
    OutOfRange = 3,
    BufferTooSmall = 4,
    StaleEpoch = 5,
    ConfigError = 6,
    PolicyError = 7,
    RelocationError = 8,
    RuntimeUnavailable = 9,
    InternalError = 10,
}

/// <summary>A failure with the status the export returns; the message names the argument.</summary>
internal sealed class ExportException(Status status, string argument, string detail) : Exception($"{argument}: {detail}")
{
    public Status Status { get; } = status;
}

/// <summary>A bridge created through the C ABI, with the logger factory it owns.</summary>
internal sealed class Embedded : IDisposable
{
    private readonly ILoggerFactory _loggers;

    private Embedded(Bridge bridge, ILoggerFactory loggers)
    {
        Bridge = bridge;
        _loggers = loggers;
    }

    public Bridge Bridge { get; }

    public static Embedded Start(HostConfig config)
    {
        var loggers = HostLogging.CreateFactory(config.LogLevel);
        try
        {
            return new Embedded(Bridge.Create(config, new BridgeServices { LoggerFactory = loggers }), loggers);
        }
        catch
        {
            loggers.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Bridge.Dispose();
        _loggers.Dispose();
    }
}

// Mirrors of the size-prefixed structs in expertbridge.h (same field order, natural alignment).
#pragma warning disable CA1815 // Interop mirrors are never compared.

[StructLayout(LayoutKind.Sequential)]
public struct EbInfo
{
    public uint StructSize;
    public int Layers;
    public int Experts;
    public int Devices;
    public int SlotsPerDevice;
    public int Slots;
    public int MaxReplicas;
    public int Reserved;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct EbTensorDesc
{
    public uint StructSize;
    public int Layer;
    public int Slot;
    public int TensorIndex;
    public int Device;
    public int Reserved;
    public void* Data;
    public ulong Bytes;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct EbMapping
{
    public uint StructSize;
    public int Layer;
    public int* Phy2Log;
    public ulong Phy2LogCapacity;
    public int* Log2Phy;
    public ulong Log2PhyCapacity;
    public int* ReplicaCounts;
    public ulong ReplicaCountsCapacity;
    public long Epoch;
    public int MaxReplicas;
    public int Reserved;
}

[StructLayout(LayoutKind.Sequential)]
public struct EbStats
{
    public uint StructSize;
    public int PendingLayers;
    public long Steps;
    public long Epoch;
    public long Rebalances;
    public long LayersCommitted;
    public long ExpertsMoved;
    public long BytesMoved;
    public long PolicyReloads;
    public long PolicyFailures;
    public long RelocationFailures;
    public long StepsDropped;
    public double Balancedness;
    public double Imbalance;
    public double LastPolicyMs;
}
#pragma warning restore CA1815
