namespace ExpertBridge.Core.Replay;

/// <summary>Summary statistics over samples (timings, per-step metrics), with numpy's conventions.</summary>
public static class SampleStatistics
{
    /// <summary>Arithmetic mean; 0 for no samples.</summary>
    public static double Mean(ReadOnlySpan<double> values)
    {
        if (values.IsEmpty)
        {
            return 0;
        }

        var sum = 0.0;
        foreach (var v in values)
        {
            sum += v;
        }

        return sum / values.Length;
    }

    /// <summary>Median (mean of the two middle values for an even count); 0 for no samples. Does not modify <paramref name="values"/>.</summary>
    public static double Median(ReadOnlySpan<double> values) => Percentile(values, 0.5);

    /// <summary>
    /// The <paramref name="q"/> quantile (0..1) by linear interpolation between closest ranks (numpy's default);
    /// 0 for no samples. Does not modify <paramref name="values"/>.
    /// </summary>
    public static double Percentile(ReadOnlySpan<double> values, double q)
    {
        var copy = values.ToArray();
        return PercentileInPlace(copy, q);
    }

    /// <summary>Same as <see cref="Percentile"/>, sorting <paramref name="values"/> in place instead of copying.</summary>
    public static double PercentileInPlace(Span<double> values, double q)
    {
        if (!(q >= 0 && q <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(q), q, "quantile must be in [0, 1]");
        }

        if (values.IsEmpty)
        {
            return 0;
        }

        values.Sort();
        var rank = q * (values.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = Math.Min(lo + 1, values.Length - 1);
        return values[lo] + ((rank - lo) * (values[hi] - values[lo]));
    }
}
