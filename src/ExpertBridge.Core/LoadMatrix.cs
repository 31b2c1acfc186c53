namespace ExpertBridge.Core;

/// <summary>
/// Tokens routed to each logical expert of each layer, summed over some steps: a dense [layers, experts] matrix,
/// row-major. Values are non-negative and finite (enforced at construction).
/// </summary>
public sealed class LoadMatrix
{
    private readonly double[] _values;

    /// <summary>Wraps <paramref name="values"/> (row-major [layers, experts]) without copying; validates every value.</summary>
    public LoadMatrix(int layers, int experts, double[] values, string subject = "load")
    {
        ArgumentNullException.ThrowIfNull(values);
        if (layers < 1 || experts < 1)
        {
            throw new InputException(subject, "shape [layers >= 1, experts >= 1]", $"got [{layers}, {experts}]");
        }

        if (values.Length != (long)layers * experts)
        {
            throw new InputException(subject, "values match the shape", $"[{layers}, {experts}] needs {(long)layers * experts} values, got {values.Length}");
        }

        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (!double.IsFinite(v) || v < 0)
            {
                throw new InputException(subject, "counts are finite and >= 0", $"layer {i / experts} expert {i % experts} has {v}");
            }
        }

        Layers = layers;
        Experts = experts;
        _values = values;
    }

    /// <summary>Builds a matrix from jagged rows (each row one layer).</summary>
    public static LoadMatrix FromRows(IReadOnlyList<IReadOnlyList<double>> rows, string subject = "load")
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
        {
            throw new InputException(subject, "shape [layers >= 1, experts >= 1]", "no layers");
        }

        var experts = rows[0].Count;
        var values = new double[rows.Count * experts];
        for (var l = 0; l < rows.Count; l++)
        {
            if (rows[l].Count != experts)
            {
                throw new InputException(subject, "every layer has the same number of experts", $"layer 0 has {experts}, layer {l} has {rows[l].Count}");
            }

            for (var e = 0; e < experts; e++)
            {
                values[(l * experts) + e] = rows[l][e];
            }
        }

        return new LoadMatrix(rows.Count, experts, values, subject);
    }

    public int Layers { get; }

    public int Experts { get; }

    /// <summary>Load of <paramref name="expert"/> in <paramref name="layer"/>.</summary>
    public double this[int layer, int expert] => _values[(layer * Experts) + expert];

    /// <summary>One layer's loads.</summary>
    public ReadOnlySpan<double> Layer(int layer) => _values.AsSpan(layer * Experts, Experts);

    /// <summary>All values, row-major.</summary>
    public ReadOnlySpan<double> Values => _values;

    /// <summary>Sum of all loads of <paramref name="layer"/>.</summary>
    public double LayerTotal(int layer)
    {
        var sum = 0.0;
        foreach (var v in Layer(layer))
        {
            sum += v;
        }

        return sum;
    }
}
