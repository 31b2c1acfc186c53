using ExpertBridge.Core;
using ExpertBridge.Core.Policies;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.Devices.Conformance;

/// <summary>
/// A small MoE deployment on the runtime's devices for the relocation checks: up to 4 devices x 4 slots, one
/// redundant slot per device, experts of three tensors of odd sizes filled with seeded random bytes, and a target
/// placement that permutes every layer's slots.
/// </summary>
internal sealed class Scenario : IDisposable
{
    private readonly DeviceRuntime _runtime;
    private readonly List<DeviceBuffer> _buffers = [];
    private readonly Dictionary<(int Layer, int Expert, int Tensor), byte[]> _expected = [];
    private readonly long[] _sizes;
    private readonly long _baseline;

    public Scenario(DeviceRuntime runtime, long expertBytes, int layers)
    {
        _runtime = runtime;
        var devices = Math.Min(runtime.Devices.Count, 4);
        var topology = Topology.Create(devices, slotsPerDevice: 4);
        var experts = topology.Slots - devices;
        var a = (expertBytes / 2) + 3;
        var b = (expertBytes / 3) + 1;
        _sizes = [a, b, Math.Max(expertBytes - a - b, 65)];
        Initial = TrivialPolicy.Build(topology, layers, experts);
        var next = Initial.CopyPhy2Log();
        for (var l = 0; l < layers; l++)
        {
            var row = next.AsSpan(l * topology.Slots, topology.Slots);
            row.Reverse();
            for (var r = 0; r <= l; r++)
            {
                var first = row[0];
                row[1..].CopyTo(row);
                row[^1] = first;
            }
        }

        Next = new Placement(topology, experts, next);
        Registry = new ExpertRegistry(topology, layers);
        for (var l = 0; l < layers; l++)
        {
            for (var s = 0; s < topology.Slots; s++)
            {
                var tensors = new DeviceMemory[_sizes.Length];
                for (var i = 0; i < _sizes.Length; i++)
                {
                    var buffer = runtime.Allocate(topology.DeviceOf(s), _sizes[i]);
                    _buffers.Add(buffer);
                    tensors[i] = buffer.Memory;
                    runtime.Upload(buffer.Memory, Expected(l, Initial[l, s], i));
                }

                Registry.Register(l, s, tensors);
            }
        }

        _baseline = Live();
    }

    public Placement Initial { get; }

    public Placement Next { get; }

    public ExpertRegistry Registry { get; }

    public RelocationEngine Engine(RelocationOptions options) => new(_runtime, Registry, Initial, options);

    /// <summary>Every routed slot of <paramref name="placement"/> holds exactly its expert's bytes.</summary>
    public void RequireContents(Placement placement)
    {
        for (var l = 0; l < placement.Layers; l++)
        {
            for (var s = 0; s < placement.Slots; s++)
            {
                var e = placement[l, s];
                if (e < 0)
                {
                    continue;
                }

                var tensors = Registry.Get(l, s)!;
                for (var i = 0; i < tensors.Count; i++)
                {
                    var back = new byte[tensors[i].Length];
                    _runtime.Download(tensors[i], back);
                    Check.Require(back.AsSpan().SequenceEqual(Expected(l, e, i)),
                        $"layer {l} slot {s} tensor {i} does not hold expert {e}'s bytes (a torn or misplaced expert)");
                }
            }
        }
    }

    /// <summary>Allocations (or bytes, on real hardware) are back to what the scenario itself holds.</summary>
    public bool LiveAllocationsBack() => Live() <= _baseline;

    public void Dispose()
    {
        foreach (var b in _buffers)
        {
            b.Dispose();
        }
    }

    private long Live() => _runtime.Faults?.LiveAllocations
        ?? Enumerable.Range(0, _runtime.Devices.Count).Sum(d => _runtime.GetMemoryInfo(d).Used);

    private byte[] Expected(int layer, int expert, int tensor)
    {
        if (!_expected.TryGetValue((layer, expert, tensor), out var data))
        {
            data = Check.Pattern(_sizes[tensor], (layer * 1_000_003) + (expert * 1009) + tensor);
            _expected[(layer, expert, tensor)] = data;
        }

        return data;
    }
}
