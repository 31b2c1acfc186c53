namespace ExpertBridge.Core;

/// <summary>
/// A routing trace: tokens per logical expert per layer per step, [steps, layers, experts] row-major, as the engines
/// dump it (SGLang's <c>logical_count</c>, vLLM's expert load). A summed [layers, experts] matrix is a trace of one step.
/// </summary>
public sealed class LoadTrace
{
    private readonly float[] _values;

    /// <summary>Wraps <paramref name="values"/> without copying; validates shape and every value.</summary>
    public LoadTrace(int steps, int layers, int experts, float[] values, string subject = "trace")
    {
        ArgumentNullException.ThrowIfNull(values);
        if (steps < 1 || layers < 1 || experts < 1)
        {
            throw new InputException(subject, "shape [steps >= 1, layers >= 1, experts >= 1]", $"got [{steps}, {layers}, {experts}]");
        }

        if (values.LongLength != (long)steps * layers * experts)
        {
            throw new InputException(subject, "values match the shape", $"[{steps}, {layers}, {experts}] needs {(long)steps * layers * experts} values, got {values.LongLength}");
        }

        for (long i = 0; i < values.LongLength; i++)
        {
            var v = values[i];
            if (!float.IsFinite(v) || v < 0)
            {
                var stride = (long)layers * experts;
                throw new InputException(subject, "counts are finite and >= 0", $"step {i / stride} layer {i % stride / experts} expert {i % experts} has {v}");
            }
        }

        Steps = steps;
        Layers = layers;
        Experts = experts;
        _values = values;
    }

    public int Steps { get; }

    public int Layers { get; }

    public int Experts { get; }

    /// <summary>Values per step (layers x experts).</summary>
    public int StepSize => Layers * Experts;

    /// <summary>One step, [layers, experts] row-major.</summary>
    public ReadOnlySpan<float> GetStep(int step) => _values.AsSpan(step * StepSize, StepSize);

    /// <summary>All values, row-major.</summary>
    public ReadOnlySpan<float> Values => _values;

    /// <summary>Sum over steps [<paramref name="start"/>, <paramref name="start"/> + <paramref name="count"/>).</summary>
    public LoadMatrix Sum(int start = 0, int count = int.MaxValue)
    {
        if (start < 0 || start >= Steps)
        {
            throw new ArgumentOutOfRangeException(nameof(start), start, $"trace has {Steps} steps");
        }

        var end = (int)Math.Min((long)start + count, Steps);
        var sum = new double[StepSize];
        for (var s = start; s < end; s++)
        {
            var step = GetStep(s);
            for (var i = 0; i < sum.Length; i++)
            {
                sum[i] += step[i];
            }
        }

        return new LoadMatrix(Layers, Experts, sum);
    }

    /// <summary>A one-step trace holding <paramref name="load"/> (for [L, E] inputs where a trace is expected).</summary>
    public static LoadTrace FromMatrix(LoadMatrix load)
    {
        ArgumentNullException.ThrowIfNull(load);
        var values = new float[load.Layers * load.Experts];
        var src = load.Values;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)src[i];
        }

        return new LoadTrace(1, load.Layers, load.Experts, values);
    }
}
