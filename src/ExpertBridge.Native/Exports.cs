using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using ExpertBridge.Core;
using ExpertBridge.Host;

namespace ExpertBridge.Native;

/// <summary>
/// The managed half of the C ABI. libexpertbridge.so binds each eb_ function to one method here through hostfxr.
/// Rules: blittable arguments only; every method catches every exception and returns a status (an exception that
/// crossed into native code would kill the server); messages go to the shim's thread-local last-error buffer.
/// </summary>
public static unsafe class Exports
{
    /// <summary>Bumped when a signature here or a struct in expertbridge.h changes incompatibly.</summary>
    public const int AbiVersion = 1;

    private static readonly HandleTable<Embedded> s_bridges = new();
    private static delegate* unmanaged<byte*, int, void> s_setError;

    [ThreadStatic]
    private static string? t_lastError;

    /// <summary>The message of the last failure on this thread (for managed tests that call the exports directly).</summary>
    internal static string LastError => t_lastError ?? "";

    /// <summary>Called once by the shim: hands over its error sink and checks that both halves speak the same ABI.</summary>
    [UnmanagedCallersOnly]
    public static int Initialize(delegate* unmanaged<byte*, int, void> setError, int abiVersion)
    {
        try
        {
            s_setError = setError;
            if (abiVersion != AbiVersion)
            {
                return Fail("eb_initialize", new ExportException(Status.RuntimeUnavailable, "libexpertbridge.so", $"the shim speaks ABI {abiVersion}, ExpertBridge.Native.dll speaks ABI {AbiVersion}; rebuild both from one tree"));
            }

            // Once per process, before the first bridge compiles its policies (see JitStartupProfile).
            ExpertBridge.Scripting.JitStartupProfile.Start("c-abi", typeof(Exports).Assembly);
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_initialize", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int Create(byte* configJson, nint* outBridge) => CreateCore("eb_create", configJson, outBridge, fromFile: false);

    [UnmanagedCallersOnly]
    public static int CreateFromFile(byte* configPath, nint* outBridge) => CreateCore("eb_create_from_file", configPath, outBridge, fromFile: true);

    [UnmanagedCallersOnly]
    public static int Destroy(nint bridge)
    {
        try
        {
            Resolve(bridge, "eb_destroy");
            var embedded = s_bridges.Remove((ulong)bridge) ?? throw Stale();
            embedded.Dispose();
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_destroy", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int GetInfo(nint bridge, EbInfo* info)
    {
        try
        {
            var b = Resolve(bridge, "eb_get_info").Bridge;
            var size = StructSize(info, sizeof(EbInfo), "info", "eb_info");
            var value = new EbInfo
            {
                StructSize = size,
                Layers = b.Layers,
                Experts = b.Experts,
                Devices = b.Config.Topology.Devices,
                SlotsPerDevice = b.Config.Topology.SlotsPerDevice,
                Slots = b.Slots,
                MaxReplicas = b.MaxReplicas,
            };
            WriteStruct(info, value, size);
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_get_info", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int RegisterTensor(nint bridge, EbTensorDesc* tensor)
    {
        try
        {
            var b = Resolve(bridge, "eb_register_tensor").Bridge;
            var size = StructSize(tensor, sizeof(EbTensorDesc), "tensor", "eb_tensor_desc");
            var t = ReadStruct<EbTensorDesc>(tensor, size);
            var where = $"layer {t.Layer} slot {t.Slot} tensor {t.TensorIndex}";
            RequireRange(where, "layer", t.Layer, b.Layers);
            RequireRange(where, "slot", t.Slot, b.Slots);
            RequireRange(where, "tensor_index", t.TensorIndex, 64);
            RequireRange(where, "device", t.Device, b.Config.Topology.Devices);
            if (t.Data == null)
            {
                throw new ExportException(Status.InvalidArgument, $"{where}: data", "must not be NULL");
            }

            if (t.Bytes == 0 || t.Bytes > long.MaxValue)
            {
                throw new ExportException(Status.InvalidArgument, $"{where}: bytes", $"must be > 0, got {t.Bytes}");
            }

            b.RegisterTensor(new TensorRegistration(t.Layer, t.Slot, t.TensorIndex, t.Device, (nint)t.Data, (long)t.Bytes));
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_register_tensor", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int RecordStep(nint bridge, long epoch, int* slotTokens, ulong count)
    {
        try
        {
            var b = Resolve(bridge, "eb_record_step").Bridge;
            if (slotTokens == null)
            {
                throw new ExportException(Status.InvalidArgument, "slot_tokens", "must not be NULL");
            }

            var expected = (ulong)b.Layers * (ulong)b.Slots;
            if (count != expected)
            {
                throw new ExportException(Status.InvalidArgument, "count", $"must be layers x slots = {b.Layers} x {b.Slots} = {expected}, got {count}");
            }

            if (epoch < -1)
            {
                throw new ExportException(Status.InvalidArgument, "epoch", $"must be EB_EPOCH_CURRENT (-1) or an epoch >= 0, got {epoch}");
            }

            b.RecordStep(new ReadOnlySpan<int>(slotTokens, (int)count), epoch);
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_record_step", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int StepBoundary(nint bridge, int* changedLayers, uint capacity, uint* changedCount, long* epoch)
    {
        try
        {
            var b = Resolve(bridge, "eb_step_boundary").Bridge;
            if (changedLayers == null && capacity != 0)
            {
                throw new ExportException(Status.InvalidArgument, "changed_layers", $"is NULL but capacity is {capacity}");
            }

            var span = changedLayers == null ? Span<int>.Empty : new Span<int>(changedLayers, (int)Math.Min(capacity, int.MaxValue));
            int committed;
            long now;
            try
            {
                committed = b.StepBoundary(span, out now);
            }
            catch (Exception ex) when (ex is not ObjectDisposedException and not InputException)
            {
                throw new ExportException(Status.RelocationError, "commit", $"{ex.GetType().Name}: {ex.Message}");
            }

            if (changedCount != null)
            {
                *changedCount = (uint)committed;
            }

            if (epoch != null)
            {
                *epoch = now;
            }

            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_step_boundary", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int GetMapping(nint bridge, EbMapping* mapping)
    {
        try
        {
            var b = Resolve(bridge, "eb_get_mapping").Bridge;
            var size = StructSize(mapping, sizeof(EbMapping), "mapping", "eb_mapping");
            var m = ReadStruct<EbMapping>(mapping, size);
            if (m.Layer < -1 || m.Layer >= b.Layers)
            {
                throw new ExportException(Status.OutOfRange, "mapping.layer", $"must be -1 (all) or in [0, {b.Layers}), got {m.Layer}");
            }

            var layers = m.Layer < 0 ? b.Layers : 1;
            var phy2log = Buffer(m.Phy2Log, m.Phy2LogCapacity, (long)layers * b.Slots, "phy2log");
            var log2phy = Buffer(m.Log2Phy, m.Log2PhyCapacity, (long)layers * b.Experts * b.MaxReplicas, "log2phy");
            var counts = Buffer(m.ReplicaCounts, m.ReplicaCountsCapacity, (long)layers * b.Experts, "replica_counts");
            m.Epoch = b.CopyMapping(m.Layer, phy2log, log2phy, counts);
            m.MaxReplicas = b.MaxReplicas;
            WriteStruct(mapping, m, size);
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_get_mapping", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int Rebalance(nint bridge, uint timeoutMs, int* result)
    {
        try
        {
            var b = Resolve(bridge, "eb_rebalance").Bridge;
            var outcome = b.RequestRebalance(TimeSpan.FromMilliseconds(timeoutMs));
            if (result != null)
            {
                *result = (int)outcome;
            }

            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_rebalance", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int ReloadPolicies(nint bridge)
    {
        try
        {
            var b = Resolve(bridge, "eb_reload_policies").Bridge;
            try
            {
                b.ReloadPolicy();
            }
            catch (InputException ex)
            {
                throw new ExportException(Status.PolicyError, "policy", ex.Message);
            }

            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_reload_policies", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int GetStats(nint bridge, EbStats* stats)
    {
        try
        {
            var b = Resolve(bridge, "eb_get_stats").Bridge;
            var size = StructSize(stats, sizeof(EbStats), "stats", "eb_stats");
            var s = b.Stats;
            var value = new EbStats
            {
                StructSize = size,
                PendingLayers = s.PendingLayers,
                Steps = s.Steps,
                Epoch = s.Epoch,
                Rebalances = s.Rebalances,
                LayersCommitted = s.LayersCommitted,
                ExpertsMoved = s.ExpertsMoved,
                BytesMoved = s.BytesMoved,
                PolicyReloads = s.PolicyReloads,
                PolicyFailures = s.PolicyFailures,
                RelocationFailures = s.RelocationFailures,
                StepsDropped = s.StepsDropped,
                Balancedness = s.Balancedness,
                Imbalance = s.Imbalance,
                LastPolicyMs = s.LastPolicyMilliseconds,
            };
            WriteStruct(stats, value, size);
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_get_stats", ex);
        }
    }

    [UnmanagedCallersOnly]
    public static int MetricsText(nint bridge, byte* buffer, ulong capacity, ulong* length)
    {
        try
        {
            var b = Resolve(bridge, "eb_metrics_text").Bridge;
            if (length == null)
            {
                throw new ExportException(Status.InvalidArgument, "length", "must not be NULL");
            }

            if (buffer == null && capacity != 0)
            {
                throw new ExportException(Status.InvalidArgument, "buffer", $"is NULL but capacity is {capacity}");
            }

            var bytes = Encoding.UTF8.GetBytes(b.Metrics.ExportText());
            *length = (ulong)bytes.Length;
            if (capacity < (ulong)bytes.Length + 1)
            {
                throw new ExportException(Status.BufferTooSmall, "buffer", $"needs {bytes.Length + 1} bytes, capacity is {capacity}");
            }

            bytes.CopyTo(new Span<byte>(buffer, bytes.Length));
            buffer[bytes.Length] = 0;
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail("eb_metrics_text", ex);
        }
    }

    private static int CreateCore(string function, byte* text, nint* outBridge, bool fromFile)
    {
        try
        {
            if (outBridge == null)
            {
                throw new ExportException(Status.InvalidArgument, "out_bridge", "must not be NULL");
            }

            *outBridge = 0;
            if (text == null)
            {
                throw new ExportException(Status.InvalidArgument, fromFile ? "config_path" : "config_json", "must not be NULL");
            }

            var s = Marshal.PtrToStringUTF8((nint)text) ?? "";
            Embedded embedded;
            try
            {
                embedded = Embedded.Start(fromFile ? HostConfig.Load(s) : HostConfig.Parse(s, "config_json"));
            }
            catch (InputException ex)
            {
                // The config, or what it names: an unknown policy, a script that does not compile, a busy metrics port.
                throw new ExportException(Status.ConfigError, "config", ex.Message);
            }

            *outBridge = (nint)s_bridges.Add(embedded);

            // The start-up work (the policies' first compile) is done: write the JIT profile now, since a native
            // process may end without the runtime shutting down, which is when it would be written otherwise.
            ExpertBridge.Scripting.JitStartupProfile.Save();
            return (int)Status.Ok;
        }
        catch (Exception ex)
        {
            return Fail(function, ex);
        }
    }

    private static Embedded Resolve(nint handle, string function)
    {
        _ = function;
        switch (s_bridges.TryGet((ulong)handle, out var item))
        {
            case HandleTable<Embedded>.Lookup.Live:
                return item!;
            case HandleTable<Embedded>.Lookup.Null:
                throw new ExportException(Status.InvalidHandle, "bridge", "is NULL");
            case HandleTable<Embedded>.Lookup.Stale:
                throw Stale();
            default:
                throw new ExportException(Status.InvalidHandle, "bridge", $"0x{handle:x} is not a handle eb_create returned");
        }
    }

    private static ExportException Stale() => new(Status.InvalidHandle, "bridge", "was destroyed (eb_destroy); the handle is stale");

    private static void RequireRange(string where, string field, int value, int bound)
    {
        if ((uint)value >= (uint)bound)
        {
            throw new ExportException(Status.OutOfRange, $"{where}: {field}", $"must be in [0, {bound}), got {value}");
        }
    }

    private static Span<int> Buffer(int* pointer, ulong capacity, long needed, string name)
    {
        if (pointer == null)
        {
            return capacity == 0 ? Span<int>.Empty : throw new ExportException(Status.InvalidArgument, $"mapping.{name}", $"is NULL but its capacity is {capacity}");
        }

        if (capacity < (ulong)needed)
        {
            throw new ExportException(Status.BufferTooSmall, $"mapping.{name}", $"needs {needed} elements, capacity is {capacity}");
        }

        return new Span<int>(pointer, (int)needed);
    }

    /// <summary>Checks a size-prefixed struct: non-null and at least the first version's size.</summary>
    private static uint StructSize(void* p, int v1Size, string argument, string type)
    {
        if (p == null)
        {
            throw new ExportException(Status.InvalidArgument, argument, "must not be NULL");
        }

        var size = *(uint*)p;
        if (size < (uint)v1Size)
        {
            throw new ExportException(Status.InvalidArgument, $"{argument}->struct_size", $"must be sizeof({type}) = {v1Size} or more, got {size}");
        }

        return size;
    }

    private static T ReadStruct<T>(void* p, uint size)
        where T : unmanaged
    {
        T value = default;
        System.Buffer.MemoryCopy(p, &value, sizeof(T), Math.Min(size, (uint)sizeof(T)));
        return value;
    }

    private static void WriteStruct<T>(void* p, T value, uint size)
        where T : unmanaged => System.Buffer.MemoryCopy(&value, p, size, Math.Min(size, (uint)sizeof(T)));

    private static int Fail(string function, Exception ex)
    {
        var (status, message) = ex switch
        {
            ExportException e => (e.Status, e.Message),
            ObjectDisposedException => (Status.InvalidHandle, "bridge: was destroyed (eb_destroy); the handle is stale"),
            InputException e when e.Rule == Bridge.RuleEpoch => (Status.StaleEpoch, e.Message),
            InputException e => (Status.InvalidArgument, e.Message),
            _ => (Status.InternalError, $"{ex.GetType().FullName}: {ex.Message}"),
        };
        SetError($"{function}: {message}");
        return (int)status;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void SetError(string message)
    {
        t_lastError = message;
        var sink = s_setError;
        if (sink == null)
        {
            return;
        }

        var bytes = Encoding.UTF8.GetBytes(message);
        fixed (byte* p = bytes)
        {
            sink(p, bytes.Length);
        }
    }
}
