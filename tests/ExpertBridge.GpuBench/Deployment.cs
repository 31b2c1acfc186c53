using ExpertBridge.Core;
using ExpertBridge.Devices;
using ExpertBridge.Devices.Relocation;

namespace ExpertBridge.GpuBench;

/// <summary>
/// A synthetic MoE deployment for the benchmarks: <c>layers</c> layers of <c>experts</c> experts of <c>bytes</c> each.
/// With one device it has 2E slots per layer; with two, E slots per device. Placement <see cref="A"/> puts expert e in
/// slot e (the first half), <see cref="B"/> in slot E + e (the second half), so moving A to B (or back) copies every
/// expert once into a free slot (no staging). Only the slots of this process's devices are allocated and registered
/// (<paramref name="locations"/> null: every device is local). Expert e of layer l is filled with
/// <see cref="Pattern"/>(l, e) in its A slot; the B slots start zeroed.
/// </summary>
internal sealed class Deployment : IDisposable
{
    private const int Sample = 4096;
    private readonly DeviceRuntime _runtime;
    private readonly List<DeviceBuffer> _buffers = [];
    private readonly IReadOnlyList<DeviceLocation>? _locations;
    private readonly int _process;

    public Deployment(DeviceRuntime runtime, int devices, int layers, int experts, long bytes, IReadOnlyList<DeviceLocation>? locations = null, int process = 0)
    {
        _runtime = runtime;
        _locations = locations;
        _process = process;
        Experts = experts;
        Bytes = bytes;
        Topology = Topology.Create(devices, devices == 1 ? 2 * experts : experts);
        Registry = new ExpertRegistry(Topology, layers);
        var a = new int[layers * Topology.Slots];
        var b = new int[layers * Topology.Slots];
        for (var l = 0; l < layers; l++)
        {
            for (var s = 0; s < Topology.Slots; s++)
            {
                a[(l * Topology.Slots) + s] = s < experts ? s : -1;
                b[(l * Topology.Slots) + s] = s >= experts ? s - experts : -1;
                var global = Topology.DeviceOf(s);
                if (!IsLocal(global))
                {
                    continue;
                }

                var buffer = runtime.Allocate(LocalOf(global), bytes);
                _buffers.Add(buffer);
                runtime.Fill(buffer.Memory, s < experts ? Pattern(l, s) : (byte)0);
                Registry.Register(l, s, [buffer.Memory]);
            }
        }

        A = new Placement(Topology, experts, a);
        B = new Placement(Topology, experts, b);
    }

    public Topology Topology { get; }

    public ExpertRegistry Registry { get; }

    public Placement A { get; }

    public Placement B { get; }

    public int Experts { get; }

    public long Bytes { get; }

    /// <summary>The byte every expert e of layer l is filled with.</summary>
    public static byte Pattern(int layer, int expert) => (byte)((((layer * 31) + (expert * 7)) % 251) + 1);

    /// <summary>Layers that fit in 80% of the smallest free memory of <paramref name="devices"/> local devices when
    /// each holds <paramref name="slotsPerDevice"/> experts of <paramref name="bytes"/> per layer.</summary>
    public static int FitLayers(DeviceRuntime runtime, int wanted, int slotsPerDevice, long bytes, int devices, long reserve = 0)
    {
        var free = Enumerable.Range(0, devices).Min(d => runtime.GetMemoryInfo(d).Free) - reserve;
        return (int)Math.Max(1, Math.Min(wanted, free * 0.8 / (slotsPerDevice * (double)bytes)));
    }

    /// <summary>Counts the routed local slots of <paramref name="placement"/> whose first and last 4 KiB do not hold
    /// their expert's pattern (0: every moved expert arrived).</summary>
    public int CountWrong(Placement placement)
    {
        var wrong = 0;
        var n = (int)Math.Min(Sample, Bytes);
        var data = new byte[n];
        for (var l = 0; l < placement.Layers; l++)
        {
            for (var s = 0; s < placement.Slots; s++)
            {
                var e = placement[l, s];
                if (e < 0 || !IsLocal(Topology.DeviceOf(s)))
                {
                    continue;
                }

                var memory = Registry.Get(l, s)![0];
                var expected = Pattern(l, e);
                foreach (var offset in new[] { 0L, Bytes - n })
                {
                    _runtime.Download(memory.Slice(offset, n), data);
                    if (data.AsSpan().ContainsAnyExcept(expected))
                    {
                        wrong++;
                        break;
                    }
                }
            }
        }

        return wrong;
    }

    public void Dispose()
    {
        foreach (var b in _buffers)
        {
            b.Dispose();
        }
    }

    private bool IsLocal(int global) => _locations is null || _locations[global].Process == _process;

    private int LocalOf(int global) => _locations is null ? global : _locations[global].LocalDevice;
}
