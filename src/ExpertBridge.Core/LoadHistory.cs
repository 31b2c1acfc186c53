namespace ExpertBridge.Core;

/// <summary>
/// Per-step expert loads [steps, layers, experts] in a ring buffer of fixed capacity, with window sums and an
/// exponential moving average. Step 0 of the view is the oldest step still held; <see cref="Count"/> - 1 the newest.
/// Not thread-safe: one writer, readers between writes (the host snapshots it for a policy call).
/// </summary>
public sealed class LoadHistory : IReadOnlyLoadHistory
{
    private readonly float[] _ring;
    private readonly int _stride;
    private int _head; // index of the next write
    private long _recorded;

    public LoadHistory(int layers, int experts, int capacity)
    {
        if (layers < 1 || experts < 1)
        {
            throw new InputException("load history", "layers >= 1 and experts >= 1", $"got [{layers}, {experts}]");
        }

        if (capacity < 1)
        {
            throw new InputException("load history", "capacity >= 1 step", $"got {capacity}");
        }

        Layers = layers;
        Experts = experts;
        Capacity = capacity;
        _stride = layers * experts;
        _ring = new float[(long)capacity * _stride];
    }

    public int Layers { get; }

    public int Experts { get; }

    public int Capacity { get; }

    /// <summary>Steps held now (at most <see cref="Capacity"/>).</summary>
    public int Count => (int)Math.Min(_recorded, Capacity);

    /// <summary>Steps recorded since creation (including those that fell out of the ring).</summary>
    public long TotalRecorded => _recorded;

    /// <summary>Records one step: <paramref name="counts"/> is [layers, experts] row-major.</summary>
    public void Record(ReadOnlySpan<float> counts)
    {
        if (counts.Length != _stride)
        {
            throw new InputException("step loads", "one value per (layer, expert)", $"expected {_stride} values ({Layers} x {Experts}), got {counts.Length}");
        }

        for (var i = 0; i < counts.Length; i++)
        {
            var v = counts[i];
            if (!float.IsFinite(v) || v < 0)
            {
                throw new InputException("step loads", "counts are finite and >= 0", $"layer {i / Experts} expert {i % Experts} has {v}");
            }
        }

        counts.CopyTo(_ring.AsSpan(_head * _stride, _stride));
        _head = (_head + 1) % Capacity;
        _recorded++;
    }

    /// <summary>Records one step from integer counts.</summary>
    public void Record(ReadOnlySpan<int> counts)
    {
        if (counts.Length != _stride)
        {
            throw new InputException("step loads", "one value per (layer, expert)", $"expected {_stride} values ({Layers} x {Experts}), got {counts.Length}");
        }

        var dst = _ring.AsSpan(_head * _stride, _stride);
        for (var i = 0; i < counts.Length; i++)
        {
            if (counts[i] < 0)
            {
                throw new InputException("step loads", "counts are >= 0", $"layer {i / Experts} expert {i % Experts} has {counts[i]}");
            }

            dst[i] = counts[i];
        }

        _head = (_head + 1) % Capacity;
        _recorded++;
    }

    /// <summary>Forgets every step.</summary>
    public void Clear()
    {
        _head = 0;
        _recorded = 0;
    }

    /// <summary>Step <paramref name="index"/> of the view (0 = oldest held), [layers, experts] row-major.</summary>
    public ReadOnlySpan<float> GetStep(int index)
    {
        if (index < 0 || index >= Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"history holds {Count} steps");
        }

        var physical = (int)((_head - Count + index + (long)Capacity) % Capacity);
        return _ring.AsSpan(physical * _stride, _stride);
    }

    /// <summary>One layer of step <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> GetStep(int index, int layer) => GetStep(index).Slice(layer * Experts, Experts);

    /// <summary>Sum of the newest <paramref name="window"/> steps (all held steps when window exceeds them).</summary>
    public LoadMatrix WindowSum(int window)
    {
        var values = new double[_stride];
        var n = Math.Min(window, Count);
        for (var s = Count - n; s < Count; s++)
        {
            var step = GetStep(s);
            for (var i = 0; i < values.Length; i++)
            {
                values[i] += step[i];
            }
        }

        return new LoadMatrix(Layers, Experts, values, "load history");
    }

    /// <summary>
    /// Exponential moving average over the held steps, oldest first: m = alpha * x + (1 - alpha) * m,
    /// seeded with the oldest step. Returns per-step scale (an average step), not a sum.
    /// </summary>
    public LoadMatrix Ema(double alpha)
    {
        if (!(alpha > 0 && alpha <= 1))
        {
            throw new InputException("ema alpha", "0 < alpha <= 1", $"got {alpha}");
        }

        var values = new double[_stride];
        for (var s = 0; s < Count; s++)
        {
            var step = GetStep(s);
            var a = s == 0 ? 1.0 : alpha;
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = (a * step[i]) + ((1 - a) * values[i]);
            }
        }

        return new LoadMatrix(Layers, Experts, values, "load history");
    }
}
